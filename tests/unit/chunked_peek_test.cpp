// http::peek_chunked: a chunked body's payload found in place, as strict as the parser.

#include "turnout/http/chunked_peek.hpp"

#include <doctest/doctest.h>

#include <limits>
#include <string>
#include <vector>

using turnout::http::chunked_peek;
using turnout::http::peek_chunked;
using state = chunked_peek::state;

namespace {

struct peeked {
    chunked_peek peek;
    std::string payload;
};

peeked peek(std::string_view framed, std::size_t max = 1 << 20)
{
    std::vector<std::string_view> pieces;
    peeked p{peek_chunked(framed, max, pieces), {}};
    for (const auto piece : pieces) {
        CHECK(piece.data() >= framed.data());
        CHECK(piece.data() + piece.size() <= framed.data() + framed.size());
        p.payload += piece;
    }
    return p;
}

} // namespace

TEST_CASE("peek_chunked: the payload of a whole body, its framed size, and what follows left alone")
{
    const std::string body = "5\r\nhello\r\n6;name=value;q=\"a b\"\r\n world\r\n0\r\nX-Trailer: 1\r\n\r\n";
    const auto p = peek(body + "GET / HTTP/1.1\r\n");
    CHECK(p.peek.status == state::complete);
    CHECK(p.payload == "hello world");
    CHECK(p.peek.payload == 11);
    CHECK(p.peek.framed == body.size());
    CHECK(peek("A\r\n0123456789\r\n0\r\n\r\n").payload == "0123456789"); // hex, either case
    CHECK(peek("0\r\n\r\n").peek.status == state::complete);
}

TEST_CASE("peek_chunked: every cut short of the end is incomplete, and says how much more at least")
{
    const std::string body = "5\r\nhello\r\n6\r\n world\r\n0\r\nT: v\r\n\r\n";
    for (std::size_t cut = 0; cut < body.size(); ++cut) {
        const auto p = peek(std::string_view(body).substr(0, cut));
        CHECK(p.peek.status == state::incomplete);
        CHECK(p.peek.needed > cut);
        CHECK(p.peek.needed <= body.size());
    }
}

TEST_CASE("peek_chunked: a chunk that takes the payload past the limit is over it at once")
{
    CHECK(peek("5\r\nhello\r\n6\r\n", 10).peek.status == state::over_limit);
    CHECK(peek("5\r\nhello\r\n5\r\nworld\r\n0\r\n\r\n", 10).peek.status == state::complete);
    CHECK(peek("ffffffffffffffff\r\n", 10).peek.status == state::over_limit);
    // Without a limit, a size near 2^64 waits for its data (found by the chunked_peek fuzz target:
    // the bytes needed wrapped around).
    const auto huge = peek("FFFFFFFFFFFFFFFb\r\nn-\n\":", std::numeric_limits<std::size_t>::max());
    CHECK(huge.peek.status == state::incomplete);
    CHECK(huge.peek.needed == std::numeric_limits<std::size_t>::max());
    CHECK(peek("ffffffffffffffff\r\nab", std::numeric_limits<std::size_t>::max()).peek.status == state::incomplete);
}

TEST_CASE("peek_chunked: what the parser's strict mode refuses is malformed")
{
    for (const char* bad : {"\r\n", "x\r\n", "5\nhello\n0\n\n", "5\r\nhello0\r\n\r\n", "5\rx", " 5\r\nhello\r\n",
                            "5 \r\nhello\r\n", "5;\r\n", "5;a=\r\n", "5;a=\"x\r\n", "0\r\nT: v\n\r\n",
                            "10000000000000000\r\n"})
        CHECK_MESSAGE(peek(bad).peek.status == state::malformed, bad);
}
