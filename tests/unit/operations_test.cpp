// The admin operations as decisions (control::operations): each computes the next runtime
// state from the one in force, or refuses with the status and sentence the admin API answers.
// No file, no socket, no DNS: the snapshot is built with a resolver that only reads literals.

#include "turnout/control/operations.hpp"
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
    void tools(const std::string& address, std::uint64_t hash)
    {
        upstream::health_report r;
        r.probed = true;
        r.tools_hash = hash;
        backend(address).set_report(r);
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
    auto d = f.ops().set_weights("mcp", {{"blue", 90}, {"green", 10}});
    REQUIRE(d.ok());
    CHECK(weight(d.next, "blue") == 90);
    CHECK(weight(d.next, "green") == 10);
    CHECK(d.summary == "mcp weights blue=90 green=10");
    CHECK(weight(f.state, "blue") == 100); // the state in force is untouched: nothing committed yet

    d = f.ops().set_weights("mcp", {{"blue", 1'000'000}});
    CHECK(d.ok());
    d = f.ops().set_weights("mcp", {{"blue", 1'000'001}});
    CHECK(d.status == 400);
    CHECK(d.error == "weight of 'blue' must be an integer from 0 to 1000000");
    CHECK(f.ops().set_weights("mcp", {{"blue", -1}}).status == 400);
    d = f.ops().set_weights("mcp", {{"blue", 0}});
    CHECK(d.status == 400);
    CHECK(d.error == "weights cannot all be 0: no pool would take new sessions");
    CHECK(f.ops().set_weights("mcp", {}).status == 400);
    d = f.ops().set_weights("mcp", {{"red", 1}});
    CHECK(d.status == 404);
    CHECK(d.error == "upstream 'mcp' has no pool named 'red'");
    d = f.ops().set_weights("nope", {{"blue", 1}});
    CHECK(d.status == 404);
    CHECK(d.error == "no upstream named 'nope'");
}

TEST_CASE("operations: a pool's first traffic is refused when it has no healthy backend or other tools")
{
    fixture f;
    f.backend("127.0.0.1:3011").set_healthy(false);
    auto d = f.ops().set_weights("mcp", {{"green", 5}});
    CHECK(d.status == 409);
    CHECK(d.error == "pool 'green' has no healthy backend; use switch --force to send it sessions anyway");
    d = f.ops().switch_to("mcp", "green", false);
    CHECK(d.status == 409);
    CHECK(d.error == "pool 'green' has no healthy backend; use force to switch anyway");
    CHECK(f.ops().switch_to("mcp", "green", true).ok()); // forced

    f.backend("127.0.0.1:3011").set_healthy(true);
    f.tools("127.0.0.1:3001", 0xaaaa);
    f.tools("127.0.0.1:3011", 0xbbbb);
    d = f.ops().switch_to("mcp", "green", false);
    CHECK(d.status == 409);
    CHECK(d.error ==
          "the tools of pool 'green' differ from those of pool 'blue'; use force to switch anyway");
    f.tools("127.0.0.1:3011", 0xaaaa);
    CHECK(f.ops().switch_to("mcp", "green", false).ok());
    // A pool that takes traffic already is not guarded again.
    f.apply(f.ops().set_weights("mcp", {{"green", 5}}));
    f.backend("127.0.0.1:3011").set_healthy(false);
    CHECK(f.ops().set_weights("mcp", {{"green", 50}}).ok());
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
