#include "turnout/config/duration.hpp"

#include <doctest/doctest.h>

#include <limits>

using namespace std::chrono_literals;
using turnout::config::duration;
using turnout::config::format_duration;
using turnout::config::parse_duration;

TEST_CASE("parse_duration reads milliseconds, seconds, minutes and hours")
{
    CHECK(parse_duration("250ms") == duration{250});
    CHECK(parse_duration("30s") == 30s);
    CHECK(parse_duration("5m") == 5min);
    CHECK(parse_duration("1h") == 1h);
    CHECK(parse_duration("300s") == 300s);
    CHECK(parse_duration("0s") == 0s);
    CHECK(parse_duration("0ms") == 0ms);
    CHECK(parse_duration("007s") == 7s);
}

TEST_CASE("parse_duration requires a unit")
{
    CHECK_FALSE(parse_duration("30"));
    CHECK_FALSE(parse_duration("0"));
    CHECK_FALSE(parse_duration(""));
}

TEST_CASE("parse_duration rejects unknown units and stray characters")
{
    CHECK_FALSE(parse_duration("1d"));
    CHECK_FALSE(parse_duration("10us"));
    CHECK_FALSE(parse_duration("5S"));
    CHECK_FALSE(parse_duration("5 s"));
    CHECK_FALSE(parse_duration(" 5s"));
    CHECK_FALSE(parse_duration("5s "));
    CHECK_FALSE(parse_duration("1m30s"));
    CHECK_FALSE(parse_duration("s"));
    CHECK_FALSE(parse_duration("ms"));
    CHECK_FALSE(parse_duration("abc"));
}

TEST_CASE("parse_duration accepts only non-negative integers")
{
    CHECK_FALSE(parse_duration("-1s"));
    CHECK_FALSE(parse_duration("+1s"));
    CHECK_FALSE(parse_duration("1.5s"));
    CHECK_FALSE(parse_duration("0x10s"));
}

TEST_CASE("parse_duration rejects overflow")
{
    constexpr auto max = std::numeric_limits<duration::rep>::max();
    CHECK(parse_duration(std::to_string(max) + "ms") == duration{max});
    CHECK_FALSE(parse_duration("9223372036854775808ms"));
    CHECK_FALSE(parse_duration("99999999999999999999999s"));
    CHECK_FALSE(parse_duration(std::to_string(max / 1000 + 1) + "s"));
    CHECK_FALSE(parse_duration("9999999999999999h"));
}

TEST_CASE("format_duration gives the shortest exact spelling")
{
    CHECK(format_duration(0ms) == "0s");
    CHECK(format_duration(250ms) == "250ms");
    CHECK(format_duration(1500ms) == "1500ms");
    CHECK(format_duration(1s) == "1s");
    CHECK(format_duration(30s) == "30s");
    CHECK(format_duration(90s) == "90s");
    CHECK(format_duration(300s) == "5m");
    CHECK(format_duration(30min) == "30m");
    CHECK(format_duration(60min) == "1h");
    CHECK(format_duration(36h) == "36h");
}

TEST_CASE("format_duration output reads back through parse_duration")
{
    for (const duration d : {duration{0}, duration{1}, duration{999}, duration{1000}, duration{61000},
                             duration{3600000}, duration{3601000}, duration{7200000}}) {
        CAPTURE(d.count());
        CHECK(parse_duration(format_duration(d)) == d);
    }
}
