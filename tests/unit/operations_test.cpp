// The admin operations as decisions (control::operations): each computes the next runtime
// state from the one in force, or refuses with the status and sentence the admin API answers.
// No file, no socket, no DNS: the snapshot is built with a resolver that only reads literals.

#include "turnout/control/operations.hpp"
#include "turnout/control/tool_compatibility.hpp"
#include "turnout/runtime/snapshot.hpp"

#include <doctest/doctest.h>

#include <string>
#include <vector>

using namespace turnout;
using control::operations;

namespace {

config::pool_config pool_conf(std::string name, std::uint32_t weight, std::string backend)
{
    config::pool_config pool;
    pool.name = std::move(name);
    pool.weight = weight;
    pool.backends.push_back(*config::parse_host_port(backend));
    return pool;
}

boost::asio::ip::tcp::endpoint literal(const config::host_port& address, boost::system::error_code& ec)
{
    boost::asio::ip::tcp::endpoint e;
    e.address(boost::asio::ip::make_address(address.host, ec));
    e.port(address.port);
    return e;
}

/// mcp: blue (weight 100, 127.0.0.1:3001) and green (weight 0, 127.0.0.1:3011), both healthy.
struct fixture {
    std::shared_ptr<config::configuration> config = [] {
        auto c = std::make_shared<config::configuration>();
        config::upstream_config u;
        u.name = "mcp";
        u.pools = {pool_conf("blue", 100, "127.0.0.1:3001"), pool_conf("green", 0, "127.0.0.1:3011")};
        c->upstreams.push_back(std::move(u));
        c->proxy.drain_timeout = std::chrono::seconds(30);
        return c;
    }();
    upstream::backend_registry registry;
    runtime::runtime_state state = runtime::initial_state(*config);
    std::shared_ptr<runtime::snapshot> live = rebuild();

    std::shared_ptr<runtime::snapshot> rebuild()
    {
        auto s = runtime::build_snapshot(config, state, 0, registry, literal);
        runtime::mark_in_service(*s, registry);
        return s;
    }
    operations ops() const { return operations(state, *live, *config); }
    upstream::backend& backend(const std::string& address) { return *registry.find(address); }
    /// What an MCP probe of address found: these tools (name, schema hash), sorted as the
    /// probe sorts them; the whole set's hash from them.
    void tools(const std::string& address, std::vector<upstream::tool_signature> list)
    {
        std::sort(list.begin(), list.end());
        upstream::health_report r;
        r.probed = true;
        std::uint64_t hash = 1469598103934665603ull;
        for (const auto& t : list) {
            for (const char c : t.name)
                hash = (hash ^ static_cast<unsigned char>(c)) * 1099511628211ull;
            hash = (hash ^ t.input_schema_hash) * 1099511628211ull;
        }
        r.tools_hash = hash;
        r.tools = std::move(list);
        backend(address).set_report(r);
    }
    const runtime::upstream_state& live_mcp() const { return live->upstreams.at(0); }
    const runtime::pool& live_pool(const std::string& name) const
    {
        for (const auto& p : live_mcp().pools)
            if (p.name == name)
                return p;
        FAIL("no pool " << name);
        throw std::logic_error("unreachable");
    }
    /// Makes d the state in force (as a commit would).
    void apply(const control::decision& d)
    {
        REQUIRE(d.ok());
        state = d.next;
        live = rebuild();
    }
};

std::uint32_t weight(const runtime::runtime_state& s, const char* pool)
{
    return s.find("mcp")->find(pool)->weight;
}

} // namespace

TEST_CASE("operations: weights within 0..1000000, not all 0, of known pools")
{
    fixture f;
    auto d = f.ops().set_weights("mcp", {{"blue", 90}, {"green", 10}}, false);
    REQUIRE(d.ok());
    CHECK(weight(d.next, "blue") == 90);
    CHECK(weight(d.next, "green") == 10);
    CHECK(d.summary == "mcp weights blue=90 green=10");
    CHECK(weight(f.state, "blue") == 100); // the state in force is untouched: nothing committed yet

    d = f.ops().set_weights("mcp", {{"blue", 1'000'000}}, false);
    CHECK(d.ok());
    d = f.ops().set_weights("mcp", {{"blue", 1'000'001}}, false);
    CHECK(d.status == 400);
    CHECK(d.error == "weight of 'blue' must be an integer from 0 to 1000000");
    CHECK(f.ops().set_weights("mcp", {{"blue", -1}}, false).status == 400);
    d = f.ops().set_weights("mcp", {{"blue", 0}}, false);
    CHECK(d.status == 400);
    CHECK(d.error == "weights cannot all be 0: no pool would take new sessions");
    CHECK(f.ops().set_weights("mcp", {}, false).status == 400);
    d = f.ops().set_weights("mcp", {{"red", 1}}, false);
    CHECK(d.status == 404);
    CHECK(d.error == "upstream 'mcp' has no pool named 'red'");
    d = f.ops().set_weights("nope", {{"blue", 1}}, false);
    CHECK(d.status == 404);
    CHECK(d.error == "no upstream named 'nope'");
}

TEST_CASE("operations: a pool's first traffic is refused when it has no healthy backend or breaks tools")
{
    fixture f;
    f.backend("127.0.0.1:3011").set_healthy(false);
    auto d = f.ops().set_weights("mcp", {{"green", 5}}, false);
    CHECK(d.status == 409);
    CHECK(d.error == "pool 'green' has no healthy backend; use force to send it sessions anyway");
    d = f.ops().switch_to("mcp", "green", false);
    CHECK(d.status == 409);
    CHECK(d.error == "pool 'green' has no healthy backend; use force to switch anyway");
    CHECK(f.ops().switch_to("mcp", "green", true).ok()); // forced
    CHECK(f.ops().set_weights("mcp", {{"green", 5}}, true).ok());

    f.backend("127.0.0.1:3011").set_healthy(true);
    f.tools("127.0.0.1:3001", {{"echo", 1}, {"whoami", 2}});
    f.tools("127.0.0.1:3011", {{"echo", 1}});
    d = f.ops().switch_to("mcp", "green", false);
    CHECK(d.status == 409);
    CHECK(d.error == "the tools of pool 'green' break those of pool 'blue' (removed: whoami); use force to switch anyway");
    f.tools("127.0.0.1:3011", {{"echo", 1}, {"whoami", 2}});
    CHECK(f.ops().switch_to("mcp", "green", false).ok());
    // A pool that takes traffic already is not guarded again.
    f.apply(f.ops().set_weights("mcp", {{"green", 5}}, false));
    f.backend("127.0.0.1:3011").set_healthy(false);
    CHECK(f.ops().set_weights("mcp", {{"green", 50}}, false).ok());
}

TEST_CASE("operations: a pool that only adds tools gets its first traffic")
{
    fixture f;
    f.tools("127.0.0.1:3001", {{"echo", 1}, {"whoami", 2}});
    f.tools("127.0.0.1:3011", {{"echo", 1}, {"search", 3}, {"whoami", 2}});
    CHECK(f.ops().switch_to("mcp", "green", false).ok());
    const auto d = f.ops().set_weights("mcp", {{"blue", 95}, {"green", 5}}, false);
    REQUIRE(d.ok());
    CHECK(d.summary == "mcp weights blue=95 green=5");
}

TEST_CASE("operations: a removed tool or a changed input schema is refused unless forced")
{
    fixture f;
    f.tools("127.0.0.1:3001", {{"echo", 1}, {"whoami", 2}});
    f.tools("127.0.0.1:3011", {{"echo", 9}, {"search", 3}});
    const std::string why =
        "the tools of pool 'green' break those of pool 'blue' (removed: whoami; input schema changed: echo)";
    auto d = f.ops().set_weights("mcp", {{"blue", 95}, {"green", 5}}, false);
    CHECK(d.status == 409);
    CHECK(d.error == why + "; use force to send it sessions anyway");
    d = f.ops().switch_to("mcp", "green", false);
    CHECK(d.status == 409);
    CHECK(d.error == why + "; use force to switch anyway");
    CHECK(f.ops().switch_to("mcp", "green", true).ok());
    d = f.ops().set_weights("mcp", {{"blue", 95}, {"green", 5}}, true);
    REQUIRE(d.ok());
    CHECK(d.summary == "mcp weights blue=95 green=5 (forced)");
    CHECK(weight(d.next, "green") == 5);

    // The schema changed alone is enough.
    f.tools("127.0.0.1:3011", {{"echo", 9}, {"whoami", 2}});
    CHECK(f.ops().switch_to("mcp", "green", false).error ==
          "the tools of pool 'green' break those of pool 'blue' (input schema changed: echo); use force to switch anyway");
}

TEST_CASE("operations: a pool whose backends disagree on their tools is refused unless forced")
{
    fixture f;
    f.apply(f.ops().set_backends("mcp", "green", {"127.0.0.1:3011", "127.0.0.1:3012"}));
    f.tools("127.0.0.1:3001", {{"echo", 1}});
    f.tools("127.0.0.1:3011", {{"echo", 1}});
    f.tools("127.0.0.1:3012", {{"echo", 1}, {"search", 3}}); // only adds, but not like its sibling
    auto d = f.ops().switch_to("mcp", "green", false);
    CHECK(d.status == 409);
    CHECK(d.error == "the backends of pool 'green' disagree on their tools; use force to switch anyway");
    CHECK(f.ops().switch_to("mcp", "green", true).ok());
    f.tools("127.0.0.1:3011", {{"echo", 1}, {"search", 3}});
    CHECK(f.ops().switch_to("mcp", "green", false).ok());
}

TEST_CASE("tool compatibility: added, removed and changed against a baseline given by the caller")
{
    using upstream::tool_signature;
    const std::vector<tool_signature> base{{"a", 1}, {"b", 2}, {"c", 3}};
    const std::vector<tool_signature> next{{"a", 1}, {"c", 4}, {"d", 5}, {"e", 6}};
    const auto c = control::compare_tools(base, next);
    CHECK(c.added == std::vector<std::string>{"d", "e"});
    CHECK(c.removed == std::vector<std::string>{"b"});
    CHECK(c.changed == std::vector<std::string>{"c"});
    CHECK(c.breaking());
    CHECK(control::compare_tools(base, base).empty());
    const auto added = control::compare_tools(base, {{{"a", 1}, {"b", 2}, {"c", 3}, {"z", 0}}});
    CHECK(added.added == std::vector<std::string>{"z"});
    CHECK_FALSE(added.breaking());

    fixture f;
    f.apply(f.ops().set_backends("mcp", "canary", {"127.0.0.1:3021"}));
    f.tools("127.0.0.1:3001", {{"echo", 1}, {"whoami", 2}});      // blue: the default baseline
    f.tools("127.0.0.1:3011", {{"echo", 1}});                      // green
    f.tools("127.0.0.1:3021", {{"echo", 1}, {"search", 3}});       // canary
    const auto& u = f.live_mcp();
    CHECK(control::default_baseline(u) == &f.live_pool("blue"));
    CHECK(control::default_baseline(u, &f.live_pool("blue")) == nullptr); // no other pool has weight
    // Against blue, canary removes whoami; against green (a rollout's baseline, say) it only adds.
    CHECK(control::breaking_change(u, f.live_pool("canary"), nullptr) ==
          "the tools of pool 'canary' break those of pool 'blue' (removed: whoami)");
    CHECK_FALSE(control::breaking_change(u, f.live_pool("canary"), &f.live_pool("green")));
    const auto vs_green = control::compatibility(f.live_pool("canary"), &f.live_pool("green"));
    CHECK(vs_green.changes.added == std::vector<std::string>{"search"});
    CHECK(vs_green.tools.consistent);
    CHECK(vs_green.tools.hash);
    // The baseline against itself shows nothing.
    CHECK(control::compatibility(f.live_pool("blue"), &f.live_pool("blue")).changes.empty());
    // Unprobed tools are not judged.
    fixture fresh;
    CHECK_FALSE(control::breaking_change(fresh.live_mcp(), fresh.live_pool("green"), nullptr));
}

TEST_CASE("pool facts: a pool's tool names, from every backend that listed them")
{
    fixture f;
    CHECK(control::pool_tool_names(f.live_pool("blue")).empty()); // never probed
    f.apply(f.ops().set_backends("mcp", "green", {"127.0.0.1:3011", "127.0.0.1:3012"}));
    f.tools("127.0.0.1:3011", {{"search", 3}, {"echo", 1}});
    f.tools("127.0.0.1:3012", {{"echo", 1}, {"fetch", 4}});
    CHECK(control::pool_tool_names(f.live_pool("green")) == std::vector<std::string>{"echo", "fetch", "search"});
    const auto t = control::tools_of(f.live_pool("green"));
    CHECK(t.probed);
    CHECK_FALSE(t.consistent);
    CHECK_FALSE(t.hash);
}

TEST_CASE("operations: switch sends every new session to one pool, rollback restores, twice undoes")
{
    fixture f;
    CHECK(f.ops().rollback("mcp").status == 409);
    f.apply(f.ops().switch_to("mcp", "green", false));
    CHECK(weight(f.state, "blue") == 0);
    CHECK(weight(f.state, "green") == 100); // a pool at 0 switches in at 100
    CHECK(f.state.find("mcp")->previous_weights == runtime::weight_list{{"blue", 100}, {"green", 0}});
    f.apply(f.ops().rollback("mcp"));
    CHECK(weight(f.state, "blue") == 100);
    CHECK(weight(f.state, "green") == 0);
    f.apply(f.ops().rollback("mcp"));
    CHECK(weight(f.state, "green") == 100);
    CHECK(f.ops().switch_to("mcp", "red", false).status == 404);
}

TEST_CASE("operations: drain sets a wall-clock deadline, undrain clears it")
{
    fixture f;
    auto d = f.ops().drain("mcp", "blue", std::nullopt, 1'000'000);
    REQUIRE(d.ok());
    CHECK(d.next.find("mcp")->find("blue")->draining);
    CHECK(d.next.find("mcp")->find("blue")->drain_deadline_ms == 1'000'000 + 30'000); // drain_timeout
    d = f.ops().drain("mcp", "blue", std::chrono::milliseconds(500), 1'000'000);
    CHECK(d.next.find("mcp")->find("blue")->drain_deadline_ms == 1'000'500);
    f.apply(d);
    d = f.ops().undrain("mcp", "blue");
    REQUIRE(d.ok());
    CHECK_FALSE(d.next.find("mcp")->find("blue")->draining);
    CHECK_FALSE(d.next.find("mcp")->find("blue")->drain_deadline_ms);
    CHECK(f.ops().drain("mcp", "red", std::nullopt, 0).status == 404);
}

TEST_CASE("operations: backends replace a pool's set or create a pool at weight 0; addresses are checked")
{
    fixture f;
    auto d = f.ops().set_backends("mcp", "green", {"127.0.0.1:3021", "127.0.0.1:3022"});
    REQUIRE(d.ok());
    CHECK(d.next.find("mcp")->find("green")->backends ==
          std::vector<std::string>{"127.0.0.1:3021", "127.0.0.1:3022"});
    d = f.ops().set_backends("mcp", "canary", {"127.0.0.1:3031"});
    REQUIRE(d.ok());
    const auto* canary = d.next.find("mcp")->find("canary");
    REQUIRE(canary);
    CHECK(canary->weight == 0);
    CHECK(canary->created_at_runtime);
    d = f.ops().set_backends("mcp", "green", {"127.0.0.1"});
    CHECK(d.status == 400);
    CHECK(d.error == "'127.0.0.1' is not a backend address (host:port)");
    CHECK(f.ops().set_backends("mcp", "green", {"127.0.0.1:0"}).status == 400);
    CHECK(f.ops().set_backends("nope", "green", {"127.0.0.1:1"}).status == 404);
}

TEST_CASE("operations: drain one backend the pool lists; undrain ends it; bad input is named")
{
    fixture f;
    auto d = f.ops().drain_backend("mcp", "blue", "127.0.0.1:3001", std::nullopt, 1'000'000);
    REQUIRE(d.ok());
    CHECK(d.next.find("mcp")->find("blue")->drained_backends ==
          std::vector<runtime::backend_drain>{{"127.0.0.1:3001", 1'000'000 + 30'000}}); // drain_timeout
    CHECK_FALSE(d.next.find("mcp")->find("blue")->draining); // the pool itself is not drained
    CHECK(d.summary == "draining backend 127.0.0.1:3001 of mcp/blue (grace 30s)");
    f.apply(d);
    // Drained again: the new grace counts from now.
    d = f.ops().drain_backend("mcp", "blue", "127.0.0.1:3001", std::chrono::milliseconds(500), 2'000'000);
    CHECK(d.next.find("mcp")->find("blue")->drained_backends ==
          std::vector<runtime::backend_drain>{{"127.0.0.1:3001", 2'000'500}});
    d = f.ops().undrain_backend("mcp", "blue", "127.0.0.1:3001");
    REQUIRE(d.ok());
    CHECK(d.next.find("mcp")->find("blue")->drained_backends.empty());

    d = f.ops().drain_backend("mcp", "blue", "127.0.0.1:3011", std::nullopt, 0);
    CHECK(d.status == 404);
    CHECK(d.error == "pool 'blue' of upstream 'mcp' has no backend '127.0.0.1:3011'");
    d = f.ops().undrain_backend("mcp", "blue", "127.0.0.1:9");
    CHECK(d.status == 404);
    d = f.ops().drain_backend("mcp", "blue", "localhost", std::nullopt, 0);
    CHECK(d.status == 400);
    CHECK(d.error == "'localhost' is not a backend address (host:port)");
    d = f.ops().drain_backend("mcp", "red", "127.0.0.1:3001", std::nullopt, 0);
    CHECK(d.status == 404);
    CHECK(d.error == "upstream 'mcp' has no pool named 'red'");
    CHECK(f.ops().drain_backend("nope", "blue", "127.0.0.1:3001", std::nullopt, 0).status == 404);
}

TEST_CASE("operations: a backend set at run time can be drained; leaving the pool ends its drain")
{
    fixture f;
    f.apply(f.ops().set_backends("mcp", "green", {"127.0.0.1:3011", "127.0.0.1:3012"}));
    f.apply(f.ops().drain_backend("mcp", "green", "127.0.0.1:3012", std::nullopt, 0));
    const auto d = f.ops().set_backends("mcp", "green", {"127.0.0.1:3011"});
    REQUIRE(d.ok());
    CHECK(d.next.find("mcp")->find("green")->drained_backends.empty());
}

TEST_CASE("snapshot: a drained backend takes no new sessions; past its deadline it is retired; undrain restores")
{
    fixture f;
    f.apply(f.ops().set_backends("mcp", "blue", {"127.0.0.1:3001", "127.0.0.1:3002"}));
    const auto now = std::int64_t{1'000'000};
    f.apply(f.ops().drain_backend("mcp", "blue", "127.0.0.1:3002", std::chrono::seconds(10), now));
    auto& drained = f.backend("127.0.0.1:3002");
    auto& other = f.backend("127.0.0.1:3001");
    // Built before the deadline (the fixture builds at Unix time 0).
    CHECK(drained.draining());
    CHECK_FALSE(drained.available(0));
    CHECK_FALSE(drained.retired());
    CHECK(other.available(0));
    const auto* d = f.live_pool("blue").drain_of(drained);
    REQUIRE(d);
    CHECK(d->deadline_ms == now + 10'000);
    CHECK_FALSE(d->expired);
    CHECK_FALSE(f.live_pool("blue").drain_of(other));

    // Built after it: retired (its sessions answer 404, no keep-alive kept), the pool unaffected.
    auto later = runtime::build_snapshot(f.config, f.state, now + 10'000, f.registry, literal);
    runtime::mark_in_service(*later, f.registry);
    CHECK(drained.retired());
    CHECK(later->upstreams[0].pools[0].drained_backends.at(0).expired);
    CHECK_FALSE(later->upstreams[0].pools[0].drain_expired);
    CHECK_FALSE(other.retired());

    f.apply(f.ops().undrain_backend("mcp", "blue", "127.0.0.1:3002"));
    CHECK_FALSE(drained.draining());
    CHECK_FALSE(drained.retired());
    CHECK(drained.available(0));
}

TEST_CASE("operations: a pool whose healthy backends all drain is refused its first traffic unless forced")
{
    fixture f;
    f.apply(f.ops().drain_backend("mcp", "green", "127.0.0.1:3011", std::chrono::hours(1), 0));
    auto d = f.ops().switch_to("mcp", "green", false);
    CHECK(d.status == 409);
    CHECK(d.error == "every healthy backend of pool 'green' is draining; use force to switch anyway");
    CHECK(f.ops().set_weights("mcp", {{"green", 5}}, false).status == 409);
    CHECK(f.ops().switch_to("mcp", "green", true).ok());
    f.apply(f.ops().undrain_backend("mcp", "green", "127.0.0.1:3011"));
    CHECK(f.ops().switch_to("mcp", "green", false).ok());
}
