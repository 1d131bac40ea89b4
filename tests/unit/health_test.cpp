#include "turnout/health/health_checker.hpp"
#include "turnout/net/endpoint.hpp"
#include "turnout/runtime/snapshot.hpp"
#include "turnout/upstream/backend.hpp"

#include <doctest/doctest.h>

#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/json.hpp>

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

using namespace std::chrono_literals;
using namespace turnout;
using health::hash_tools;
using health::probe_result;
using health::tool_signatures;

namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace json = boost::json;
using tcp = asio::ip::tcp;
using request = http::request<http::string_body>;
using response = http::response<http::string_body>;

/// What a test server saw of one request.
struct seen_request {
    http::verb method;
    std::string target;
    std::string session_id;
    std::string body;
};

/// A keep-alive HTTP/1.1 server on 127.0.0.1:0, on its own thread; answers with `answer`.
class test_server {
public:
    using handler = std::function<response(const request&)>;

    explicit test_server(handler answer) : answer_(std::move(answer))
    {
        do_accept();
        thread_ = std::thread([this] { io_.run(); });
    }
    ~test_server()
    {
        io_.stop();
        thread_.join();
    }

    tcp::endpoint endpoint() const { return acceptor_.local_endpoint(); }

    std::vector<seen_request> requests() const
    {
        std::lock_guard lock(mutex_);
        return requests_;
    }

private:
    struct connection : std::enable_shared_from_this<connection> {
        connection(tcp::socket s, test_server& server) : stream(std::move(s)), owner(server) {}

        void do_read()
        {
            req = {};
            http::async_read(stream, buffer, req, [self = shared_from_this()](beast::error_code ec, std::size_t) {
                self->on_read(ec);
            });
        }
        void on_read(beast::error_code ec)
        {
            if (ec)
                return;
            owner.record(req);
            res = owner.answer_(req);
            res.version(11);
            res.keep_alive(req.keep_alive());
            res.prepare_payload();
            if (res.count("X-Test-Hold-Open") != 0)
                return write_held_open();
            http::async_write(stream, res, [self = shared_from_this()](beast::error_code write_ec, std::size_t) {
                if (!write_ec && self->res.keep_alive())
                    self->do_read();
            });
        }

        /// An event stream that sends its events and stays open, as an SSE answer may: the
        /// body goes out as one chunk without the last one.
        void write_held_open()
        {
            std::string raw = "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n";
            if (const auto it = res.find("Mcp-Session-Id"); it != res.end())
                raw += "Mcp-Session-Id: " + std::string(it->value()) + "\r\n";
            std::ostringstream size;
            size << std::hex << res.body().size();
            raw += "\r\n" + size.str() + "\r\n" + res.body() + "\r\n";
            held = std::make_shared<std::string>(std::move(raw));
            owner.held_.push_back(shared_from_this());
            asio::async_write(stream, asio::buffer(*held), [](beast::error_code, std::size_t) {});
        }

        beast::tcp_stream stream;
        test_server& owner;
        std::shared_ptr<std::string> held;
        beast::flat_buffer buffer;
        request req;
        response res;
    };

    void do_accept()
    {
        acceptor_.async_accept([this](beast::error_code ec, tcp::socket socket) {
            if (ec)
                return;
            std::make_shared<connection>(std::move(socket), *this)->do_read();
            do_accept();
        });
    }

    void record(const request& req)
    {
        std::lock_guard lock(mutex_);
        requests_.push_back({req.method(), std::string(req.target()), std::string(req["Mcp-Session-Id"]), req.body()});
    }

    handler answer_;
    asio::io_context io_;
    tcp::acceptor acceptor_{io_, {asio::ip::make_address("127.0.0.1"), 0}};
    mutable std::mutex mutex_;
    std::vector<seen_request> requests_;
    std::vector<std::shared_ptr<connection>> held_; // io thread only
    std::thread thread_;
};

response answer(http::status status, std::string body = {}, std::string type = "application/json")
{
    response res{status, 11};
    if (!body.empty())
        res.set(http::field::content_type, type);
    res.body() = std::move(body);
    return res;
}

/// How the mock MCP server misbehaves (by default it does not).
struct mcp_options {
    std::string protocol_version = "2025-06-18";
    bool sse = false;
    bool empty_tools = false;
    bool hold_open = false; // event streams stay open after the response (needs sse)
    http::status initialize_status = http::status::ok;
};

constexpr std::string_view mock_session = "probe-session-1";

response mcp_answer(const request& req, const mcp_options& o)
{
    if (req.method() == http::verb::delete_)
        return answer(http::status::ok);
    if (req.method() != http::verb::post)
        return answer(http::status::method_not_allowed);
    const auto message = json::parse(req.body()).as_object();
    const std::string method(message.at("method").as_string());
    if (method == "notifications/initialized")
        return answer(http::status::accepted);
    if (method == "initialize" && o.initialize_status != http::status::ok)
        return answer(o.initialize_status, R"({"error":"not now"})");
    if (method != "initialize" && req["Mcp-Session-Id"] != mock_session)
        return answer(http::status::bad_request, R"({"error":"no session"})");

    json::object result;
    if (method == "initialize") {
        result = {{"protocolVersion", o.protocol_version},
                  {"capabilities", json::object{{"tools", json::object{}}}},
                  {"serverInfo", {{"name", "mock"}, {"version", "1.0.0"}}}};
    } else if (method == "tools/list") {
        json::array tools;
        if (!o.empty_tools)
            tools.push_back(json::object{
                {"name", "echo"},
                {"inputSchema", {{"type", "object"}, {"properties", {{"text", {{"type", "string"}}}}}}}});
        result = {{"tools", std::move(tools)}};
    } else {
        return answer(http::status::ok, json::serialize(json::object{
                                             {"jsonrpc", "2.0"},
                                             {"id", message.at("id")},
                                             {"error", {{"code", -32601}, {"message", "no such method"}}}}));
    }
    const auto text = json::serialize(json::object{{"jsonrpc", "2.0"}, {"id", message.at("id")}, {"result", result}});
    response res = o.sse ? answer(http::status::ok,
                                  // A notification first: the probe must look for the response.
                                  "event: message\ndata: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/message\","
                                  "\"params\":{\"level\":\"info\",\"data\":\"hi\"}}\n\n"
                                  "event: message\ndata: " + text + "\n\n",
                                  "text/event-stream")
                         : answer(http::status::ok, text);
    if (method == "initialize")
        res.set("Mcp-Session-Id", mock_session);
    if (o.hold_open)
        res.set("X-Test-Hold-Open", "1");
    return res;
}

config::health_config http_check(config::duration timeout = 1s)
{
    config::health_config check;
    check.kind = config::health_kind::http;
    check.path = "/health";
    check.timeout = timeout;
    return check;
}

config::health_config mcp_check()
{
    config::health_config check;
    check.kind = config::health_kind::mcp;
    check.path = "/mcp";
    check.timeout = 1s;
    return check;
}

/// Runs one probe to completion on a private io_context; done must be called exactly once.
probe_result run_probe(const tcp::endpoint& endpoint, const config::health_config& check)
{
    asio::io_context io;
    int calls = 0;
    probe_result out;
    health::probe(io, endpoint, "127.0.0.1", check, [&](probe_result r) {
        ++calls;
        out = std::move(r);
    });
    io.run_for(5s);
    CHECK(calls == 1);
    return out;
}

bool contains(const std::string& text, std::string_view part) { return text.find(part) != std::string::npos; }

constexpr std::string_view tools_a = R"({"tools":[
    {"name":"echo","inputSchema":{"type":"object","properties":{"text":{"type":"string"}},"required":["text"]}},
    {"name":"add","inputSchema":{"type":"object","properties":{"a":{"type":"number"},"b":{"type":"number"}}}}]})";

} // namespace

TEST_CASE("health: hash_tools ignores the order of tools and of schema keys")
{
    // Same tools, listed the other way round, each schema's keys in another order.
    constexpr std::string_view reordered = R"({"tools":[
        {"inputSchema":{"properties":{"b":{"type":"number"},"a":{"type":"number"}},"type":"object"},"name":"add"},
        {"name":"echo","description":"says it back",
         "inputSchema":{"required":["text"],"properties":{"text":{"type":"string"}},"type":"object"}}]})";
    CHECK(hash_tools(tools_a) == hash_tools(reordered));

    // The whole JSON-RPC response hashes like its result.
    const std::string whole = R"({"jsonrpc":"2.0","id":2,"result":)" + std::string(tools_a) + "}";
    CHECK(hash_tools(whole) == hash_tools(tools_a));
}

TEST_CASE("health: hash_tools changes with a schema or the tool set")
{
    constexpr std::string_view changed_schema = R"({"tools":[
        {"name":"echo","inputSchema":{"type":"object","properties":{"text":{"type":"integer"}},"required":["text"]}},
        {"name":"add","inputSchema":{"type":"object","properties":{"a":{"type":"number"},"b":{"type":"number"}}}}]})";
    constexpr std::string_view extra_tool = R"({"tools":[
        {"name":"echo","inputSchema":{"type":"object","properties":{"text":{"type":"string"}},"required":["text"]}},
        {"name":"add","inputSchema":{"type":"object","properties":{"a":{"type":"number"},"b":{"type":"number"}}}},
        {"name":"sub","inputSchema":{"type":"object"}}]})";
    constexpr std::string_view array_order = R"({"tools":[
        {"name":"echo","inputSchema":{"type":"object","properties":{"text":{"type":"string"}},"required":["text"]}},
        {"name":"add","inputSchema":{"type":"object","properties":{"a":{"type":"number"},"b":{"type":"number"}},
         "required":["b","a"]}}]})";
    constexpr std::string_view array_order2 = R"({"tools":[
        {"name":"echo","inputSchema":{"type":"object","properties":{"text":{"type":"string"}},"required":["text"]}},
        {"name":"add","inputSchema":{"type":"object","properties":{"a":{"type":"number"},"b":{"type":"number"}},
         "required":["a","b"]}}]})";
    CHECK(hash_tools(tools_a) != hash_tools(changed_schema));
    CHECK(hash_tools(tools_a) != hash_tools(extra_tool));
    CHECK(hash_tools(array_order) != hash_tools(array_order2)); // arrays keep their order

    // Not JSON: the raw text is hashed, so equal garbage is equal and different garbage is not.
    CHECK(hash_tools("not json") == hash_tools("not json"));
    CHECK(hash_tools("not json") != hash_tools("not json!"));
}

TEST_CASE("health: tool_signatures lists each tool by name with its own schema hash")
{
    // Same tools in another order, schema keys reordered, a description added: same signatures.
    constexpr std::string_view reordered = R"({"tools":[
        {"inputSchema":{"properties":{"b":{"type":"number"},"a":{"type":"number"}},"type":"object"},"name":"add"},
        {"name":"echo","description":"says it back",
         "inputSchema":{"required":["text"],"properties":{"text":{"type":"string"}},"type":"object"}}]})";
    const auto a = tool_signatures(tools_a);
    REQUIRE(a.size() == 2);
    CHECK(a[0].name == "add"); // sorted by name
    CHECK(a[1].name == "echo");
    CHECK(a[0].input_schema_hash != a[1].input_schema_hash);
    CHECK(tool_signatures(reordered) == a);

    // Another schema for echo changes echo's hash only.
    constexpr std::string_view echo_changed = R"({"tools":[
        {"name":"echo","inputSchema":{"type":"object","properties":{"text":{"type":"integer"}},"required":["text"]}},
        {"name":"add","inputSchema":{"type":"object","properties":{"a":{"type":"number"},"b":{"type":"number"}}}}]})";
    const auto changed = tool_signatures(echo_changed);
    REQUIRE(changed.size() == 2);
    CHECK(changed[0] == a[0]);
    CHECK(changed[1].name == "echo");
    CHECK(changed[1].input_schema_hash != a[1].input_schema_hash);

    // A tool without a name cannot be called: left out. A repeated name counts once.
    constexpr std::string_view odd = R"({"tools":[{"inputSchema":{}},"text",{"name":"x"},{"name":"x","inputSchema":{"type":"object"}}]})";
    const auto o = tool_signatures(odd);
    REQUIRE(o.size() == 1);
    CHECK(o[0].name == "x");

    // The whole JSON-RPC response reads like its result; no tools array, no tools.
    CHECK(tool_signatures(R"({"jsonrpc":"2.0","id":2,"result":)" + std::string(tools_a) + "}") == a);
    CHECK(tool_signatures("not json").empty());
    CHECK(tool_signatures(R"({"result":{}})").empty());
}

TEST_CASE("health: http probe passes on 2xx and fails on 500")
{
    std::atomic<int> status{200};
    test_server server([&](const request& req) {
        CHECK(req.target() == "/health");
        CHECK(req[http::field::host] == "127.0.0.1");
        return answer(static_cast<http::status>(status.load()), R"({"ok":true})");
    });

    auto ok = run_probe(server.endpoint(), http_check());
    CHECK(ok.ok);
    CHECK(ok.error.empty());
    CHECK(!ok.tools_hash);
    CHECK(ok.latency.count() > 0);

    status = 500;
    auto failed = run_probe(server.endpoint(), http_check());
    CHECK(!failed.ok);
    CHECK(failed.error == "GET /health answered 500");
    CHECK(server.requests().size() == 2);
}

TEST_CASE("health: probe of a closed port fails with connection refused")
{
    asio::io_context io;
    tcp::acceptor closed(io, {asio::ip::make_address("127.0.0.1"), 0});
    const auto endpoint = closed.local_endpoint();
    closed.close();

    auto r = run_probe(endpoint, http_check());
    CHECK(!r.ok);
    CHECK(r.error == "connect: connection refused");
}

TEST_CASE("health: probe of a backend that never answers times out within the timeout")
{
    // A listening socket nobody accepts from: the kernel completes the handshake, then silence.
    asio::io_context io;
    tcp::acceptor silent(io, {asio::ip::make_address("127.0.0.1"), 0});

    const auto started = std::chrono::steady_clock::now();
    auto r = run_probe(silent.local_endpoint(), http_check(200ms));
    const auto elapsed = std::chrono::steady_clock::now() - started;
    CHECK(!r.ok);
    CHECK(r.error == "timed out after 200 ms");
    CHECK(elapsed >= 190ms);
    CHECK(elapsed < 1s);
}

TEST_CASE("health: mcp probe initializes, lists tools and deletes its session")
{
    test_server server([](const request& req) { return mcp_answer(req, {}); });

    auto r = run_probe(server.endpoint(), mcp_check());
    CHECK(r.ok);
    CHECK(r.error.empty());
    REQUIRE(r.tools_hash);
    const std::string expected = R"({"tools":[{"name":"echo","inputSchema":{"properties":{"text":{"type":"string"}},"type":"object"}}]})";
    CHECK(*r.tools_hash == hash_tools(expected));
    REQUIRE(r.tools.size() == 1);
    CHECK(r.tools == tool_signatures(expected)); // each tool, for the pools' compatibility
    CHECK(r.tools[0].name == "echo");

    const auto seen = server.requests();
    REQUIRE(seen.size() == 4);
    CHECK(contains(seen[0].body, "\"initialize\""));
    CHECK(seen[0].session_id.empty());
    CHECK(contains(seen[1].body, "notifications/initialized"));
    CHECK(seen[1].session_id == mock_session);
    CHECK(contains(seen[2].body, "tools/list"));
    CHECK(seen[3].method == http::verb::delete_);
    CHECK(seen[3].target == "/mcp");
    CHECK(seen[3].session_id == mock_session);
}

TEST_CASE("health: mcp probe reads answers sent as an event stream")
{
    test_server server([](const request& req) { return mcp_answer(req, {.sse = true}); });

    auto r = run_probe(server.endpoint(), mcp_check());
    CHECK(r.ok);
    CHECK(r.error.empty());
    CHECK(r.tools_hash);
    CHECK(server.requests().size() == 4);
}

TEST_CASE("health: mcp probe takes the response from an event stream that stays open")
{
    test_server server([](const request& req) { return mcp_answer(req, {.sse = true, .hold_open = true}); });

    const auto started = std::chrono::steady_clock::now();
    auto r = run_probe(server.endpoint(), mcp_check());
    CHECK(r.ok);
    CHECK(r.error.empty());
    CHECK(r.tools_hash);
    CHECK(std::chrono::steady_clock::now() - started < 500ms); // did not wait for the end
    CHECK(server.requests().size() == 4);
}

TEST_CASE("health: mcp probe fails on an empty tool list")
{
    test_server server([](const request& req) { return mcp_answer(req, {.empty_tools = true}); });

    auto r = run_probe(server.endpoint(), mcp_check());
    CHECK(!r.ok);
    CHECK(r.error == "tools/list is empty");
    CHECK(!r.tools_hash);
    CHECK(r.tools.empty());
}

TEST_CASE("health: mcp probe fails on an unknown protocolVersion")
{
    test_server server([](const request& req) { return mcp_answer(req, {.protocol_version = "1999-01-01"}); });

    auto r = run_probe(server.endpoint(), mcp_check());
    CHECK(!r.ok);
    CHECK(r.error == "unsupported protocolVersion 1999-01-01");
}

TEST_CASE("health: mcp probe fails when the backend answers 503 or a JSON-RPC error")
{
    {
        test_server server(
            [](const request& req) { return mcp_answer(req, {.initialize_status = http::status::service_unavailable}); });
        auto r = run_probe(server.endpoint(), mcp_check());
        CHECK(!r.ok);
        CHECK(r.error == "backend answered 503");
    }
    {
        test_server server(
            [](const request& req) { return mcp_answer(req, {.initialize_status = http::status::internal_server_error}); });
        auto r = run_probe(server.endpoint(), mcp_check());
        CHECK(!r.ok);
        CHECK(r.error == "initialize answered 500");
    }
    {
        test_server server([](const request&) {
            return answer(http::status::ok,
                          R"({"jsonrpc":"2.0","id":1,"error":{"code":-32603,"message":"database is down"}})");
        });
        auto r = run_probe(server.endpoint(), mcp_check());
        CHECK(!r.ok);
        CHECK(r.error == "initialize: JSON-RPC error -32603: database is down");
    }
}

namespace {

runtime::snapshot snapshot_with(std::vector<std::shared_ptr<upstream::backend>> backends,
                                std::optional<config::health_config> check)
{
    runtime::snapshot s;
    runtime::upstream_state u;
    u.config.name = "mcp";
    u.config.health = check;
    runtime::pool p;
    p.name = "blue";
    p.weight = 100;
    p.backends = std::move(backends);
    u.pools.push_back(std::move(p));
    s.upstreams.push_back(std::move(u));
    return s;
}

config::health_config fast_check()
{
    auto check = http_check(500ms);
    check.interval = 50ms;
    check.rise = 2;
    check.fall = 2;
    return check;
}

std::shared_ptr<upstream::backend> backend_at(const tcp::endpoint& endpoint)
{
    return std::make_shared<upstream::backend>("127.0.0.1:" + std::to_string(endpoint.port()), endpoint);
}

/// Runs io one handler at a time until pred holds (checked after each) or limit passes.
template <class Pred>
bool run_until(asio::io_context& io, Pred pred, std::chrono::milliseconds limit = 1500ms)
{
    const auto deadline = std::chrono::steady_clock::now() + limit;
    while (!pred() && std::chrono::steady_clock::now() < deadline) {
        if (io.stopped())
            io.restart();
        io.run_one_for(10ms);
    }
    return pred();
}

} // namespace

TEST_CASE("health: checker marks a backend down after fall failures and up after rise passes")
{
    std::atomic<bool> good{true};
    test_server server([&](const request&) { return answer(good ? http::status::ok : http::status::internal_server_error); });
    auto backend = backend_at(server.endpoint());
    runtime::shared_state shared(7);
    asio::io_context control;
    health::health_checker checker(control, shared);
    checker.update(snapshot_with({backend}, fast_check()));

    REQUIRE(run_until(control, [&] { return backend->report().passes_in_row >= 1; }));
    CHECK(backend->healthy());
    CHECK(backend->report().probed);
    CHECK(backend->report().last_ok);
    CHECK(backend->report().last_probe_unix_ms > 0);

    good = false;
    REQUIRE(run_until(control, [&] { return !backend->healthy(); }));
    auto report = backend->report();
    CHECK(report.fails_in_row == 2); // not one earlier
    CHECK(!report.last_ok);
    CHECK(report.last_error == "GET /health answered 500");

    good = true;
    REQUIRE(run_until(control, [&] { return backend->healthy(); }));
    report = backend->report();
    CHECK(report.passes_in_row == 2);
    CHECK(report.fails_in_row == 0);
    CHECK(report.last_ok);

    // Stopped: the probe in flight finishes and nothing is scheduled after it.
    checker.stop();
    control.restart();
    const auto started = std::chrono::steady_clock::now();
    control.run_for(2s);
    CHECK(std::chrono::steady_clock::now() - started < 1s);
}

TEST_CASE("health: checker records each tool of an mcp probe and keeps them while probes fail")
{
    std::atomic<bool> good{true};
    test_server server([&](const request& req) {
        return good ? mcp_answer(req, {}) : answer(http::status::internal_server_error);
    });
    auto backend = backend_at(server.endpoint());
    runtime::shared_state shared(7);
    asio::io_context control;
    health::health_checker checker(control, shared);
    auto check = mcp_check();
    check.interval = 50ms;
    checker.update(snapshot_with({backend}, check));

    REQUIRE(run_until(control, [&] { return backend->report().passes_in_row >= 1; }));
    const auto listed = backend->report().tools;
    REQUIRE(listed.size() == 1);
    CHECK(listed[0].name == "echo");

    // A failed probe lists nothing: what the backend announced last still stands.
    good = false;
    REQUIRE(run_until(control, [&] { return backend->report().fails_in_row >= 1; }));
    CHECK(backend->report().tools == listed);
    CHECK(backend->report().tools_hash);
    checker.stop();
}

TEST_CASE("health: checker lets a backend added unhealthy rise, and stops probing it when checks go")
{
    test_server server([](const request&) { return answer(http::status::ok); });
    auto backend = backend_at(server.endpoint());
    backend->set_healthy(false); // as the lead does for a backend added at run time
    runtime::shared_state shared(7);
    asio::io_context control;
    health::health_checker checker(control, shared);
    checker.update(snapshot_with({backend}, fast_check()));

    REQUIRE(run_until(control, [&] { return backend->report().passes_in_row >= 1; }));
    CHECK(!backend->healthy()); // one pass is not `rise`
    REQUIRE(run_until(control, [&] { return backend->healthy(); }));
    CHECK(backend->report().passes_in_row == 2);

    // The same snapshot again keeps the one loop; the upstream losing its checks stops it.
    checker.update(snapshot_with({backend}, fast_check()));
    checker.update(snapshot_with({backend}, std::nullopt));
    control.restart();
    control.run_for(1s); // returns as soon as the probe in flight (if any) is done
    const auto probes = server.requests().size();
    control.restart();
    control.run_for(150ms);
    CHECK(server.requests().size() == probes);
}

TEST_CASE("health: destroying the checker with probes in flight is safe")
{
    asio::io_context io;
    tcp::acceptor silent(io, {asio::ip::make_address("127.0.0.1"), 0}); // probes hang until timeout
    auto backend = backend_at(silent.local_endpoint());
    runtime::shared_state shared(7);
    asio::io_context control;
    {
        health::health_checker checker(control, shared);
        auto check = fast_check();
        check.timeout = 200ms;
        checker.update(snapshot_with({backend}, check));
        control.run_for(120ms); // the first probe is under way
    }
    const auto started = std::chrono::steady_clock::now();
    control.restart();
    control.run_for(2s);
    CHECK(std::chrono::steady_clock::now() - started < 1s);
    CHECK(!backend->report().probed); // the late result went nowhere
    CHECK(backend->healthy());
}

// ---- passive checks ------------------------------------------------------------------------

namespace {

upstream::backend passive_backend()
{
    return upstream::backend("127.0.0.1:9", tcp::endpoint(asio::ip::make_address("127.0.0.1"), 9));
}

} // namespace

TEST_CASE("passive: failures in a row eject the backend for the backoff, a success resets the count")
{
    auto b = passive_backend();
    b.set_passive(3, 100ms, 1000ms);
    const std::int64_t t = 1'000'000;
    b.record_failure(t);
    b.record_failure(t);
    b.record_success(t); // not in a row any more
    b.record_failure(t);
    b.record_failure(t);
    CHECK_FALSE(b.ejected(t));
    b.record_failure(t);
    CHECK(b.ejected(t));
    CHECK(b.ejected(t + 99));
    CHECK_FALSE(b.ejected(t + 100));
    CHECK(b.ejections() == 1);
}

TEST_CASE("passive: the backoff doubles while the backend keeps failing, up to the maximum")
{
    auto b = passive_backend();
    b.set_passive(2, 100ms, 350ms);
    std::int64_t t = 1'000'000;
    b.record_failure(t);
    b.record_failure(t);
    CHECK(b.ejected_until_ms() == t + 100);
    // Failures of requests sent before the ejection do not lengthen it.
    b.record_failure(t + 50);
    CHECK(b.ejected_until_ms() == t + 100);
    // Back on probation: one failure sends it out again, for twice as long.
    t += 100;
    b.record_failure(t);
    CHECK(b.ejected_until_ms() == t + 200);
    t += 200;
    b.record_failure(t);
    CHECK(b.ejected_until_ms() == t + 350); // 400 capped
    t += 350;
    b.record_failure(t);
    CHECK(b.ejected_until_ms() == t + 350);
    CHECK(b.ejections() == 4);
    // A good answer after the backoff ends probation: the threshold counts again from zero.
    t += 350;
    CHECK_FALSE(b.ejected(t));
    b.record_success(t);
    CHECK(b.ejections() == 0);
    b.record_failure(t);
    CHECK_FALSE(b.ejected(t));
    b.record_failure(t);
    CHECK(b.ejected_until_ms() == t + 100);
}

TEST_CASE("passive: 0 failures turns passive checks off and lifts an ejection")
{
    auto b = passive_backend();
    const std::int64_t t = 1'000'000;
    b.set_passive(1, 10s, 10s);
    b.record_failure(t);
    CHECK(b.ejected(t));
    CHECK_FALSE(b.available(t));
    b.set_passive(0, 10s, 10s);
    CHECK_FALSE(b.ejected(t));
    CHECK(b.available(t));
    for (int i = 0; i < 100; ++i)
        b.record_failure(t);
    CHECK_FALSE(b.ejected(t));
}

TEST_CASE("passive: the defaults are 5 failures and 2 s doubling to 60 s")
{
    auto b = passive_backend();
    const std::int64_t t = 1'000'000;
    for (int i = 0; i < 4; ++i)
        b.record_failure(t);
    CHECK_FALSE(b.ejected(t));
    b.record_failure(t);
    CHECK(b.ejected_until_ms() == t + 2000);
    std::int64_t now = t + 2000;
    for (int i = 0; i < 10; ++i) {
        b.record_failure(now);
        now = b.ejected_until_ms();
    }
    b.record_failure(now);
    CHECK(b.ejected_until_ms() == now + 60000);
}

TEST_CASE("passive: a published snapshot gives each backend its upstream's passive settings")
{
    const auto config = std::make_shared<const config::configuration>(config::parse(R"([[listen]]
address = "127.0.0.1:0"
[[upstream]]
name = "a"
  [[upstream.pool]]
  name = "blue"
  weight = 1
  backends = ["127.0.0.1:3001"]
  [upstream.health]
  kind = "none"
  passive_failures = 0
[[upstream]]
name = "b"
  [[upstream.pool]]
  name = "blue"
  weight = 1
  backends = ["127.0.0.1:3002"]
  [upstream.health]
  passive_failures = 2
  passive_backoff = "1s"
  passive_backoff_max = "3s"
[[route]]
upstream = "a"
)",
                                                                                    "conf.toml"));
    upstream::backend_registry registry;
    const auto s = runtime::build_snapshot(config, registry, net::resolve);
    runtime::mark_in_service(*s, registry);
    const auto off = registry.find("127.0.0.1:3001");
    const auto on = registry.find("127.0.0.1:3002");
    REQUIRE(off);
    REQUIRE(on);
    CHECK(off->passive_failures() == 0);
    const std::int64_t t = 1'000'000;
    for (int i = 0; i < 10; ++i)
        off->record_failure(t);
    CHECK_FALSE(off->ejected(t));
    CHECK(on->passive_failures() == 2);
    on->record_failure(t);
    on->record_failure(t);
    CHECK(on->ejected_until_ms() == t + 1000);
}
