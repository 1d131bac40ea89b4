#include "turnout/http/head_writer.hpp"

#include <doctest/doctest.h>

#include <string>

using turnout::http::head_writer;

TEST_CASE("head_writer appends after what the string holds and trims to what it wrote")
{
    std::string out = "kept|";
    {
        head_writer w(out);
        w << "HTTP/1.1 " << 204u << ' ' << std::string_view("No Content") << "\r\n";
        w.field("X-A", "1");
        CHECK(out.size() > std::string_view("kept|HTTP/1.1 204 No Content\r\nX-A: 1\r\n").size()); // room not yet trimmed
    }
    CHECK(out == "kept|HTTP/1.1 204 No Content\r\nX-A: 1\r\n");

    // A second writer on the same string goes on at its end.
    {
        head_writer w(out);
        w << "\r\n";
    }
    CHECK(out == "kept|HTTP/1.1 204 No Content\r\nX-A: 1\r\n\r\n");
}

TEST_CASE("head_writer grows past its first room, for one large piece and for many small ones")
{
    const std::string large(5000, 'v');
    std::string out;
    {
        head_writer w(out);
        w.field("Big", large);
    }
    CHECK(out == "Big: " + large + "\r\n");

    std::string expected;
    out.clear();
    {
        head_writer w(out);
        for (unsigned i = 0; i < 2000; ++i) {
            w << i << ',';
            expected += std::to_string(i) + ',';
        }
    }
    CHECK(out == expected);
}

TEST_CASE("head_writer writes nothing when given nothing")
{
    std::string out = "x";
    {
        head_writer w(out);
        w << std::string_view{};
    }
    CHECK(out == "x");
    std::string empty;
    { head_writer w(empty); }
    CHECK(empty.empty());
}
