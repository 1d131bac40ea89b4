// libFuzzer target: http::peek_chunked (a chunked request body's payload read in place, for
// routing by its JSON-RPC body) against the message parser that later forwards the same bytes.
// Wherever both accept a body they must agree on its payload and on where it ends, and peek
// must never call incomplete or too long what the parser took whole: the bytes routed on are
// the bytes forwarded.
//
// Input: byte 0 sets max_payload (0 → unlimited, else 1..255); the rest is the body.

#include "fuzz_support.hpp"

#include "turnout/http/chunked_peek.hpp"
#include "turnout/http/message_parser.hpp"

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

using turnout::http::chunked_peek;
using turnout::http::message_parser;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size)
{
    if (size < 1)
        return 0;
    const std::size_t max_payload = data[0] == 0 ? SIZE_MAX : data[0];
    const turnout::fuzz::exact_copy body({reinterpret_cast<const char*>(data + 1), size - 1});

    std::vector<std::string_view> pieces;
    const auto peek = turnout::http::peek_chunked(body.view(), max_payload, pieces);
    std::string payload;
    for (const auto piece : pieces) {
        FUZZ_CHECK(piece.data() >= body.data() && piece.data() + piece.size() <= body.data() + body.size());
        payload += piece;
    }
    FUZZ_CHECK(payload.size() == peek.payload);
    FUZZ_CHECK(peek.payload <= max_payload);
    if (peek.status == chunked_peek::state::complete)
        FUZZ_CHECK(peek.framed <= body.size());
    if (peek.status == chunked_peek::state::incomplete)
        FUZZ_CHECK(peek.needed > body.size());

    std::string message = "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n";
    const auto head_size = message.size();
    message += body.view();
    message_parser parser{message_parser::kind::request, {}};
    std::size_t consumed = parser.parse(message.data(), message.size());
    FUZZ_CHECK(parser.current() == message_parser::state::body);
    consumed += parser.parse(message.data() + consumed, message.size() - consumed);
    // Where peek saw the whole body, the parser does not wait for more of it: it ends there too,
    // or it refuses what peek let through (trailer fields are the parser's to judge).
    if (peek.status == chunked_peek::state::complete)
        FUZZ_CHECK(parser.current() != message_parser::state::body);
    if (parser.current() != message_parser::state::complete)
        return 0; // the parser waits for more, or refuses: peek may have said anything short of a whole body
    std::string parsed;
    for (const auto piece : parser.body())
        parsed += piece;
    FUZZ_CHECK(peek.status != chunked_peek::state::incomplete);
    if (max_payload == SIZE_MAX)
        FUZZ_CHECK(peek.status != chunked_peek::state::over_limit);
    if (peek.status == chunked_peek::state::complete) {
        FUZZ_CHECK(parsed == payload);
        FUZZ_CHECK(consumed - head_size == peek.framed);
    }
    return 0;
}
