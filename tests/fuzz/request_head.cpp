// libFuzzer target: http::message_parser in request mode, as a client's bytes arrive (in
// pieces, pipelined), and request_head_problem on every complete head.
//
// Input: see read_input (http_fuzz.hpp); flag bit 1: a 16-byte body limit.

#include "http_fuzz.hpp"

#include "turnout/http/message_parser.hpp"

#include <cstddef>
#include <cstdint>
#include <string_view>

using turnout::http::message_parser;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size)
{
    const auto in = turnout::fuzz::read_input(data, size);
    if (!in)
        return 0;
    const auto& limits = in->limits;
    const std::uint64_t max_body = (in->flags & 2) ? 16 : 1 << 20;

    message_parser p{message_parser::kind::request, limits};
    turnout::fuzz::drive(
        p, in->stream, in->step, limits.max_head_bytes,
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
