#include "turnout/http/event_stream.hpp"

#include <doctest/doctest.h>

#include <string>
#include <string_view>
#include <vector>

using turnout::http::event_stream_lines;
using turnout::http::split_event_field;

namespace {

std::vector<std::string> lines_of(const std::vector<std::string_view>& pieces, bool finish = false,
                                  std::size_t max_line = 65536)
{
    event_stream_lines splitter(max_line);
    std::vector<std::string> out;
    auto keep = [&](std::string_view line) {
        out.emplace_back(line);
        return false;
    };
    for (const auto piece : pieces)
        splitter.feed(piece, keep);
    if (finish)
        splitter.finish(keep);
    return out;
}

} // namespace

TEST_CASE("event stream lines: LF, CRLF and CR all end a line, also across pieces")
{
    CHECK(lines_of({"a\nb\r\nc\rd\n"}) == std::vector<std::string>{"a", "b", "c", "d"});
    CHECK(lines_of({"a\r", "\nb\n"}) == std::vector<std::string>{"a", "b"}); // CRLF split: one end
    CHECK(lines_of({"a\r", "b\n"}) == std::vector<std::string>{"a", "b"});
    CHECK(lines_of({"da", "ta: x", "yz\n\n"}) == std::vector<std::string>{"data: xyz", ""});
}

TEST_CASE("event stream lines: a line without its end waits, and counts when the stream ends")
{
    CHECK(lines_of({"data: 1\ndata: 2"}) == std::vector<std::string>{"data: 1"});
    CHECK(lines_of({"data: 1\ndata: 2"}, true) == std::vector<std::string>{"data: 1", "data: 2"});
}

TEST_CASE("event stream lines: a byte order mark at the start of the stream only is dropped")
{
    const std::string_view stream = "\xEF\xBB\xBF" "event: x\n" "\xEF\xBB\xBF" "y\n";
    CHECK(lines_of({stream}) == std::vector<std::string>{"event: x", "\xEF\xBB\xBF" "y"});
    CHECK(lines_of({"\xEF\xBB", "\xBF" "a\n"}) == std::vector<std::string>{"a"});
}

TEST_CASE("event stream lines: a line longer than the bound is cut there")
{
    const auto out = lines_of({"aaaa", "bbbb", "cccc\n"}, false, 6);
    REQUIRE(out.size() == 1);
    CHECK(out[0] == "aaaabb");
}

TEST_CASE("event stream lines: on_line may stop the splitter, which says how far it read")
{
    event_stream_lines splitter;
    int seen = 0;
    const std::string_view bytes = "one\ntwo\nthree\n";
    const auto n = splitter.feed(bytes, [&](std::string_view) { return ++seen == 2; });
    CHECK(seen == 2);
    CHECK(n == 8);
}

TEST_CASE("event stream fields: name, colon, one optional space, value")
{
    CHECK(split_event_field("data: x").name == "data");
    CHECK(split_event_field("data: x").value == "x");
    CHECK(split_event_field("data:  x").value == " x");
    CHECK(split_event_field("data:x").value == "x");
    CHECK(split_event_field("data").name == "data");
    CHECK(split_event_field("data").value.empty());
}
