#include "turnout/admin/admin_api.hpp"
#include "turnout/admin/admin_server.hpp"

#include <doctest/doctest.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/post.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/json.hpp>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <future>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <sys/stat.h>

using namespace std::chrono_literals;
using namespace turnout::admin;
namespace json = boost::json;
namespace fs = std::filesystem;

namespace {

/// Records every change it is asked for and answers with `next`.
class fake_control : public control {
public:
    json::object status() const override { return {{"version", "0.1.0"}, {"draining", false}}; }
    std::string metrics() const override { return "turnout_up 1\n"; }
    bool ready() const override { return ready_; }

    result set_weights(std::string_view upstream,
                       const std::vector<std::pair<std::string, std::int64_t>>& weights, bool force) override
    {
        record("set_weights", upstream);
        weights_ = weights;
        force_ = force;
        return next_;
    }
    result switch_to(std::string_view upstream, std::string_view pool, bool force) override
    {
        record("switch_to", upstream, pool);
        force_ = force;
        return next_;
    }
    result rollback(std::string_view upstream) override
    {
        record("rollback", upstream);
        return next_;
    }
    result drain(std::string_view upstream, std::string_view pool,
                 std::optional<turnout::config::duration> timeout) override
    {
        record("drain", upstream, pool);
        timeout_ = timeout;
        return next_;
    }
    result undrain(std::string_view upstream, std::string_view pool) override
    {
        record("undrain", upstream, pool);
        return next_;
    }
    result drain_backend(std::string_view upstream, std::string_view pool, std::string_view address,
                         std::optional<turnout::config::duration> timeout) override
    {
        record("drain_backend", upstream, pool);
        addresses_ = {std::string(address)};
        timeout_ = timeout;
        return next_;
    }
    result undrain_backend(std::string_view upstream, std::string_view pool, std::string_view address) override
    {
        record("undrain_backend", upstream, pool);
        addresses_ = {std::string(address)};
        return next_;
    }
    result set_backends(std::string_view upstream, std::string_view pool,
                        const std::vector<std::string>& addresses) override
    {
        record("set_backends", upstream, pool);
        addresses_ = addresses;
        return next_;
    }
    result watch_switch(std::string_view upstream, std::string_view pool, bool force,
                        turnout::config::duration watch) override
    {
        record("watch_switch", upstream, pool);
        force_ = force;
        timeout_ = watch;
        return next_;
    }
    result start_rollout(std::string_view upstream, const turnout::control::rollout_request& r) override
    {
        record("start_rollout", upstream, r.pool);
        rollout_ = r;
        return next_;
    }
    result rollout(std::string_view upstream) override
    {
        record("rollout", upstream);
        return next_;
    }
    result rollout_command(std::string_view upstream, turnout::control::rollout_command c) override
    {
        record(std::string("rollout_") + std::string(turnout::control::to_string(c)), upstream);
        return next_;
    }
    result reload() override
    {
        record("reload");
        if (throw_)
            throw std::runtime_error("boom");
        return next_;
    }
    result upgrade(const std::optional<std::string>& binary) override
    {
        record("upgrade");
        binary_ = binary;
        return next_;
    }

    bool ready_ = true;
    bool throw_ = false;
    result next_ = result::ok();

    std::vector<std::string> calls_; // "name upstream pool"
    std::vector<std::pair<std::string, std::int64_t>> weights_;
    bool force_ = false;
    std::optional<turnout::config::duration> timeout_;
    std::vector<std::string> addresses_;
    std::optional<std::string> binary_;
    turnout::control::rollout_request rollout_;

private:
    void record(std::string_view name, std::string_view upstream = {}, std::string_view pool = {})
    {
        std::string call{name};
        if (!upstream.empty())
            call += " " + std::string{upstream};
        if (!pool.empty())
            call += " " + std::string{pool};
        calls_.push_back(std::move(call));
    }
};

std::string error_of(const http_answer& a) { return std::string{json::parse(a.body).at("error").as_string()}; }

/// Expects a 400 with exactly this sentence, and that control was never asked.
void check_rejected(fake_control& c, std::string_view method, std::string_view target, std::string_view body,
                    std::string_view sentence)
{
    CAPTURE(body);
    const auto a = handle_request(c, method, target, body);
    CHECK(a.status == 400);
    CHECK(a.content_type == "application/json");
    CHECK(error_of(a) == sentence);
    CHECK(c.calls_.empty());
}

} // namespace

// ---------------------------------------------------------------------------------------------
// Read-only endpoints

TEST_CASE("admin: GET /v1/status answers control's status document")
{
    fake_control c;
    const auto a = handle_request(c, "GET", "/v1/status", "");
    CHECK(a.status == 200);
    CHECK(a.content_type == "application/json");
    CHECK(json::parse(a.body) == json::value(c.status()));
    CHECK(a.allow.empty());
}

TEST_CASE("admin: query strings are ignored")
{
    fake_control c;
    CHECK(handle_request(c, "GET", "/v1/status?pretty=1", "").status == 200);
    CHECK(handle_request(c, "POST", "/v1/upstreams/mcp/rollback?x=y", "").status == 200);
    CHECK(c.calls_ == std::vector<std::string>{"rollback mcp"});
}

TEST_CASE("admin: GET /metrics is Prometheus text")
{
    fake_control c;
    const auto a = handle_request(c, "GET", "/metrics", "");
    CHECK(a.status == 200);
    CHECK(a.content_type == "text/plain; version=0.0.4");
    CHECK(a.body == "turnout_up 1\n");
}

TEST_CASE("admin: GET /healthz is always ok")
{
    fake_control c;
    c.ready_ = false;
    const auto a = handle_request(c, "GET", "/healthz", "");
    CHECK(a.status == 200);
    CHECK(a.body == R"({"status":"ok"})");
}

TEST_CASE("admin: GET /readyz follows control.ready()")
{
    fake_control c;
    CHECK(handle_request(c, "GET", "/readyz", "").status == 200);
    c.ready_ = false;
    const auto a = handle_request(c, "GET", "/readyz", "");
    CHECK(a.status == 503);
    CHECK(a.body == R"({"status":"draining"})");
}

// ---------------------------------------------------------------------------------------------
// Routing errors

TEST_CASE("admin: an unknown path answers 404 naming it")
{
    fake_control c;
    auto a = handle_request(c, "GET", "/v1/nothing?q=1", "");
    CHECK(a.status == 404);
    CHECK(error_of(a) == "no such endpoint: GET /v1/nothing");
    CHECK(handle_request(c, "GET", "/v1/status/", "").status == 404);
    CHECK(handle_request(c, "GET", "/", "").status == 404);
    CHECK(handle_request(c, "GET", "", "").status == 404);
    CHECK(handle_request(c, "POST", "/v1/upstreams/mcp/pools/blue/explode", "").status == 404);
    CHECK(handle_request(c, "POST", "/v1/upstreams/mcp", "").status == 404);
    CHECK(c.calls_.empty());
}

TEST_CASE("admin: a known path with the wrong method answers 405 with Allow")
{
    fake_control c;
    auto a = handle_request(c, "POST", "/v1/status", "");
    CHECK(a.status == 405);
    CHECK(a.allow == "GET");
    CHECK(error_of(a) == "POST /v1/status is not allowed: use GET");

    a = handle_request(c, "GET", "/v1/upstreams/mcp/weights", "");
    CHECK(a.status == 405);
    CHECK(a.allow == "PUT");

    a = handle_request(c, "PUT", "/v1/upstreams/mcp/pools/blue/drain", "");
    CHECK(a.status == 405);
    CHECK(a.allow == "POST");

    CHECK(handle_request(c, "DELETE", "/metrics", "").allow == "GET");
    CHECK(handle_request(c, "HEAD", "/readyz", "").status == 405);
    CHECK(handle_request(c, "GET", "/v1/reload", "").allow == "POST");
    CHECK(c.calls_.empty());
}

TEST_CASE("admin: upstream and pool names are letters, digits, '.', '_' and '-'")
{
    fake_control c;
    auto a = handle_request(c, "POST", "/v1/upstreams/m%20cp/rollback", "");
    CHECK(a.status == 400);
    CHECK(error_of(a) == "upstream name \"m%20cp\" may contain only letters, digits, '.', '_' and '-'");

    a = handle_request(c, "POST", "/v1/upstreams/mcp/pools/bl$ue/undrain", "");
    CHECK(a.status == 400);
    CHECK(error_of(a) == "pool name \"bl$ue\" may contain only letters, digits, '.', '_' and '-'");

    a = handle_request(c, "POST", "/v1/upstreams//rollback", "");
    CHECK(a.status == 400);
    CHECK(error_of(a) == "upstream name is empty");
    CHECK(c.calls_.empty());

    CHECK(handle_request(c, "POST", "/v1/upstreams/My_mcp-2.0/pools/Blue.v1_x-y/undrain", "").status == 200);
    CHECK(c.calls_ == std::vector<std::string>{"undrain My_mcp-2.0 Blue.v1_x-y"});
}

// ---------------------------------------------------------------------------------------------
// Results

TEST_CASE("admin: a successful change answers the new state, or {\"ok\":true}")
{
    fake_control c;
    auto a = handle_request(c, "POST", "/v1/reload", "");
    CHECK(a.status == 200);
    CHECK(a.body == R"({"ok":true})");

    c.next_ = result::ok({{"name", "mcp"}});
    a = handle_request(c, "POST", "/v1/upstreams/mcp/rollback", "");
    CHECK(a.status == 200);
    CHECK(a.body == R"({"name":"mcp"})");
}

TEST_CASE("admin: a refused change answers control's status and sentence")
{
    fake_control c;
    for (const unsigned status : {400u, 404u, 409u}) {
        c.next_ = result::fail(status, "no \"green\" here");
        const auto a = handle_request(c, "POST", "/v1/upstreams/mcp/switch", R"({"pool":"green"})");
        CHECK(a.status == status);
        CHECK(a.content_type == "application/json");
        CHECK(error_of(a) == "no \"green\" here");
    }
}

TEST_CASE("admin: an exception in control answers 500")
{
    fake_control c;
    c.throw_ = true;
    const auto a = handle_request(c, "POST", "/v1/reload", "");
    CHECK(a.status == 500);
    CHECK(error_of(a) == "internal error: boom");
}

// ---------------------------------------------------------------------------------------------
// Weights

TEST_CASE("admin: PUT weights passes the pools in order")
{
    fake_control c;
    const auto a = handle_request(c, "PUT", "/v1/upstreams/mcp/weights", R"({"blue":95,"green":5,"red":0})");
    CHECK(a.status == 200);
    CHECK(c.calls_ == std::vector<std::string>{"set_weights mcp"});
    using w = std::vector<std::pair<std::string, std::int64_t>>;
    CHECK(c.weights_ == w{{"blue", 95}, {"green", 5}, {"red", 0}});

    CHECK_FALSE(c.force_);

    fake_control zero;
    CHECK(handle_request(zero, "PUT", "/v1/upstreams/mcp/weights", R"({"blue":1000000})").status == 200);
    CHECK(zero.weights_ == w{{"blue", 1000000}});
}

TEST_CASE("admin: PUT weights also takes {\"weights\":{...},\"force\":B}")
{
    using w = std::vector<std::pair<std::string, std::int64_t>>;
    fake_control c;
    auto a = handle_request(c, "PUT", "/v1/upstreams/mcp/weights", R"({"weights":{"blue":95,"green":5},"force":true})");
    CHECK(a.status == 200);
    CHECK(c.weights_ == w{{"blue", 95}, {"green", 5}});
    CHECK(c.force_);

    fake_control unforced;
    a = handle_request(unforced, "PUT", "/v1/upstreams/mcp/weights", R"({"weights":{"green":5}})");
    CHECK(a.status == 200);
    CHECK(unforced.weights_ == w{{"green", 5}});
    CHECK_FALSE(unforced.force_);

    // A pool may be named "weights": with an integer it is one.
    fake_control named;
    CHECK(handle_request(named, "PUT", "/v1/upstreams/mcp/weights", R"({"weights":3})").status == 200);
    CHECK(named.weights_ == w{{"weights", 3}});

    const std::string target = "/v1/upstreams/mcp/weights";
    fake_control bad;
    check_rejected(bad, "PUT", target, R"({"weights":{"blue":1},"force":"yes"})", "weights: \"force\" must be true or false");
    check_rejected(bad, "PUT", target, R"({"weights":{"blue":1},"blue":2})", "weights: unknown field \"blue\"");
    check_rejected(bad, "PUT", target, R"({"blue":1,"force":true})", R"(weights: to force, send {"weights":{...},"force":true})");
    check_rejected(bad, "PUT", target, R"({"weights":{}})",
                   "weights: name at least one pool, expected an object of pool weights such as "
                   R"({"blue":95,"green":5}, or {"weights":{"blue":95,"green":5},"force":true})");
}

TEST_CASE("admin: PUT weights rejects bad bodies")
{
    const std::string target = "/v1/upstreams/mcp/weights";
    const std::string hint = R"(expected an object of pool weights such as {"blue":95,"green":5}, or {"weights":{"blue":95,"green":5},"force":true})";
    const auto bad_weight = [](std::string_view pool, std::string_view got) {
        return "weights: the weight of pool \"" + std::string{pool} + "\" must be an integer from 0 to 1000000, got " +
               std::string{got};
    };
    fake_control c;
    check_rejected(c, "PUT", target, "", "request body is not valid JSON: the body is empty");
    check_rejected(c, "PUT", target, "[1,2]", "weights: " + hint);
    check_rejected(c, "PUT", target, "95", "weights: " + hint);
    check_rejected(c, "PUT", target, "{}", "weights: name at least one pool, " + hint);
    check_rejected(c, "PUT", target, R"({"blue":-1})", bad_weight("blue", "-1"));
    check_rejected(c, "PUT", target, R"({"blue":5.5})", bad_weight("blue", "5.5"));
    check_rejected(c, "PUT", target, R"({"blue":5.0})", bad_weight("blue", "5.0"));
    check_rejected(c, "PUT", target, R"({"blue":1000001})", bad_weight("blue", "1000001"));
    check_rejected(c, "PUT", target, R"({"blue":18446744073709551615})", bad_weight("blue", "18446744073709551615"));
    check_rejected(c, "PUT", target, R"({"blue":1e30})", bad_weight("blue", "1e+30"));
    check_rejected(c, "PUT", target, R"({"blue":"5"})", bad_weight("blue", "\"5\""));
    check_rejected(c, "PUT", target, R"({"blue":95,"green":null})", bad_weight("green", "null"));
    check_rejected(c, "PUT", target, R"({"blue":true})", bad_weight("blue", "true"));
}

TEST_CASE("admin: invalid JSON answers 400 with the parser's reason")
{
    fake_control c;
    for (const std::string_view body : {"{", "{\"blue\":95,}", "not json", "{\"blue\":95} x"}) {
        CAPTURE(body);
        const auto a = handle_request(c, "PUT", "/v1/upstreams/mcp/weights", body);
        CHECK(a.status == 400);
        const auto sentence = error_of(a);
        CHECK(sentence.starts_with("request body is not valid JSON: "));
        CHECK(sentence.size() > std::string_view{"request body is not valid JSON: "}.size());
    }
    CHECK(c.calls_.empty());
}

// ---------------------------------------------------------------------------------------------
// Switch, rollback

TEST_CASE("admin: POST switch passes pool and force")
{
    fake_control c;
    CHECK(handle_request(c, "POST", "/v1/upstreams/mcp/switch", R"({"pool":"green","force":true})").status == 200);
    CHECK(c.calls_ == std::vector<std::string>{"switch_to mcp green"});
    CHECK(c.force_);

    fake_control d;
    d.force_ = true;
    CHECK(handle_request(d, "POST", "/v1/upstreams/mcp/switch", R"({"pool":"blue"})").status == 200);
    CHECK(d.calls_ == std::vector<std::string>{"switch_to mcp blue"});
    CHECK_FALSE(d.force_);
}

TEST_CASE("admin: POST switch rejects bad bodies")
{
    const std::string target = "/v1/upstreams/mcp/switch";
    const std::string hint = R"(expected a body such as {"pool":"green","force":false})";
    fake_control c;
    check_rejected(c, "POST", target, "", "request body is not valid JSON: the body is empty");
    check_rejected(c, "POST", target, R"("green")", "switch: " + hint);
    check_rejected(c, "POST", target, "{}", "switch: \"pool\" must be a pool name, " + hint);
    check_rejected(c, "POST", target, R"({"pool":5})", "switch: \"pool\" must be a pool name, " + hint);
    check_rejected(c, "POST", target, R"({"pool":"green","force":"yes"})", "switch: \"force\" must be true or false");
    check_rejected(c, "POST", target, R"({"pool":"green","forse":true})", "switch: unknown field \"forse\"");
}

TEST_CASE("admin: POST rollback ignores any body")
{
    fake_control c;
    CHECK(handle_request(c, "POST", "/v1/upstreams/mcp/rollback", "").status == 200);
    CHECK(handle_request(c, "POST", "/v1/upstreams/mcp/rollback", "whatever").status == 200);
    CHECK(c.calls_ == std::vector<std::string>{"rollback mcp", "rollback mcp"});
}

// ---------------------------------------------------------------------------------------------
// Drain, undrain

TEST_CASE("admin: POST drain takes an optional timeout")
{
    fake_control c;
    CHECK(handle_request(c, "POST", "/v1/upstreams/mcp/pools/blue/drain", "").status == 200);
    CHECK(c.calls_ == std::vector<std::string>{"drain mcp blue"});
    CHECK_FALSE(c.timeout_.has_value());

    c.timeout_ = 1ms;
    CHECK(handle_request(c, "POST", "/v1/upstreams/mcp/pools/blue/drain", "{}").status == 200);
    CHECK_FALSE(c.timeout_.has_value());

    CHECK(handle_request(c, "POST", "/v1/upstreams/mcp/pools/blue/drain", R"({"timeout":"60s"})").status == 200);
    CHECK(c.timeout_ == turnout::config::duration{60s});

    CHECK(handle_request(c, "POST", "/v1/upstreams/mcp/pools/blue/drain", R"({"timeout":"250ms"})").status == 200);
    CHECK(c.timeout_ == turnout::config::duration{250ms});
}

TEST_CASE("admin: POST drain rejects bad timeouts")
{
    const std::string target = "/v1/upstreams/mcp/pools/blue/drain";
    const std::string bad_timeout = R"(timeout: expected a duration such as "60s")";
    fake_control c;
    check_rejected(c, "POST", target, R"({"timeout":"60"})", bad_timeout);
    check_rejected(c, "POST", target, R"({"timeout":"soon"})", bad_timeout);
    check_rejected(c, "POST", target, R"({"timeout":"-5s"})", bad_timeout);
    check_rejected(c, "POST", target, R"({"timeout":60})", bad_timeout);
    check_rejected(c, "POST", target, R"({"timeout":null})", bad_timeout);
    check_rejected(c, "POST", target, R"({"timeuot":"60s"})", "drain: unknown field \"timeuot\"");
    check_rejected(c, "POST", target, R"(["60s"])", R"(drain: expected a body such as {"timeout":"60s"}, or none)");
    const auto a = handle_request(c, "POST", target, R"({"timeout":)");
    CHECK(a.status == 400);
    CHECK(error_of(a).starts_with("request body is not valid JSON: "));
    CHECK(c.calls_.empty());
}

TEST_CASE("admin: POST drain and undrain of one backend, its address raw or percent-encoded")
{
    fake_control c;
    auto a = handle_request(c, "POST", "/v1/upstreams/mcp/pools/blue/backends/127.0.0.1:3001/drain", R"({"timeout":"5s"})");
    CHECK(a.status == 200);
    CHECK(c.calls_ == std::vector<std::string>{"drain_backend mcp blue"});
    CHECK(c.addresses_ == std::vector<std::string>{"127.0.0.1:3001"});
    CHECK(c.timeout_ == std::chrono::seconds(5));

    fake_control v6;
    a = handle_request(v6, "POST", "/v1/upstreams/mcp/pools/blue/backends/%5B%3A%3A1%5D%3A3001/drain", "");
    CHECK(a.status == 200);
    CHECK(v6.addresses_ == std::vector<std::string>{"[::1]:3001"});
    CHECK_FALSE(v6.timeout_); // the proxy's drain_timeout

    fake_control undrain;
    a = handle_request(undrain, "POST", "/v1/upstreams/mcp/pools/blue/backends/127.0.0.1%3a3001/undrain", "");
    CHECK(a.status == 200);
    CHECK(undrain.calls_ == std::vector<std::string>{"undrain_backend mcp blue"});
    CHECK(undrain.addresses_ == std::vector<std::string>{"127.0.0.1:3001"});

    fake_control bad;
    const std::string sentence = R"(" is not an address such as "127.0.0.1:3021" or "[::1]:3021")";
    check_rejected(bad, "POST", "/v1/upstreams/mcp/pools/blue/backends/nowhere/drain", "", "backend \"nowhere" + sentence);
    check_rejected(bad, "POST", "/v1/upstreams/mcp/pools/blue/backends/127.0.0.1%3/drain", "",
                   "backend \"127.0.0.1%3" + sentence);
    check_rejected(bad, "POST", "/v1/upstreams/mcp/pools/blue/backends/127.0.0.1:0/undrain", "",
                   "backend \"127.0.0.1:0" + sentence);
    check_rejected(bad, "POST", "/v1/upstreams/mcp/pools/blue/backends/127.0.0.1:1/drain", R"({"timeout":"soon"})",
                   R"(timeout: expected a duration such as "60s")");
    check_rejected(bad, "POST", "/v1/upstreams/m$/pools/blue/backends/127.0.0.1:1/drain", "",
                   "upstream name \"m$\" may contain only letters, digits, '.', '_' and '-'");
}

TEST_CASE("admin: POST undrain needs no body")
{
    fake_control c;
    CHECK(handle_request(c, "POST", "/v1/upstreams/mcp/pools/green/undrain", "").status == 200);
    CHECK(c.calls_ == std::vector<std::string>{"undrain mcp green"});
}

// ---------------------------------------------------------------------------------------------
// Backends

TEST_CASE("admin: PUT backends passes the addresses")
{
    fake_control c;
    const auto a = handle_request(c, "PUT", "/v1/upstreams/mcp/pools/green/backends",
                                  R"(["127.0.0.1:3021","[::1]:3022","backend.local:65535"])");
    CHECK(a.status == 200);
    CHECK(c.calls_ == std::vector<std::string>{"set_backends mcp green"});
    CHECK(c.addresses_ == std::vector<std::string>{"127.0.0.1:3021", "[::1]:3022", "backend.local:65535"});
}

TEST_CASE("admin: PUT backends with an empty array empties the pool")
{
    fake_control c;
    c.addresses_ = {"x"};
    CHECK(handle_request(c, "PUT", "/v1/upstreams/mcp/pools/green/backends", "[]").status == 200);
    CHECK(c.calls_ == std::vector<std::string>{"set_backends mcp green"});
    CHECK(c.addresses_.empty());
}

TEST_CASE("admin: PUT backends rejects bad addresses, naming them")
{
    const std::string target = "/v1/upstreams/mcp/pools/green/backends";
    const std::string hint = R"(expected an array of addresses such as ["127.0.0.1:3021"])";
    const auto bad = [](std::string_view address) {
        return "backends: \"" + std::string{address} + R"(" is not an address such as "127.0.0.1:3021" or "[::1]:3021")";
    };
    fake_control c;
    check_rejected(c, "PUT", target, "", "request body is not valid JSON: the body is empty");
    check_rejected(c, "PUT", target, R"({"a":"127.0.0.1:1"})", "backends: " + hint);
    check_rejected(c, "PUT", target, R"("127.0.0.1:3021")", "backends: " + hint);
    check_rejected(c, "PUT", target, R"(["127.0.0.1:3021",3022])", "backends: " + hint + ", got 3022");
    check_rejected(c, "PUT", target, R"(["127.0.0.1:3021","nope"])", bad("nope"));
    check_rejected(c, "PUT", target, R"(["127.0.0.1:0"])", bad("127.0.0.1:0"));
    check_rejected(c, "PUT", target, R"(["127.0.0.1:65536"])", bad("127.0.0.1:65536"));
    check_rejected(c, "PUT", target, R"(["::1:3021"])", bad("::1:3021"));
    check_rejected(c, "PUT", target, R"([""])", bad(""));
    check_rejected(c, "PUT", target, R"(["127.0.0.1:3021","127.0.0.1:3021"])",
                   "backends: \"127.0.0.1:3021\" is listed twice");
}

TEST_CASE("admin: POST reload")
{
    fake_control c;
    CHECK(handle_request(c, "POST", "/v1/reload", "").status == 200);
    CHECK(c.calls_ == std::vector<std::string>{"reload"});
}

TEST_CASE("admin: POST upgrade takes an optional binary and answers the new pid")
{
    fake_control c;
    c.next_ = result::ok({{"pid", 4321}});
    auto a = handle_request(c, "POST", "/v1/upgrade", "");
    CHECK(a.status == 200);
    CHECK(json::parse(a.body).as_object().at("pid").as_int64() == 4321);
    CHECK(!c.binary_);
    a = handle_request(c, "POST", "/v1/upgrade", R"({"binary":"/opt/turnout/bin/turnout"})");
    CHECK(a.status == 200);
    CHECK(c.binary_ == std::optional<std::string>("/opt/turnout/bin/turnout"));
    CHECK(c.calls_ == std::vector<std::string>{"upgrade", "upgrade"});

    CHECK(handle_request(c, "GET", "/v1/upgrade", "").allow == "POST");
    CHECK(handle_request(c, "POST", "/v1/upgrade", R"({"binary":7})").status == 400);
    CHECK(handle_request(c, "POST", "/v1/upgrade", R"({"binary":""})").status == 400);
    CHECK(handle_request(c, "POST", "/v1/upgrade", R"({"path":"/x"})").status == 400);
    CHECK(handle_request(c, "POST", "/v1/upgrade", R"(["/x"])").status == 400);
    CHECK(c.calls_.size() == 2); // refused shapes never reach the process

    c.next_ = result::fail(409, "an upgrade is already running");
    a = handle_request(c, "POST", "/v1/upgrade", "{}");
    CHECK(a.status == 409);
    CHECK(json::parse(a.body).as_object().at("error").as_string() == "an upgrade is already running");
}

// ---------------------------------------------------------------------------------------------
// The server on a real Unix socket

namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using local = asio::local::stream_protocol;

/// A fresh private directory, removed at the end of the test.
struct temp_dir {
    temp_dir()
    {
        std::string pattern = (fs::temp_directory_path() / "turnout-admin-XXXXXX").string();
        if (!::mkdtemp(pattern.data()))
            throw std::runtime_error("mkdtemp failed");
        path = pattern;
    }
    ~temp_dir()
    {
        std::error_code ignored;
        fs::remove_all(path, ignored);
    }
    fs::path path;
};

http::response<http::string_body> exchange(local::socket& socket, beast::flat_buffer& buffer,
                                           http::request<http::string_body> req)
{
    req.prepare_payload();
    http::write(socket, req);
    http::response<http::string_body> res;
    http::read(socket, buffer, res);
    return res;
}

/// Runs io on a thread; join() waits (bounded) for it to run out of work.
struct io_thread {
    explicit io_thread(asio::io_context& io) : done(std::async(std::launch::async, [&io] { io.run(); })) {}
    bool finished_within(std::chrono::seconds limit) { return done.wait_for(limit) == std::future_status::ready; }
    std::future<void> done;
};

} // namespace

TEST_CASE("admin: the server answers over a 0600 Unix socket and removes it on close")
{
    temp_dir dir;
    const auto path = (dir.path / "admin.sock").string();
    fake_control c;
    asio::io_context io;

    // A stale socket file from a dead process is replaced.
    {
        local::acceptor stale(io, local::endpoint(path));
    }
    REQUIRE(fs::is_socket(path));

    admin_server server(io, path, c);
    server.start();

    struct stat st{};
    REQUIRE(::lstat(path.c_str(), &st) == 0);
    CHECK(S_ISSOCK(st.st_mode));
    CHECK((st.st_mode & 07777) == 0600);

    io_thread runner(io);

    asio::io_context client_io;
    local::socket socket(client_io);
    socket.connect(local::endpoint(path));
    beast::flat_buffer buffer;

    // Two requests on one keep-alive connection.
    auto res = exchange(socket, buffer, {http::verb::get, "/v1/status", 11});
    CHECK(res.result() == http::status::ok);
    CHECK(res[http::field::content_type] == "application/json");
    CHECK(json::parse(res.body()) == json::value(c.status()));
    CHECK(res.keep_alive());

    http::request<http::string_body> put{http::verb::put, "/v1/upstreams/mcp/weights", 11};
    put.body() = R"({"blue":95,"green":5})";
    res = exchange(socket, buffer, put);
    CHECK(res.result() == http::status::ok);
    CHECK(c.weights_.size() == 2);

    // 405 carries Allow as a header.
    res = exchange(socket, buffer, {http::verb::delete_, "/v1/status", 11});
    CHECK(res.result() == http::status::method_not_allowed);
    CHECK(res[http::field::allow] == "GET");

    // Connection: close is honoured.
    http::request<http::string_body> last{http::verb::get, "/healthz", 11};
    last.set(http::field::connection, "close");
    res = exchange(socket, buffer, last);
    CHECK(res.result() == http::status::ok);
    CHECK_FALSE(res.keep_alive());
    beast::error_code ec;
    http::read(socket, buffer, res, ec);
    CHECK(ec == http::error::end_of_stream);
    socket.close();

    // A body over 1 MiB is refused from its Content-Length alone.
    local::socket big(client_io);
    big.connect(local::endpoint(path));
    const std::string head = "PUT /v1/upstreams/mcp/weights HTTP/1.1\r\nHost: x\r\nContent-Length: 2000000\r\n\r\n";
    asio::write(big, asio::buffer(head));
    beast::flat_buffer big_buffer;
    http::response<http::string_body> refused;
    http::read(big, big_buffer, refused);
    CHECK(refused.result() == http::status::payload_too_large);

    // An idle keep-alive connection does not hold up close().
    local::socket idle(client_io);
    idle.connect(local::endpoint(path));
    res = exchange(idle, buffer, {http::verb::get, "/readyz", 11});
    CHECK(res.result() == http::status::ok);

    asio::post(io, [&server] { server.close(); });
    const bool stopped = runner.finished_within(5s);
    if (!stopped)
        io.stop();
    CHECK(stopped);
    CHECK_FALSE(fs::exists(path));
}

TEST_CASE("admin: the server refuses to replace a file that is not a socket")
{
    temp_dir dir;
    const auto path = (dir.path / "admin.sock").string();
    std::ofstream(path) << "precious";
    fake_control c;
    asio::io_context io;
    CHECK_THROWS_AS(admin_server(io, path, c), std::runtime_error);
    CHECK(fs::is_regular_file(path));
}

// ---------------------------------------------------------------------------------------------
// The read-only status address: the same handler, restricted

TEST_CASE("admin: read-only access answers /healthz, /readyz and /metrics like the admin socket")
{
    fake_control c;
    for (const std::string_view path : {"/healthz", "/readyz", "/metrics", "/metrics?x=1"}) {
        CAPTURE(path);
        const auto full = handle_request(c, "GET", path, "");
        const auto read_only = handle_request(c, "GET", path, "", access::read_only);
        CHECK(read_only.status == 200);
        CHECK(read_only.status == full.status);
        CHECK(read_only.body == full.body);
        CHECK(read_only.content_type == full.content_type);
    }
    c.ready_ = false;
    CHECK(handle_request(c, "GET", "/readyz", "", access::read_only).status == 503);
    CHECK(handle_request(c, "HEAD", "/readyz", "", access::read_only).status == 503);
}

TEST_CASE("admin: read-only access refuses every change with 405 and never calls control")
{
    fake_control c;
    const std::vector<std::pair<std::string_view, std::string_view>> attempts{
        {"PUT", "/v1/upstreams/mcp/weights"},   {"POST", "/v1/upstreams/mcp/switch"},
        {"POST", "/v1/upstreams/mcp/rollback"}, {"POST", "/v1/upstreams/mcp/pools/blue/drain"},
        {"POST", "/v1/upstreams/mcp/pools/blue/undrain"}, {"PUT", "/v1/upstreams/mcp/pools/blue/backends"},
        {"POST", "/v1/reload"},                 {"DELETE", "/healthz"},
        {"POST", "/metrics"},
    };
    for (const auto& [method, target] : attempts) {
        CAPTURE(target);
        const auto a = handle_request(c, method, target, R"({"blue":1})", access::read_only);
        CHECK(a.status == 405);
        CHECK(a.allow == "GET, HEAD");
        CHECK(error_of(a) == "the status endpoint is read-only: use GET");
    }
    CHECK(c.calls_.empty());
}

TEST_CASE("admin: read-only access hides the admin API's other paths, even for GET")
{
    fake_control c;
    for (const std::string_view path : {"/v1/status", "/v1/reload", "/v1/upstreams/mcp/weights", "/nope", "/"}) {
        CAPTURE(path);
        const auto a = handle_request(c, "GET", path, "", access::read_only);
        CHECK(a.status == 404);
        CHECK(error_of(a) == "unknown path: try /healthz, /readyz or /metrics");
    }
    CHECK(handle_request(c, "GET", "/v1/status", "").status == 200); // the socket still has it
    CHECK(handle_request(c, "HEAD", "/healthz", "").status == 405);  // and keeps its own rules
    CHECK(c.calls_.empty());
}
