#include "turnout/runtime/runtime_state.hpp"

#include <doctest/doctest.h>

#include <string>
#include <vector>

using namespace turnout;
using namespace turnout::runtime;

namespace {

config::pool_config pool_conf(std::string name, std::uint32_t weight)
{
    config::pool_config pool;
    pool.name = std::move(name);
    pool.weight = weight;
    pool.backends.push_back(*config::parse_host_port("127.0.0.1:3001"));
    return pool;
}

config::upstream_config upstream_conf(std::string name, std::vector<config::pool_config> pools)
{
    config::upstream_config upstream;
    upstream.name = std::move(name);
    upstream.pools = std::move(pools);
    return upstream;
}

// mcp: blue 100, green 0; tools: main 1.
config::configuration two_upstreams()
{
    config::configuration c;
    c.upstreams.push_back(upstream_conf("mcp", {pool_conf("blue", 100), pool_conf("green", 0)}));
    c.upstreams.push_back(upstream_conf("tools", {pool_conf("main", 1)}));
    return c;
}

pool_runtime pool_rt(std::string name, std::uint32_t weight)
{
    pool_runtime pool;
    pool.name = std::move(name);
    pool.weight = weight;
    return pool;
}

// What operators did to two_upstreams(): a canary at 5%, blue draining, green's backends set
// at run time, a pool "canary" created at run time, and a rollback point.
runtime_state operated()
{
    runtime_state s = initial_state(two_upstreams());
    auto& mcp = *s.find("mcp");
    mcp.previous_weights = weight_list{{"blue", 100}, {"green", 0}};
    auto& blue = *mcp.find("blue");
    blue.weight = 95;
    blue.draining = true;
    blue.drain_deadline_ms = 1'700'000'000'000;
    auto& green = *mcp.find("green");
    green.weight = 5;
    green.backends = std::vector<std::string>{"127.0.0.1:3021", "127.0.0.1:3022"};
    auto canary = pool_rt("canary", 7);
    canary.backends = std::vector<std::string>{"127.0.0.1:3031"};
    canary.created_at_runtime = true;
    mcp.pools.push_back(canary);
    return s;
}

std::vector<std::string> pool_names(const upstream_runtime& u)
{
    std::vector<std::string> names;
    for (const auto& p : u.pools)
        names.push_back(p.name);
    return names;
}

} // namespace

TEST_CASE("runtime state: initial_state takes upstreams, pools and weights from the configuration")
{
    const auto s = initial_state(two_upstreams());
    REQUIRE(s.upstreams.size() == 2);
    CHECK(s.upstreams[0].name == "mcp");
    CHECK(s.upstreams[1].name == "tools");

    const auto& mcp = s.upstreams[0];
    CHECK(pool_names(mcp) == std::vector<std::string>{"blue", "green"});
    CHECK(mcp.weights() == weight_list{{"blue", 100}, {"green", 0}});
    CHECK_FALSE(mcp.previous_weights);
    for (const auto& pool : mcp.pools) {
        CHECK_FALSE(pool.draining);
        CHECK_FALSE(pool.drain_deadline_ms);
        CHECK_FALSE(pool.backends); // the configuration's backends
        CHECK_FALSE(pool.created_at_runtime);
    }
    CHECK(s.upstreams[1].weights() == weight_list{{"main", 1}});
}

TEST_CASE("runtime state: initial_state of a configuration without upstreams is empty")
{
    CHECK(initial_state(config::configuration{}).upstreams.empty());
}

TEST_CASE("runtime state: find looks upstreams and pools up by exact name")
{
    auto s = initial_state(two_upstreams());
    REQUIRE(s.find("mcp") != nullptr);
    CHECK(s.find("mcp") == &s.upstreams[0]);
    CHECK(s.find("tools") == &s.upstreams[1]);
    CHECK(s.find("MCP") == nullptr);
    CHECK(s.find("") == nullptr);
    CHECK(s.find("nope") == nullptr);

    auto& mcp = *s.find("mcp");
    CHECK(mcp.find("green") == &mcp.pools[1]);
    CHECK(mcp.find("gree") == nullptr);

    // Through a const reference too, and a found pool can be changed through the other.
    const auto& cs = s;
    REQUIRE(cs.find("mcp")->find("blue") != nullptr);
    mcp.find("blue")->weight = 42;
    CHECK(cs.find("mcp")->find("blue")->weight == 42);
}

TEST_CASE("runtime state: weights lists every pool in pool order")
{
    auto s = operated();
    CHECK(s.find("mcp")->weights() == weight_list{{"blue", 95}, {"green", 5}, {"canary", 7}});
    CHECK(upstream_runtime{}.weights().empty());
}

TEST_CASE("runtime state: reconcile keeps what operators changed on pools that still exist")
{
    const auto saved = operated();
    const auto s = reconcile(saved, two_upstreams());
    CHECK(s == saved); // nothing in the configuration changed: nothing is lost

    const auto& mcp = *s.find("mcp");
    const auto& blue = *mcp.find("blue");
    CHECK(blue.weight == 95); // the state wins over the config's 100
    CHECK(blue.draining);
    CHECK(blue.drain_deadline_ms == 1'700'000'000'000);
    const auto& green = *mcp.find("green");
    CHECK(green.weight == 5);
    CHECK(green.backends == std::vector<std::string>{"127.0.0.1:3021", "127.0.0.1:3022"});
    CHECK(mcp.previous_weights == weight_list{{"blue", 100}, {"green", 0}});
}

TEST_CASE("runtime state: reconcile keeps backend drains of backends the pool still lists")
{
    auto saved = operated();
    auto& mcp = *saved.find("mcp");
    // blue lists the configuration's 127.0.0.1:3001; green its run-time set.
    mcp.find("blue")->drained_backends = {{"127.0.0.1:3001", 42}, {"127.0.0.1:3009", 43}};
    mcp.find("green")->drained_backends = {{"127.0.0.1:3022", 44}, {"127.0.0.1:3001", 45}};
    const auto s = reconcile(saved, two_upstreams());
    CHECK(s.find("mcp")->find("blue")->drained_backends == std::vector<backend_drain>{{"127.0.0.1:3001", 42}});
    // green's backends are its run-time set: the drains of those are kept.
    CHECK(s.find("mcp")->find("green")->drained_backends == std::vector<backend_drain>{{"127.0.0.1:3022", 44}});
    CHECK(reconcile(s, two_upstreams()) == s);
}

TEST_CASE("runtime state: find_drain and keep_drains_of")
{
    auto pool = pool_rt("blue", 1);
    pool.drained_backends = {{"127.0.0.1:3001", 1}, {"127.0.0.1:3002", 2}};
    REQUIRE(pool.find_drain("127.0.0.1:3002"));
    CHECK(pool.find_drain("127.0.0.1:3002")->deadline_ms == 2);
    CHECK_FALSE(pool.find_drain("127.0.0.1:300"));
    pool.keep_drains_of({"127.0.0.1:3002", "127.0.0.1:3003"});
    CHECK(pool.drained_backends == std::vector<backend_drain>{{"127.0.0.1:3002", 2}});
}

TEST_CASE("runtime state: reconcile of the initial state with its own configuration changes nothing")
{
    const auto config = two_upstreams();
    CHECK(reconcile(initial_state(config), config) == initial_state(config));
    CHECK(reconcile(runtime_state{}, config) == initial_state(config));
}

TEST_CASE("runtime state: reconcile is idempotent")
{
    auto config = two_upstreams();
    config.upstreams[0].pools.erase(config.upstreams[0].pools.begin()); // blue goes
    const auto once = reconcile(operated(), config);
    CHECK(reconcile(once, config) == once);
}

TEST_CASE("runtime state: reconcile gives a pool new in the configuration its configured weight")
{
    auto config = two_upstreams();
    config.upstreams[0].pools.push_back(pool_conf("red", 3));
    const auto s = reconcile(operated(), config);

    const auto& mcp = *s.find("mcp");
    // Config pools in config order, then the runtime-created ones.
    CHECK(pool_names(mcp) == std::vector<std::string>{"blue", "green", "red", "canary"});
    const auto& red = *mcp.find("red");
    CHECK(red == pool_rt("red", 3));
    CHECK(mcp.find("blue")->weight == 95);
}

TEST_CASE("runtime state: reconcile follows the configuration's pool order")
{
    auto config = two_upstreams();
    std::swap(config.upstreams[0].pools[0], config.upstreams[0].pools[1]);
    std::swap(config.upstreams[0], config.upstreams[1]);
    const auto s = reconcile(operated(), config);
    REQUIRE(s.upstreams.size() == 2);
    CHECK(s.upstreams[0].name == "tools");
    CHECK(pool_names(s.upstreams[1]) == std::vector<std::string>{"green", "blue", "canary"});
    CHECK(s.upstreams[1].find("blue")->weight == 95);
}

TEST_CASE("runtime state: reconcile drops a pool the configuration no longer has")
{
    auto config = two_upstreams();
    config.upstreams[0].pools.pop_back(); // green goes
    const auto s = reconcile(operated(), config);
    const auto& mcp = *s.find("mcp");
    CHECK(pool_names(mcp) == std::vector<std::string>{"blue", "canary"});
    CHECK(mcp.find("green") == nullptr);
}

TEST_CASE("runtime state: reconcile keeps pools created at run time")
{
    const auto saved = operated();
    const auto s = reconcile(saved, two_upstreams());
    const auto* canary = s.find("mcp")->find("canary");
    REQUIRE(canary != nullptr);
    CHECK(*canary == *saved.find("mcp")->find("canary")); // kept as is
    CHECK(canary->created_at_runtime);
    CHECK(s.find("mcp")->pools.back().name == "canary"); // after the config's pools
}

TEST_CASE("runtime state: a runtime-created pool that the configuration now has becomes the configuration's")
{
    auto config = two_upstreams();
    config.upstreams[0].pools.insert(config.upstreams[0].pools.begin(), pool_conf("canary", 50));
    const auto s = reconcile(operated(), config);
    const auto& mcp = *s.find("mcp");
    CHECK(pool_names(mcp) == std::vector<std::string>{"canary", "blue", "green"});
    const auto& canary = *mcp.find("canary");
    CHECK(canary.weight == 7); // the state still wins for its weight and backends
    CHECK(canary.backends == std::vector<std::string>{"127.0.0.1:3031"});
    CHECK_FALSE(canary.created_at_runtime);

    // So a later configuration without it drops it like any configured pool.
    const auto later = reconcile(s, two_upstreams());
    CHECK(later.find("mcp")->find("canary") == nullptr);
}

TEST_CASE("runtime state: reconcile drops a pool that was neither configured nor created at run time")
{
    auto saved = operated();
    saved.find("mcp")->pools.push_back(pool_rt("stale", 9)); // from an older configuration
    const auto s = reconcile(saved, two_upstreams());
    CHECK(s.find("mcp")->find("stale") == nullptr);
}

TEST_CASE("runtime state: reconcile drops an upstream the configuration no longer has")
{
    auto config = two_upstreams();
    config.upstreams.erase(config.upstreams.begin()); // mcp goes, with its runtime-created pool
    const auto s = reconcile(operated(), config);
    REQUIRE(s.upstreams.size() == 1);
    CHECK(s.upstreams[0].name == "tools");
    CHECK(s.find("mcp") == nullptr);
}

TEST_CASE("runtime state: reconcile starts an upstream new in the configuration from its configuration")
{
    auto config = two_upstreams();
    config.upstreams.push_back(upstream_conf("search", {pool_conf("a", 10), pool_conf("b", 20)}));
    const auto s = reconcile(operated(), config);
    REQUIRE(s.upstreams.size() == 3);
    CHECK(s.upstreams[2] == initial_state(config).upstreams[2]);
    CHECK(s.upstreams[2].weights() == weight_list{{"a", 10}, {"b", 20}});
}

TEST_CASE("runtime state: reconcile keeps previous_weights while every pool they name exists")
{
    auto saved = operated();
    saved.find("mcp")->previous_weights = weight_list{{"blue", 50}, {"canary", 50}};
    auto config = two_upstreams();
    config.upstreams[0].pools.pop_back(); // green goes, but the rollback point does not name it
    const auto s = reconcile(saved, config);
    CHECK(s.find("mcp")->previous_weights == weight_list{{"blue", 50}, {"canary", 50}});
}

TEST_CASE("runtime state: reconcile drops previous_weights that name a pool that is gone")
{
    SUBCASE("a configured pool removed")
    {
        auto config = two_upstreams();
        config.upstreams[0].pools.pop_back(); // green
        CHECK_FALSE(reconcile(operated(), config).find("mcp")->previous_weights);
    }
    SUBCASE("a pool unknown to both")
    {
        auto saved = operated();
        saved.find("mcp")->previous_weights = weight_list{{"blue", 100}, {"purple", 0}};
        CHECK_FALSE(reconcile(saved, two_upstreams()).find("mcp")->previous_weights);
    }
    SUBCASE("an empty rollback point names nothing that could be gone")
    {
        auto saved = operated();
        saved.find("mcp")->previous_weights = weight_list{};
        CHECK(reconcile(saved, two_upstreams()).find("mcp")->previous_weights == weight_list{});
    }
}
