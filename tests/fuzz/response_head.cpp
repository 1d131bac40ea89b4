// libFuzzer target: http::message_parser in response mode, as a backend's bytes arrive (in
// pieces, several responses on one connection): heads, Content-Length and chunked bodies,
// bodies that run to the end of the connection (finish_at_eof), responses to HEAD; every
// complete body framed again by http::chunk_framer parses back to the same bytes.
//
// Input: see read_input (http_fuzz.hpp); flag bit 1: the first response answers a HEAD request.

#include "http_fuzz.hpp"

#include "turnout/http/chunk_framer.hpp"
#include "turnout/http/message_parser.hpp"

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

using turnout::http::message_parser;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size)
{
    const auto in = turnout::fuzz::read_input(data, size);
    if (!in)
        return 0;
    const auto& limits = in->limits;
    const bool head_requests = (in->flags & 2) != 0;

    message_parser p{message_parser::kind::response, limits};
    if (head_requests)
        p.expect_no_body();
    turnout::fuzz::drive(
        p, in->stream, in->step, limits.max_head_bytes,
        [&](const message_parser& parser) {
            FUZZ_CHECK(parser.head().status() <= 999);
        },
        [&](const message_parser&, std::string_view body) {
            // The body as parsed, framed again as turnout frames bodies toward clients (one
            // chunk per write, then the last chunk), parses back to the same bytes.
            if (body.empty())
                return;
            std::string framed = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n";
            turnout::http::chunk_framer framer;
            const std::size_t cut = body.size() / 2;
            for (const auto part : {body.substr(0, cut), body.substr(cut)}) {
                turnout::http::chunk_framer::buffers out;
                const std::string_view pieces[] = {part};
                framer.append(out, pieces, part.size(), true);
                for (const auto& b : out)
                    framed.append(static_cast<const char*>(b.data()), b.size());
            }
            turnout::http::chunk_framer::buffers last;
            turnout::http::chunk_framer::append_last(last);
            for (const auto& b : last)
                framed.append(static_cast<const char*>(b.data()), b.size());
            message_parser again{message_parser::kind::response, {}};
            std::string reparsed;
            std::size_t at = 0;
            while (at < framed.size() && again.current() != message_parser::state::complete &&
                   again.current() != message_parser::state::failed) {
                const std::size_t n = again.parse(framed.data() + at, framed.size() - at);
                for (const auto b : again.body())
                    reparsed.append(b);
                again.clear_body();
                at += n;
                if (n == 0 && again.current() == message_parser::state::body)
                    break;
            }
            FUZZ_CHECK(again.current() == message_parser::state::complete);
            FUZZ_CHECK(at == framed.size());
            FUZZ_CHECK(reparsed == body);
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
