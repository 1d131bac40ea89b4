#include "turnout/routing/router.hpp"

#include <doctest/doctest.h>

#include <optional>
#include <string_view>
#include <vector>

using turnout::routing::host_without_port;
using turnout::routing::route;
using turnout::routing::router;
using turnout::routing::target_path;

TEST_CASE("the longest matching path prefix wins regardless of declaration order")
{
    const std::vector<route> short_first = {{"", "/", 0}, {"", "/mcp", 1}, {"", "/mcp/admin", 2}};
    const std::vector<route> long_first = {{"", "/mcp/admin", 2}, {"", "/mcp", 1}, {"", "/", 0}};
    const std::vector<route> mixed = {{"", "/mcp", 1}, {"", "/mcp/admin", 2}, {"", "/", 0}};
    for (const auto& routes : {short_first, long_first, mixed}) {
        const router r{routes};
        CHECK(r.match("example.com", "/") == 0u);
        CHECK(r.match("example.com", "/other") == 0u);
        CHECK(r.match("example.com", "/mcp") == 1u);
        CHECK(r.match("example.com", "/mcp/tools") == 1u);
        CHECK(r.match("example.com", "/mcp/admin") == 2u);
        CHECK(r.match("example.com", "/mcp/admin/x") == 2u);
    }
}

TEST_CASE("routes naming the request's host are tried before host-less ones")
{
    // The host-less route has the longer prefix, yet the host route wins for its host.
    const router r{{{"", "/mcp", 0}, {"example.com", "/", 1}}};
    CHECK(r.match("example.com", "/mcp") == 1u);
    CHECK(r.match("example.com", "/") == 1u);
    CHECK(r.match("other.org", "/mcp") == 0u);
    CHECK_FALSE(r.match("other.org", "/"));
    CHECK(r.match("", "/mcp") == 0u);
}

TEST_CASE("a host route that does not match the path falls through to host-less routes")
{
    const router r{{{"example.com", "/admin", 1}, {"", "/", 0}}};
    CHECK(r.match("example.com", "/admin/x") == 1u);
    CHECK(r.match("example.com", "/mcp") == 0u);
}

TEST_CASE("among host routes the longest prefix wins too")
{
    const router r{{{"a.com", "/", 0}, {"a.com", "/mcp", 1}, {"b.com", "/mcp/x", 2}}};
    CHECK(r.match("a.com", "/mcp/x") == 1u);
    CHECK(r.match("a.com", "/") == 0u);
    CHECK(r.match("b.com", "/mcp/x") == 2u);
    CHECK_FALSE(r.match("b.com", "/mcp"));
}

TEST_CASE("the host matches in any case and with a port")
{
    const router r{{{"example.com", "/", 7}}};
    CHECK(r.match("example.com", "/") == 7u);
    CHECK(r.match("Example.com:8080", "/") == 7u);
    CHECK(r.match("EXAMPLE.COM", "/x") == 7u);
    CHECK(r.match("example.com:443", "/x") == 7u);
    CHECK_FALSE(r.match("example.co", "/"));
    CHECK_FALSE(r.match("www.example.com", "/"));
    CHECK_FALSE(r.match("", "/"));
}

TEST_CASE("an IPv6 host with a port matches its bracketed address")
{
    const router r{{{"[::1]", "/", 3}}};
    CHECK(r.match("[::1]:80", "/") == 3u);
    CHECK(r.match("[::1]", "/") == 3u);
    CHECK_FALSE(r.match("[::2]:80", "/"));
}

TEST_CASE("no matching route gives nullopt")
{
    CHECK_FALSE(router{}.match("example.com", "/"));
    const router r{{{"", "/mcp", 0}}};
    CHECK_FALSE(r.match("example.com", "/"));
    CHECK_FALSE(r.match("example.com", "/mc"));
    CHECK_FALSE(r.match("example.com", "/MCP"));
}

TEST_CASE("routes() lists host routes first, then longer prefixes first")
{
    const router r{{{"", "/", 0}, {"a.com", "/", 1}, {"", "/mcp", 2}, {"a.com", "/mcp", 3}}};
    std::vector<std::size_t> order;
    for (const auto& each : r.routes())
        order.push_back(each.upstream);
    CHECK(order == std::vector<std::size_t>{3, 1, 2, 0});
}

TEST_CASE("host_without_port removes the port only")
{
    CHECK(host_without_port("example.com:8080") == "example.com");
    CHECK(host_without_port("example.com") == "example.com");
    CHECK(host_without_port("[::1]:80") == "[::1]");
    CHECK(host_without_port("[::1]") == "[::1]");
    CHECK(host_without_port("[2001:db8::1]:443") == "[2001:db8::1]");
    CHECK(host_without_port("") == "");
}

TEST_CASE("target_path of an origin-form target stops at the query or fragment")
{
    CHECK(target_path("/mcp") == "/mcp");
    CHECK(target_path("/mcp?sessionId=abc") == "/mcp");
    CHECK(target_path("/mcp#frag") == "/mcp");
    CHECK(target_path("/a/b?x=1#f") == "/a/b");
    CHECK(target_path("/?x") == "/");
    CHECK(target_path("/") == "/");
}

TEST_CASE("target_path of an absolute-form target is its path")
{
    CHECK(target_path("http://h/p?q") == "/p");
    CHECK(target_path("http://h?a=/b") == "/");
    CHECK(target_path("http://h#/b") == "/");
    CHECK(target_path("http://example.com:8080/mcp/x") == "/mcp/x");
    CHECK(target_path("https://h/p#f") == "/p");
    CHECK(target_path("http://h") == "/");
    CHECK(target_path("http://h/") == "/");
}

TEST_CASE("target_path of the asterisk form is /")
{
    CHECK(target_path("*") == "/");
}

namespace {

route exact_route(std::string host, std::string path, std::size_t upstream)
{
    route r{std::move(host), std::move(path), upstream};
    r.exact = true;
    return r;
}

route on_listeners(std::string path, std::size_t upstream, std::vector<std::size_t> listeners)
{
    route r{"", std::move(path), upstream};
    r.listeners = std::move(listeners);
    return r;
}

} // namespace

TEST_CASE("an exact path matches that path only, before any prefix, as nginx's location =")
{
    const router r{{{"", "/", 0}, {"", "/mcp/tools/long", 1}, exact_route("", "/mcp", 2)}};
    CHECK(r.match("h", "/mcp") == 2u);
    CHECK(r.match("h", "/mcp/") == 0u);
    CHECK(r.match("h", "/mcpx") == 0u);
    CHECK(r.match("h", "/mcp/tools/long") == 1u);
    // A host route is chosen before an exact host-less one (nginx chooses the server first).
    const router hosts{{exact_route("", "/mcp", 2), {"a.com", "/", 3}}};
    CHECK(hosts.match("a.com", "/mcp") == 3u);
    CHECK(hosts.match("b.com", "/mcp") == 2u);
}

TEST_CASE("a route limited to listeners matches requests that arrived on one of them only")
{
    const router r{{on_listeners("/", 0, {0}), on_listeners("/", 1, {1, 2}), on_listeners("/admin", 2, {2})}};
    using turnout::routing::request_facts;
    CHECK(r.match(request_facts{.host = "h", .path = "/x", .listener = 0}) == 0u);
    CHECK(r.match(request_facts{.host = "h", .path = "/x", .listener = 1}) == 1u);
    CHECK(r.match(request_facts{.host = "h", .path = "/admin", .listener = 1}) == 1u);
    CHECK(r.match(request_facts{.host = "h", .path = "/admin", .listener = 2}) == 2u);
    CHECK_FALSE(r.match(request_facts{.host = "h", .path = "/x", .listener = 3}));
}

TEST_CASE("a route with a fixed answer is found, and matches no upstream")
{
    turnout::config::fixed_answer gone{.status = 410, .location = "", .body = ""};
    route answering{"", "/gone", 0};
    answering.answer = &gone;
    const router r{{{"", "/", 1}, answering}};
    CHECK_FALSE(r.match("h", "/gone/x"));
    REQUIRE(r.find({.host = "h", .path = "/gone"}));
    CHECK(r.find({.host = "h", .path = "/gone"})->answer == &gone);
    CHECK(r.match("h", "/other") == 1u);
}
