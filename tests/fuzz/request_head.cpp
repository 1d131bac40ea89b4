// libFuzzer target: http::message_parser in request mode, as a client's bytes arrive (in
// pieces, pipelined), and request_head_problem on every complete head.
//
// Input: byte 0 picks the piece size (1..256, 0 → whole input), byte 1 the limits; the rest
// is the stream of request bytes.

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
    if (data[1] & 1) { // small limits, so that the bounds are reached
        limits.max_head_bytes = 64 + (data[1] >> 1) * 4;
        limits.max_target_bytes = 16 + (data[1] >> 2);
    }
    const std::uint64_t max_body = (data[1] & 2) ? 16 : 1 << 20;
    const std::string_view stream{reinterpret_cast<const char*>(data + 2), size - 2};

    message_parser p{message_parser::kind::request, limits};
    turnout::fuzz::drive(
        p, stream, step, limits.max_head_bytes,
        [&](const message_parser& parser) {
            FUZZ_CHECK(parser.head().target().size() <= limits.max_target_bytes);
            const auto problem = turnout::http::request_head_problem(parser, max_body);
            if (!problem) {
                FUZZ_CHECK(parser.head().version_major() == 1 && parser.head().version_minor() <= 1);
                FUZZ_CHECK(!parser.content_length() || *parser.content_length() <= max_body);
                FUZZ_CHECK(parser.method() != HTTP_CONNECT);
            }
        },
        [](const message_parser&, std::string_view) {}, [](message_parser&) {});
    return 0;
}
