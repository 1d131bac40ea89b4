// Routes on MCP method and name: glob patterns, most specific wins, facts from the headers or
// the JSON-RPC body, header/body agreement (400 -32001), batches and notifications.

#include "turnout/mcp/rpc_watch.hpp"
#include "turnout/routing/mcp_facts.hpp"
#include "turnout/routing/router.hpp"

#include <doctest/doctest.h>

#include <memory>
#include <string>
#include <vector>

using namespace turnout;
using routing::glob_match;
using routing::route;
using routing::router;

namespace {

route mcp_route(std::size_t upstream, std::string method, std::string name = "", std::string prefix = "/",
                std::string host = "")
{
    return {std::move(host), std::move(prefix), upstream, std::move(method), std::move(name)};
}

std::optional<std::size_t> match(const router& r, std::string_view method, std::string_view name,
                                 std::string_view path = "/mcp")
{
    return r.match({.host = "h", .path = path, .mcp_method = method, .mcp_name = name});
}

struct heads {
    const http::message_head& request(std::string text)
    {
        auto& p = *parsers.emplace_back(
            std::make_unique<http::message_parser>(http::message_parser::kind::request, http::message_parser::limits{}));
        texts.push_back(std::move(text));
        p.parse(texts.back().data(), texts.back().size());
        REQUIRE(p.head_complete());
        return p.head();
    }
    std::vector<std::unique_ptr<http::message_parser>> parsers;
    std::vector<std::string> texts;
};

std::string post(std::string_view extra, std::size_t length = 10)
{
    return "POST /mcp HTTP/1.1\r\nHost: h\r\nContent-Type: application/json\r\n" + std::string(extra) +
           "Content-Length: " + std::to_string(length) + "\r\n\r\n";
}

routing::body_facts inspect(heads& h, std::string_view extra, std::string_view body, mcp::request_inspector& i)
{
    return routing::inspect_body(h.request(post(extra, body.size())), body, i);
}

} // namespace

TEST_CASE("glob patterns: '*' is any run of characters")
{
    CHECK(glob_match("search_*", "search_web"));
    CHECK(glob_match("search_*", "search_"));
    CHECK_FALSE(glob_match("search_*", "research_web"));
    CHECK(glob_match("*", ""));
    CHECK(glob_match("tools/*", "tools/call"));
    CHECK(glob_match("*_web_*", "search_web_fast"));
    CHECK_FALSE(glob_match("*_web_*", "search_web"));
    CHECK(glob_match("a*b*c", "aXXbYYc"));
    CHECK_FALSE(glob_match("a*b*c", "aXXbYY"));
    CHECK(glob_match("exact", "exact"));
    CHECK_FALSE(glob_match("exact", "exactly"));
}

TEST_CASE("the most specific route wins: method+name, then method, then path; exact before glob")
{
    const std::vector<route> routes = {mcp_route(0, "", "", "/"), mcp_route(1, "tools/call"),
                                       mcp_route(2, "tools/call", "search_*"), mcp_route(3, "tools/call", "search_web"),
                                       mcp_route(4, "tools/*"), mcp_route(5, "", "", "/mcp/")};
    for (int rotation = 0; rotation < 6; ++rotation) {
        auto rotated = routes;
        std::rotate(rotated.begin(), rotated.begin() + rotation, rotated.end());
        const router r{rotated};
        CHECK(r.has_mcp_rules());
        CHECK(match(r, "tools/call", "search_web") == 3u);
        CHECK(match(r, "tools/call", "search_news") == 2u);
        CHECK(match(r, "tools/call", "add") == 1u);
        CHECK(match(r, "tools/list", "") == 4u);
        CHECK(match(r, "initialize", "") == 0u);
        CHECK(match(r, "initialize", "", "/mcp/x") == 5u);
        CHECK(match(r, "", "") == 0u); // no facts: the path routes
        CHECK(match(r, "", "search_web") == 0u);
    }
    CHECK_FALSE(router{{mcp_route(0, "", "", "/")}}.has_mcp_rules());
}

TEST_CASE("MCP rules still need their path and host")
{
    const router r{{mcp_route(0, "", "", "/"), mcp_route(1, "tools/call", "", "/mcp"),
                    mcp_route(2, "tools/call", "", "/", "other.example")}};
    CHECK(match(r, "tools/call", "x", "/mcp") == 1u);
    CHECK(match(r, "tools/call", "x", "/elsewhere") == 0u);
}

TEST_CASE("body_to_inspect: POST with a Content-Length up to the limit, no session, some MCP rule")
{
    heads h;
    const router with{{mcp_route(0, "tools/call")}};
    const router without{{mcp_route(0, "")}};
    const auto& head = h.request(post(""));
    CHECK(routing::body_to_inspect(with, head, 100, false, 65536) == 100u);
    CHECK_FALSE(routing::body_to_inspect(without, head, 100, false, 65536));
    CHECK_FALSE(routing::body_to_inspect(with, head, 65537, false, 65536));
    CHECK_FALSE(routing::body_to_inspect(with, head, 0, false, 65536));
    // A chunked body is held up to its framing's limit, whatever its length proves to be.
    CHECK(routing::body_to_inspect(with, head, std::nullopt, true, 65536) == routing::chunked_hold_limit(65536));
    CHECK(routing::chunked_hold_limit(65536) > 65536);
    CHECK_FALSE(routing::body_to_inspect(without, head, std::nullopt, true, 65536));
    CHECK_FALSE(routing::body_to_inspect(with, head, std::nullopt, true, 0));
    CHECK_FALSE(routing::body_to_inspect(with, h.request(post("Mcp-Session-Id: abc\r\n")), 100, false, 65536));
    CHECK_FALSE(routing::body_to_inspect(with, h.request("GET /mcp HTTP/1.1\r\nHost: h\r\n\r\n"), 100, false, 65536));
}

TEST_CASE("facts from the body where there are no headers; from the headers where both agree")
{
    heads h;
    {
        mcp::request_inspector i;
        const auto r = inspect(h, "", R"({"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"search_web"}})", i);
        CHECK(r.mismatch.empty());
        CHECK(r.facts.method == "tools/call");
        CHECK(r.facts.name == "search_web");
    }
    {
        mcp::request_inspector i;
        const auto r = inspect(h, "Mcp-Method: resources/read\r\nMcp-Name: file:///a\r\n",
                               R"({"jsonrpc":"2.0","id":"x","method":"resources/read","params":{"uri":"file:///a"}})", i);
        CHECK(r.mismatch.empty());
        CHECK(r.facts.method == "resources/read");
        CHECK(r.facts.name == "file:///a");
    }
    {
        mcp::request_inspector i; // not JSON: the headers (none here) and the path decide
        const auto r = inspect(h, "Mcp-Method: tools/list\r\n", "not json at all", i);
        CHECK(r.mismatch.empty());
        CHECK(r.facts.method == "tools/list");
    }
    {
        mcp::request_inspector i;
        const auto r = routing::header_facts(h.request(post("mcp-method: tools/call\r\nMCP-NAME: add\r\n")));
        CHECK(r.method == "tools/call");
        CHECK(r.name == "add");
    }
}

TEST_CASE("headers and body that disagree answer 400 with JSON-RPC -32001 and the request's id")
{
    heads h;
    const auto body_of = [](const std::string& answer) { return answer.substr(answer.find("\r\n\r\n") + 4); };
    {
        mcp::request_inspector i;
        const auto r = inspect(h, "Mcp-Method: tools/list\r\n", R"({"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"a"}})", i);
        REQUIRE_FALSE(r.mismatch.empty());
        CHECK(r.mismatch.starts_with("HTTP/1.1 400 Bad Request\r\n"));
        CHECK(body_of(r.mismatch) ==
              R"({"jsonrpc":"2.0","error":{"code":-32001,"message":"Header mismatch: Mcp-Method is \"tools/list\" but the body's method is \"tools/call\""},"id":7})");
    }
    {
        mcp::request_inspector i;
        const auto r = inspect(h, "Mcp-Method: tools/call\r\nMcp-Name: safe\r\n",
                               R"({"jsonrpc":"2.0","id":"q","method":"tools/call","params":{"name":"rm_rf"}})", i);
        CHECK(body_of(r.mismatch) ==
              R"({"jsonrpc":"2.0","error":{"code":-32001,"message":"Header mismatch: Mcp-Name is \"safe\" but the body names \"rm_rf\""},"id":"q"})");
    }
    {
        mcp::request_inspector i; // a name the headers leave out would dodge a rule on names
        const auto r = inspect(h, "Mcp-Method: tools/call\r\n", R"({"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"x"}})", i);
        CHECK(body_of(r.mismatch).find("Mcp-Name is missing") != std::string::npos);
    }
    {
        mcp::request_inspector i; // a notification has no id: null
        const auto r = inspect(h, "Mcp-Method: notifications/initialized\r\n",
                               R"({"jsonrpc":"2.0","method":"notifications/cancelled"})", i);
        CHECK(body_of(r.mismatch).ends_with(R"("id":null})"));
    }
    {
        mcp::request_inspector i; // a notification that agrees routes by its method
        const auto r = inspect(h, "Mcp-Method: notifications/initialized\r\n",
                               R"({"jsonrpc":"2.0","method":"notifications/initialized"})", i);
        CHECK(r.mismatch.empty());
        CHECK(r.facts.method == "notifications/initialized");
    }
}

TEST_CASE("a batch has no facts of its own; with Mcp-Method it is a mismatch")
{
    heads h;
    const std::string batch = R"([{"jsonrpc":"2.0","id":1,"method":"tools/list"},{"jsonrpc":"2.0","id":2,"method":"tools/call"}])";
    {
        mcp::request_inspector i;
        const auto r = inspect(h, "", batch, i);
        CHECK(r.mismatch.empty());
        CHECK(r.facts.method.empty());
    }
    {
        mcp::request_inspector i;
        const auto r = inspect(h, "Mcp-Method: tools/list\r\n", batch, i);
        CHECK(r.mismatch.find(R"("id":null})") != std::string::npos);
        CHECK(r.mismatch.find("a batch carries no single method") != std::string::npos);
    }
}

TEST_CASE("Mcp-Name in SEP-2243's base64 form is compared decoded")
{
    heads h;
    {
        mcp::request_inspector i; // "café_search" in UTF-8, base64
        const auto r = inspect(h, "Mcp-Method: tools/call\r\nMcp-Name: =?base64?Y2Fmw6lfc2VhcmNo?=\r\n",
                               R"({"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"café_search"}})", i);
        CHECK(r.mismatch.empty());
        CHECK(r.facts.name == "café_search");
    }
    {
        mcp::request_inspector i;
        const auto r = inspect(h, "Mcp-Method: tools/call\r\nMcp-Name: =?base64?Y2Fmw6k=?=\r\n",
                               R"({"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"café_search"}})", i);
        CHECK_FALSE(r.mismatch.empty()); // "café" is not "café_search"
    }
    {
        mcp::request_inspector i;
        const auto r = inspect(h, "Mcp-Method: tools/call\r\nMcp-Name: =?base64?!!!?=\r\n",
                               R"({"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"x"}})", i);
        CHECK_FALSE(r.mismatch.empty());
    }
}

TEST_CASE("a chunked body is read in place: routed by its payload once whole, by path when too long")
{
    heads h;
    const auto& head = h.request("POST /mcp HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n");
    const std::string json = R"({"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"search_web"}})";
    // Split inside the method's string: the inspector reads the pieces as one payload.
    const std::string framed = "10\r\n" + json.substr(0, 16) + "\r\n" + "7;x=y\r\n" + json.substr(16, 7) +
                               "\r\n" + [&] {
                                   std::string rest = json.substr(23);
                                   char size[16];
                                   std::snprintf(size, sizeof size, "%zx", rest.size());
                                   return std::string(size) + "\r\n" + rest + "\r\n";
                               }() + "0\r\n\r\n";
    for (std::size_t cut = 0; cut < framed.size(); ++cut) {
        mcp::rpc_watch watch;
        std::optional<mcp::request_inspector> longer;
        const auto r = routing::inspect_chunked_body(head, std::string_view(framed).substr(0, cut), 65536, watch, longer);
        CHECK_FALSE(r.route);
        CHECK(r.hold > cut);
        CHECK(r.hold <= framed.size());
    }
    mcp::rpc_watch watch;
    std::optional<mcp::request_inspector> longer;
    const auto r = routing::inspect_chunked_body(head, framed + "GET / HTTP/1.1\r\n", 65536, watch, longer);
    REQUIRE(r.route);
    CHECK(r.result.mismatch.empty());
    CHECK(r.result.facts.method == "tools/call");
    CHECK(r.result.facts.name == "search_web");
    CHECK(watch.request().method == "tools/call"); // the watch's own inspector: not read again
    CHECK_FALSE(longer);

    // Over max_inspect_bytes: routed on host and path as soon as a chunk says so.
    mcp::rpc_watch over;
    const auto too_long = routing::inspect_chunked_body(head, "400\r\n{", 512, over, longer);
    CHECK(too_long.route);
    CHECK(too_long.result.facts.method.empty());
    // Framed past the hold limit (here a long chunk extension): routed on path too.
    const auto padded = "1;pad=" + std::string(routing::chunked_hold_limit(100), 'a') + "\r\n{\r\n0\r\n\r\n";
    mcp::rpc_watch small;
    const auto overhead = routing::inspect_chunked_body(head, padded, 100, small, longer);
    CHECK(overhead.route);
    CHECK(overhead.result.facts.method.empty());
    // Malformed framing: routed on path; the parser will refuse it with its own error.
    mcp::rpc_watch bad;
    const auto malformed = routing::inspect_chunked_body(head, "zz\r\n", 65536, bad, longer);
    CHECK(malformed.route);
    CHECK(malformed.result.facts.method.empty());
}

TEST_CASE("a chunked body whose Mcp-Method disagrees with its payload is a mismatch")
{
    heads h;
    const auto& head =
        h.request("POST /mcp HTTP/1.1\r\nHost: h\r\nMcp-Method: tools/list\r\nTransfer-Encoding: chunked\r\n\r\n");
    const std::string json = R"({"jsonrpc":"2.0","id":9,"method":"tools/call","params":{"name":"x"}})";
    char size[16];
    std::snprintf(size, sizeof size, "%zx", json.size());
    mcp::rpc_watch watch;
    std::optional<mcp::request_inspector> longer;
    const auto r = routing::inspect_chunked_body(head, std::string(size) + "\r\n" + json + "\r\n0\r\n\r\n", 65536,
                                                 watch, longer);
    REQUIRE(r.route);
    CHECK(r.result.mismatch.find("Header mismatch") != std::string::npos);
    CHECK(r.result.mismatch.find("\"id\":9") != std::string::npos);
}
