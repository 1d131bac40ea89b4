// Configuration of issue 14's data-plane features: [[listen]] allowed_origins, allowed_hosts,
// rate_limit, max_streams_per_client; [[upstream]] client_key; [[route]] mcp_method/mcp_name;
// [proxy] max_inspect_bytes. Bad values are refused with file:line:column.

#include "turnout/config/config.hpp"

#include <doctest/doctest.h>

#include <string>

using namespace std::chrono_literals;
using namespace turnout::config;

namespace {

constexpr std::string_view upstreams = R"(
[[upstream]]
name = "mcp"
  [[upstream.pool]]
  name = "blue"
  weight = 100
  backends = ["127.0.0.1:3001"]

[[upstream]]
name = "search"
  [[upstream.pool]]
  name = "s"
  weight = 100
  backends = ["127.0.0.1:3002"]
)";

std::string listen_with(std::string_view keys)
{
    return "[[listen]]\naddress = \"127.0.0.1:0\"\n" + std::string(keys) + std::string(upstreams) +
           "\n[[route]]\nupstream = \"mcp\"\n";
}

std::string what_of(const std::string& text)
{
    try {
        (void)parse(text, "t.toml");
    } catch (const config_error& e) {
        return e.what();
    }
    FAIL("expected a config_error for:\n" << text);
    return {};
}

} // namespace

TEST_CASE("edge keys default to: Origin check on, any Host, no rate limit, no stream limit, inspect 64 KiB")
{
    const auto c = parse(listen_with(""), "t.toml");
    const auto& l = c.listeners.front();
    CHECK_FALSE(l.any_origin);
    CHECK(l.allowed_origins.empty());
    CHECK(l.allowed_hosts.empty());
    CHECK_FALSE(l.rate_limit);
    CHECK(l.max_streams_per_client == 0);
    CHECK(c.proxy.max_inspect_bytes == 65536);
    CHECK(c.upstreams.front().client_key.source == client_key_config::kind::none);
}

TEST_CASE("edge keys are read and normalized")
{
    const auto c = parse(listen_with(R"(allowed_origins = ["HTTPS://App.Example.com:443", "http://localhost:3000"]
allowed_hosts = ["LocalHost", "127.0.0.1:8080"]
rate_limit = { requests = 50, per = "1s", burst = 100, key = "header:X-Api-Key" }
max_streams_per_client = 4
)"),
                         "t.toml");
    const auto& l = c.listeners.front();
    CHECK(l.allowed_origins == std::vector<std::string>{"https://app.example.com", "http://localhost:3000"});
    CHECK(l.allowed_hosts == std::vector<std::string>{"localhost", "127.0.0.1:8080"});
    REQUIRE(l.rate_limit);
    CHECK(l.rate_limit->requests == 50);
    CHECK(l.rate_limit->per == 1s);
    CHECK(l.rate_limit->burst == 100);
    CHECK(l.rate_limit->key.source == client_key_config::kind::header);
    CHECK(l.rate_limit->key.header == "X-Api-Key");
    CHECK(l.max_streams_per_client == 4);

    const auto star = parse(listen_with("allowed_origins = [\"*\"]\nrate_limit = { requests = 5 }\n"), "t.toml");
    CHECK(star.listeners.front().any_origin);
    CHECK(star.listeners.front().rate_limit->burst == 5); // burst defaults to requests
    CHECK(star.listeners.front().rate_limit->per == 1s);
    CHECK(star.listeners.front().rate_limit->key.source == client_key_config::kind::ip);
}

TEST_CASE("client_key, mcp routes and max_inspect_bytes are read")
{
    std::string text = "[proxy]\nmax_inspect_bytes = 1024\n" + listen_with("");
    text.insert(text.find("[[upstream.pool]]"), "client_key = \"header:Authorization\"\n");
    text += "\n[[route]]\nmcp_method = \"tools/call\"\nmcp_name = \"search_*\"\nupstream = \"search\"\n";
    text += "\n[[route]]\nmcp_method = \"tools/*\"\nupstream = \"search\"\n";
    const auto c = parse(text, "t.toml");
    CHECK(c.proxy.max_inspect_bytes == 1024);
    CHECK(c.upstreams.front().client_key.source == client_key_config::kind::header);
    CHECK(c.upstreams.front().client_key.header == "Authorization");
    REQUIRE(c.routes.size() == 3);
    CHECK(c.routes[1].mcp_method == "tools/call");
    CHECK(c.routes[1].mcp_name == "search_*");
    CHECK(c.routes[2].mcp_method == "tools/*");
    CHECK(c.routes[2].mcp_name.empty());
}

TEST_CASE("bad edge values are refused with file:line:column")
{
    CHECK(what_of(listen_with("allowed_origins = [\"https://a.example/path\"]\n")) ==
          "t.toml:3:20: listen.allowed_origins: expected \"*\" or an origin such as \"https://app.example.com\" "
          "(scheme, host, optional port, no path), got \"https://a.example/path\"");
    CHECK(what_of(listen_with("allowed_origins = \"*\"\n")) ==
          "t.toml:3:19: listen.allowed_origins: expected an array of strings, got a string");
    CHECK(what_of(listen_with("allowed_hosts = [\"a b\"]\n")) ==
          "t.toml:3:18: listen.allowed_hosts: expected a host name or address, optionally with :port, such as "
          "\"localhost\" or \"127.0.0.1:8080\", got \"a b\"");
    CHECK(what_of(listen_with("rate_limit = { requests = 0 }\n")) ==
          "t.toml:3:27: listen.rate_limit.requests: must be between 1 and 1000000000");
    CHECK(what_of(listen_with("rate_limit = { requests = 5, per = \"soon\" }\n")) ==
          "t.toml:3:36: listen.rate_limit.per: expected a duration such as \"250ms\", \"30s\", \"5m\"");
    CHECK(what_of(listen_with("rate_limit = { requests = 5, key = \"none\" }\n")) ==
          "t.toml:3:36: listen.rate_limit.key: expected \"ip\" or \"header:NAME\", got \"none\"");
    CHECK(what_of(listen_with("rate_limit = { requests = 5, burst = -1 }\n")) ==
          "t.toml:3:38: listen.rate_limit.burst: must be between 1 and 1000000000");
    CHECK(what_of(listen_with("rate_limit = { per = \"1s\" }\n")) ==
          "t.toml:3:14: missing key 'requests' in listen.rate_limit");
    CHECK(what_of(listen_with("rate_limit = { requests = 5, every = \"1s\" }\n")) ==
          "t.toml:3:30: unknown key 'every' in [listen.rate_limit]");
    CHECK(what_of(listen_with("max_streams_per_client = -2\n")) ==
          "t.toml:3:26: listen.max_streams_per_client: must not be negative");
}

TEST_CASE("bad client_key and route values are refused with file:line:column")
{
    std::string text = listen_with("");
    text.insert(text.find("[[upstream.pool]]"), "client_key = \"cookie\"\n");
    CHECK(what_of(text) == "t.toml:6:16: upstream.client_key: expected \"none\", \"ip\" or \"header:NAME\", got \"cookie\"");
    text = listen_with("");
    text.insert(text.find("[[upstream.pool]]"), "client_key = \"header:\"\n");
    CHECK(what_of(text) == "t.toml:6:16: upstream.client_key: expected \"none\", \"ip\" or \"header:NAME\", got \"header:\"");
    CHECK(what_of(listen_with("") + "\n[[route]]\nmcp_name = \"search\"\nupstream = \"search\"\n") ==
          "t.toml:22:12: route.mcp_name: needs mcp_method in the same [[route]] (\"tools/call\", \"prompts/get\" or "
          "\"resources/read\")");
    CHECK(what_of(listen_with("") + "\n[[route]]\nmcp_method = \"\"\nupstream = \"search\"\n") ==
          "t.toml:22:14: route.mcp_method: expected a name, or a pattern with '*' such as \"search_*\", got \"\"");
    CHECK(what_of(listen_with("") + "\n[[route]]\nmcp_method = \"tools/call\"\nupstream = \"search\"\n" +
                  "\n[[route]]\nmcp_method = \"tools/call\"\nupstream = \"mcp\"\n") ==
          "t.toml:25:1: route: another [[route]] already has path_prefix \"/\" and mcp_method \"tools/call\"");
    CHECK(what_of("[proxy]\nmax_inspect_bytes = 99999999999\n" + listen_with("")) ==
          "t.toml:2:21: proxy.max_inspect_bytes: must be between 0 and 16777216");
}
