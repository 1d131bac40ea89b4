#include "turnout/routing/stage.hpp"

#include "turnout/routing/fixed_answer.hpp"

#include "turnout/config/config.hpp"
#include "turnout/net/endpoint.hpp"
#include "turnout/runtime/shared_state.hpp"
#include "turnout/runtime/snapshot.hpp"
#include "turnout/session/token_codec.hpp"

#include <doctest/doctest.h>

#include <memory>
#include <set>
#include <string>
#include <vector>

using namespace turnout;
using http::message_parser;
using http::proxy_error;
using routing::destination;
using routing::session_binding;

namespace {

constexpr std::int64_t t0 = 1'000'000; // the balancer's clock: synthetic

const char* const two_pools = R"([[listen]]
address = "127.0.0.1:0"
[[upstream]]
name = "mcp"
  [[upstream.pool]]
  name = "blue"
  weight = 100
  backends = ["127.0.0.1:3001", "127.0.0.1:3002"]
  [[upstream.pool]]
  name = "green"
  weight = 0
  backends = ["127.0.0.1:3011"]
[[upstream]]
name = "admin"
  [[upstream.pool]]
  name = "main"
  weight = 1
  backends = ["127.0.0.1:3021"]
[[route]]
path_prefix = "/"
upstream = "mcp"
[[route]]
path_prefix = "/admin"
upstream = "admin"
)";

/// One upstream "mcp" with one pool "blue" of backends (a TOML array), routed at prefix.
std::string one_pool(std::string_view backends, std::string_view prefix)
{
    return std::string("[[listen]]\naddress = \"127.0.0.1:0\"\n[[upstream]]\nname = \"mcp\"\n") +
           "  [[upstream.pool]]\n  name = \"blue\"\n  weight = 1\n  backends = " + std::string(backends) +
           "\n[[route]]\npath_prefix = \"" + std::string(prefix) + "\"\nupstream = \"mcp\"\n";
}

/// A routing stage over a snapshot of config, with its own session table and registry.
struct fixture {
    explicit fixture(const std::string& text = two_pools)
    {
        auto config = std::make_shared<const config::configuration>(config::parse(text, "conf.toml"));
        snapshot = runtime::build_snapshot(config, shared.backends, net::resolve);
        runtime::mark_in_service(*snapshot, shared.backends);
    }

    /// A complete request or response head parsed from text (kept alive in the fixture: the
    /// head's views point into the parser).
    const http::message_head& parse(message_parser::kind kind, std::string text)
    {
        auto& p = *parsers.emplace_back(std::make_unique<message_parser>(kind, message_parser::limits{}));
        texts.push_back(std::move(text));
        p.parse(texts.back().data(), texts.back().size());
        REQUIRE(p.head_complete());
        return p.head();
    }
    const http::message_head& request(std::string text) { return parse(message_parser::kind::request, std::move(text)); }
    const http::message_head& response(std::string text) { return parse(message_parser::kind::response, std::move(text)); }

    runtime::shared_state shared{42};
    upstream::balancer balancer{7};
    routing::stage stage{shared, balancer};
    std::shared_ptr<runtime::snapshot> snapshot;
    std::vector<std::unique_ptr<message_parser>> parsers;
    std::vector<std::string> texts;
};

std::string post(std::string_view target, std::string_view session_id = {})
{
    std::string text = "POST " + std::string(target) + " HTTP/1.1\r\nHost: example.com\r\nContent-Length: 0\r\n";
    if (!session_id.empty())
        text += "Mcp-Session-Id: " + std::string(session_id) + "\r\n";
    return text + "\r\n";
}

} // namespace

TEST_CASE("routing stage: a request without a session gets its upstream by path and a backend by weight")
{
    fixture f;
    destination dest;
    session_binding session;
    REQUIRE_FALSE(f.stage.route(*f.snapshot, f.request(post("/mcp")), dest, session));
    CHECK(dest.upstream == &f.snapshot->upstreams[0]);
    CHECK_FALSE(dest.pinned);
    CHECK_FALSE(session.present());

    std::vector<const upstream::backend*> tried;
    REQUIRE_FALSE(f.stage.choose(dest, tried, t0));
    CHECK(dest.pool_name() == "blue"); // green has weight 0
    tried.push_back(dest.backend.get());
    REQUIRE_FALSE(f.stage.choose(dest, tried, t0));
    CHECK(dest.backend.get() != tried.front()); // the other blue backend
    tried.push_back(dest.backend.get());
    CHECK(f.stage.choose(dest, tried, t0) == proxy_error::bad_gateway); // every one was tried

    destination admin;
    session_binding none;
    REQUIRE_FALSE(f.stage.route(*f.snapshot, f.request(post("/admin/x")), admin, none));
    CHECK(admin.upstream == &f.snapshot->upstreams[1]);
}

TEST_CASE("routing stage: no route answers 404, no available backend 503")
{
    fixture f(one_pool(R"(["127.0.0.1:3001"])", "/mcp"));
    destination dest;
    session_binding session;
    CHECK(f.stage.route(*f.snapshot, f.request(post("/other")), dest, session) == proxy_error::no_route);

    REQUIRE_FALSE(f.stage.route(*f.snapshot, f.request(post("/mcp")), dest, session));
    f.snapshot->upstreams[0].pools[0].backends[0]->set_healthy(false);
    CHECK(f.stage.choose(dest, {}, t0) == proxy_error::no_backend);
}

TEST_CASE("routing stage: a session the answer created is pinned to the backend that created it")
{
    fixture f;
    destination first;
    session_binding s1;
    REQUIRE_FALSE(f.stage.route(*f.snapshot, f.request(post("/mcp")), first, s1));
    REQUIRE_FALSE(f.stage.choose(first, {}, t0));
    f.stage.on_response_head(first, s1, f.request(post("/mcp")),
                             f.response("HTTP/1.1 200 OK\r\nMcp-Session-Id: abc-123\r\nContent-Length: 0\r\n\r\n"),
                             false);
    CHECK(f.shared.sessions.size() == 1);

    // Every later request of it goes there, whatever the weights say, and only there.
    f.snapshot->upstreams[0].pools[0].weight = 0;
    f.snapshot->upstreams[0].pools[1].weight = 100;
    for (int i = 0; i < 20; ++i) {
        destination dest;
        session_binding session;
        REQUIRE_FALSE(f.stage.route(*f.snapshot, f.request(post("/mcp", "abc-123")), dest, session));
        CHECK(dest.pinned);
        CHECK(session.known);
        CHECK(dest.backend == first.backend);
        std::vector<const upstream::backend*> tried;
        CHECK_FALSE(f.stage.choose(dest, tried, t0));
        CHECK(dest.backend == first.backend);
        tried.push_back(dest.backend.get());
        CHECK(f.stage.choose(dest, tried, t0) == proxy_error::session_not_found); // never another backend
    }
}

TEST_CASE("routing stage: a DELETE that succeeded, or a 404 from the owner, forgets the session")
{
    fixture f;
    const auto owner = f.snapshot->upstreams[0].pools[0].backends[0];
    for (const auto* answer : {"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n"}) {
        f.shared.sessions.insert(f.shared.sessions.key_of("gone"), owner->id(), f.shared.now_s());
        const auto method = std::string(answer).find("404") != std::string::npos ? "POST" : "DELETE";
        const auto& request = f.request(std::string(method) + " /mcp HTTP/1.1\r\nHost: h\r\nMcp-Session-Id: gone\r\nContent-Length: 0\r\n\r\n");
        destination dest;
        session_binding session;
        REQUIRE_FALSE(f.stage.route(*f.snapshot, request, dest, session));
        REQUIRE(session.known);
        f.stage.on_response_head(dest, session, request, f.response(answer), false);
        CHECK(f.shared.sessions.size() == 0);
    }
}

TEST_CASE("routing stage: unknown session ids hash over the healthy backends only")
{
    fixture f;
    auto& blue = f.snapshot->upstreams[0].pools[0];
    blue.backends[1]->set_healthy(false);
    std::set<const upstream::backend*> seen;
    for (int i = 0; i < 200; ++i) {
        destination dest;
        session_binding session;
        REQUIRE_FALSE(f.stage.route(*f.snapshot, f.request(post("/mcp", "unknown-" + std::to_string(i))), dest, session));
        CHECK(dest.pinned);
        CHECK_FALSE(session.known);
        seen.insert(dest.backend.get());
    }
    CHECK(seen.count(blue.backends[1].get()) == 0);
    CHECK(seen.size() == 2); // blue's healthy one and green's
}

TEST_CASE("routing stage: bad session ids, and sessions of a backend that left, are refused")
{
    fixture f;
    destination dest;
    session_binding session;
    CHECK(f.stage.route(*f.snapshot, f.request(post("/mcp", std::string(257, 'a'))), dest, session) ==
          proxy_error::bad_session_id);

    const auto owner = f.snapshot->upstreams[0].pools[0].backends[0];
    f.shared.sessions.insert(f.shared.sessions.key_of("s1"), owner->id(), f.shared.now_s());
    owner->set_in_service(false);
    destination d2;
    session_binding s2;
    CHECK(f.stage.route(*f.snapshot, f.request(post("/mcp", "s1")), d2, s2) == proxy_error::session_not_found);
}

TEST_CASE("routing stage: a legacy stream's endpoint event pins its session and counts the stream")
{
    fixture f;
    const auto& request = f.request("GET /sse HTTP/1.1\r\nHost: h\r\n\r\n");
    destination dest;
    session_binding session;
    REQUIRE_FALSE(f.stage.route(*f.snapshot, request, dest, session));
    REQUIRE_FALSE(f.stage.choose(dest, {}, t0));
    f.stage.on_response_head(dest, session, request,
                             f.response("HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n\r\n"), true);
    REQUIRE(session.scanning_endpoint());
    const std::vector<std::string_view> pieces{"event: endpoint\r\nda", "ta: /messages?sessionId=legacy-1\r\n\r\n"};
    f.stage.watch_stream(dest, session, pieces);
    CHECK_FALSE(session.scanning_endpoint()); // done
    CHECK(session.stream_counted);

    destination later;
    session_binding s2;
    REQUIRE_FALSE(f.stage.route(*f.snapshot, f.request(post("/messages?sessionId=legacy-1")), later, s2));
    CHECK(later.pinned);
    CHECK(later.backend == dest.backend);
    CHECK(s2.source == routing::session_source::query);

    f.stage.end_stream(session);
    CHECK_FALSE(session.stream_counted);
}

TEST_CASE("routing stage: token mode seals the backend's id for the client and restores it toward the backend")
{
    fixture f(one_pool(R"(["127.0.0.1:3001", "127.0.0.1:3002"])", "/"));
    // affinity = "token" with its key, as a snapshot built from a key file would have it.
    f.snapshot->upstreams[0].tokens = std::make_shared<session::token_codec>(std::vector<std::string>{"0123456789abcdef0123456789abcdef"});
    destination dest;
    session_binding session;
    REQUIRE_FALSE(f.stage.route(*f.snapshot, f.request(post("/mcp")), dest, session));
    REQUIRE_FALSE(f.stage.choose(dest, {}, t0));
    f.stage.on_response_head(dest, session, f.request(post("/mcp")),
                             f.response("HTTP/1.1 200 OK\r\nMcp-Session-Id: backend-id\r\nContent-Length: 0\r\n\r\n"),
                             false);
    REQUIRE_FALSE(session.to_client().empty());
    CHECK(session.to_client() != "backend-id");
    CHECK(f.shared.sessions.size() == 0); // nothing stored: the token carries it

    destination later;
    session_binding s2;
    REQUIRE_FALSE(f.stage.route(*f.snapshot, f.request(post("/mcp", std::string(session.to_client()))), later, s2));
    CHECK(later.pinned);
    CHECK(later.backend == dest.backend);
    CHECK(s2.restores_id());
    CHECK(s2.id_for_backend() == "backend-id");

    auto forged = std::string(session.to_client());
    forged[forged.size() / 2] = forged[forged.size() / 2] == 'A' ? 'B' : 'A';
    destination d3;
    session_binding s3;
    CHECK(f.stage.route(*f.snapshot, f.request(post("/mcp", forged)), d3, s3) == proxy_error::session_not_found);
}

TEST_CASE("routing stage: client_key keys requests without a session, not those of a session")
{
    std::string text = two_pools;
    text.insert(text.find("  [[upstream.pool]]"), "client_key = \"header:X-Client\"\n");
    fixture f(text);
    const auto keyed = [&](std::string extra) {
        destination dest;
        session_binding session;
        REQUIRE_FALSE(f.stage.route(*f.snapshot,
                                    f.request("POST /mcp HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n" + extra + "\r\n"),
                                    dest, session, "10.0.0.1"));
        return dest.client_hash;
    };
    const auto a = keyed("X-Client: a\r\n");
    REQUIRE(a);
    CHECK(keyed("X-Client: a\r\n") == a);
    CHECK(keyed("X-Client: b\r\n") != a);
    CHECK_FALSE(keyed(""));                                  // no key: the weights alone
    CHECK_FALSE(keyed("X-Client: a\r\nMcp-Session-Id: s1\r\n")); // a session: its owner (rendezvous)
}

TEST_CASE("routing stage: MCP facts route requests without a session; a session's request routes on its path")
{
    std::string text = two_pools;
    text += "[[route]]\npath_prefix = \"/\"\nmcp_method = \"tools/call\"\nupstream = \"admin\"\n";
    fixture f(text);
    const auto upstream_of = [&](std::string extra, routing::mcp_facts mcp) {
        destination dest;
        session_binding session;
        REQUIRE_FALSE(f.stage.route(*f.snapshot,
                                    f.request("POST /mcp HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n" + extra + "\r\n"),
                                    dest, session, "10.0.0.1", mcp));
        return dest.upstream->config.name;
    };
    CHECK(upstream_of("", {"tools/call", "x"}) == "admin");
    CHECK(upstream_of("", {"tools/list", ""}) == "mcp");
    CHECK(upstream_of("", {}) == "mcp");
    CHECK(upstream_of("Mcp-Session-Id: s1\r\n", {"tools/call", "x"}) == "mcp");
}

namespace {

// Two listeners, each with its own routes (nginx's server blocks), an exact path, and fixed
// answers.
const char* const nginx_like = R"([[listen]]
address = "127.0.0.1:0"
name = "public"

[[listen]]
address = "127.0.0.1:0"
name = "internal"

[[upstream]]
name = "mcp"
  [[upstream.pool]]
  name = "main"
  weight = 100
  backends = ["127.0.0.1:3001"]

[[upstream]]
name = "ops"
  [[upstream.pool]]
  name = "main"
  weight = 100
  backends = ["127.0.0.1:3002"]

[[route]]
path_prefix = "/"
listen = "public"
upstream = "mcp"

[[route]]
path = "/status"
listen = ["public"]
answer = { status = 200, body = "up on $host\n" }

[[route]]
path_prefix = "/old"
listen = "public"
answer = { status = 301, location = "https://$host$request_uri" }

[[route]]
path_prefix = "/"
listen = "internal"
upstream = "ops"
)";

const routing::destination& routed(fixture& f, std::string_view target, std::size_t listener,
                                   routing::destination& dest)
{
    session_binding session;
    REQUIRE_FALSE(f.stage.route(*f.snapshot, f.request(post(target)), dest, session, {}, {}, listener));
    return dest;
}

} // namespace

TEST_CASE("routing stage: routes limited to a listener take only the requests that arrived on it")
{
    fixture f(nginx_like);
    destination a, b, c;
    CHECK(routed(f, "/mcp", 0, a).upstream == f.snapshot->find("mcp"));
    CHECK(routed(f, "/mcp", 1, b).upstream == f.snapshot->find("ops"));
    CHECK(routed(f, "/status", 1, c).upstream == f.snapshot->find("ops")); // public's exact path is not here
}

TEST_CASE("routing stage: an exact path takes that path only, before any prefix")
{
    fixture f(nginx_like);
    destination exact, longer, prefix;
    REQUIRE(routed(f, "/status", 0, exact).answer);
    CHECK(exact.answer->status == 200);
    CHECK_FALSE(exact.upstream);
    CHECK(routed(f, "/status/x", 0, longer).upstream == f.snapshot->find("mcp"));
    CHECK(routed(f, "/statu", 0, prefix).upstream == f.snapshot->find("mcp"));
}

TEST_CASE("fixed answers: a redirect's location and a body expand $scheme, $host and $request_uri")
{
    fixture f(nginx_like);
    destination old;
    REQUIRE(routed(f, "/old/page?x=1", 0, old).answer);
    const auto& get = f.request("GET /old/page?x=1 HTTP/1.1\r\nHost: Example.COM:8080\r\n\r\n");
    CHECK(routing::render_answer(*old.answer, get, false) ==
          "HTTP/1.1 301 Moved Permanently\r\nLocation: https://example.com/old/page?x=1\r\nContent-Length: 0\r\n"
          "Connection: close\r\n\r\n");

    destination status;
    routed(f, "/status", 0, status);
    CHECK(routing::render_answer(*status.answer, get, true) ==
          "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 18\r\nConnection: close\r\n\r\n"
          "up on example.com\n");
    // HEAD: the same head, no body.
    const auto& head = f.request("HEAD /status HTTP/1.1\r\nHost: a\r\n\r\n");
    CHECK(routing::render_answer(*status.answer, head, false) ==
          "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 8\r\nConnection: close\r\n\r\n");
    CHECK(routing::expand_answer_variables("$scheme://$host$request_uri $other $1 $", get, true) ==
          "https://example.com/old/page?x=1 $other $1 $");
}

TEST_CASE("fixed answers: a relative redirect is made absolute; an error without a body gets turnout's JSON")
{
    const auto& get_text = "GET /a HTTP/1.1\r\nHost: h.test:81\r\n\r\n";
    fixture f;
    const auto& get = f.request(get_text);
    config::fixed_answer moved{.status = 308, .location = "/b", .body = ""};
    CHECK(routing::render_answer(moved, get, false).find("\r\nLocation: http://h.test:81/b\r\n") !=
          std::string::npos);
    config::fixed_answer gone{.status = 410, .location = "", .body = ""};
    CHECK(routing::render_answer(gone, get, false) ==
          "HTTP/1.1 410 Gone\r\nContent-Type: application/json\r\nContent-Length: 16\r\nConnection: close\r\n\r\n"
          "{\"error\":\"Gone\"}");
    config::fixed_answer empty{.status = 204, .location = "", .body = ""};
    CHECK(routing::render_answer(empty, get, false) == "HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n");
}
