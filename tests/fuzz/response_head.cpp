// libFuzzer target: http::message_parser in response mode, as a backend's bytes arrive (in
// pieces, several responses on one connection): heads, Content-Length and chunked bodies,
// bodies that run to the end of the connection (finish_at_eof), responses to HEAD.
//
// Input: byte 0 picks the piece size (1..256, 0 → whole input), byte 1 the limits and whether
// the responses answer HEAD requests; the rest is the stream of response bytes.

#include "http_fuzz.hpp"

#include "turnout/http/message_parser.hpp"

#include <cstddef>
#include <cstdint>
#include <string_view>

using turnout::http::message_parser;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size)
{
    if (size < 2)
        return 0;
    const std::size_t step = data[0] == 0 ? size : data[0];
    message_parser::limits limits;
    if (data[1] & 1)
        limits.max_head_bytes = 64 + (data[1] >> 2) * 4;
    const bool head_requests = (data[1] & 2) != 0;
    const std::string_view stream{reinterpret_cast<const char*>(data + 2), size - 2};

    message_parser p{message_parser::kind::response, limits};
    if (head_requests)
        p.expect_no_body();
    turnout::fuzz::drive(
        p, stream, step, limits.max_head_bytes,
        [&](const message_parser& parser) {
            FUZZ_CHECK(parser.head().status() <= 999);
        },
        [&](message_parser& parser) {
            // The connection ends: a body that runs to the end is complete, anything else not.
            if (parser.current() == message_parser::state::body) {
                const bool whole = parser.finish_at_eof();
                if (whole)
                    FUZZ_CHECK(parser.needs_eof());
            }
        });
    return 0;
}
