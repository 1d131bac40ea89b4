#include "turnout/log/access_line.hpp"

#include <boost/json/parse.hpp>
#include <doctest/doctest.h>

#include <cstdlib>
#include <ctime>
#include <regex>
#include <string>

using namespace turnout::log;

namespace {

access_record sample()
{
    access_record r;
    r.time = std::chrono::system_clock::from_time_t(1'796'198'400); // 2026-12-02 08:00:00 UTC
    r.client = "127.0.0.1";
    r.method = "POST";
    r.target = "/mcp?x=\"1\"";
    r.version = "HTTP/1.1";
    r.status = 200;
    r.bytes = 512;
    r.user_agent = "curl/7.88";
    r.reached = true;
    r.upstream = "mcp";
    r.pool = "blue";
    r.backend = "127.0.0.1:3001";
    r.session = 0x1234abcdULL;
    r.upstream_time = 0.25;
    r.request_time = 0.5;
    return r;
}

struct utc {
    utc() { ::setenv("TZ", "UTC", 1); ::tzset(); }
};

} // namespace

TEST_CASE("access log format names")
{
    CHECK(parse_access_format("combined") == access_format::combined);
    CHECK(parse_access_format("json") == access_format::json);
    CHECK(parse_access_format("turnout") == access_format::turnout);
    CHECK(!parse_access_format("main"));
}

TEST_CASE("access log: combined is nginx's combined format, escaped as nginx escapes")
{
    utc tz;
    auto r = sample();
    CHECK(format_access(access_format::combined, r) ==
          "127.0.0.1 - - [02/Dec/2026:08:00:00 +0000] \"POST /mcp?x=\\x221\\x22 HTTP/1.1\" 200 512 \"-\" \"curl/7.88\"");
    r.authorization = "Basic YWxpY2U6c2VjcmV0"; // alice:secret
    r.referer = "https://example.com/";
    const auto line = format_access(access_format::combined, r);
    // nginx's log_format combined, as a pattern
    const std::regex combined(R"re(^(\S+) - (\S+) \[([^\]]+)\] "([^"]*)" (\d{3}) (\d+) "([^"]*)" "([^"]*)"$)re");
    std::smatch m;
    REQUIRE(std::regex_match(line, m, combined));
    CHECK(m[2] == "alice");
    CHECK(m[7] == "https://example.com/");
}

TEST_CASE("access log: json carries upstream, pool, backend, the session hashed, status, bytes, timings")
{
    utc tz;
    const auto r = sample();
    const auto v = boost::json::parse(format_access(access_format::json, r)).as_object();
    CHECK(v.at("upstream").as_string() == "mcp");
    CHECK(v.at("pool").as_string() == "blue");
    CHECK(v.at("backend").as_string() == "127.0.0.1:3001");
    CHECK(v.at("session").as_string() == "000000001234abcd");
    CHECK(v.at("status").as_int64() == 200);
    CHECK(v.at("bytes").as_int64() == 512);
    CHECK(v.at("request_time").as_double() == 0.5);
    CHECK(v.at("upstream_time").as_double() == 0.25);
    CHECK(v.at("time").as_string() == "2026-12-02T08:00:00+00:00");
    auto none = sample();
    none.reached = false;
    none.session.reset();
    const auto w = boost::json::parse(format_access(access_format::json, none)).as_object();
    CHECK(w.at("backend").is_null());
    CHECK(w.at("session").is_null());
}

TEST_CASE("access log: the turnout format is the line turnout always wrote")
{
    CHECK(format_access(access_format::turnout, sample()) ==
          "127.0.0.1 \"POST /mcp?x=\"1\"\" 200 512 pool=blue backend=127.0.0.1:3001 upstream_time=0.250 time=0.500");
}
