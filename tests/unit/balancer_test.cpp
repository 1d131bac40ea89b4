#include "turnout/upstream/balancer.hpp"

#include <doctest/doctest.h>

#include <xxhash.h>

#include <boost/asio/ip/address_v4.hpp>

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

using turnout::runtime::pool;
using turnout::runtime::upstream_state;
using turnout::upstream::backend;
using turnout::upstream::balancer;

namespace {

using backend_ptr = std::shared_ptr<backend>;
using exclude_list = std::vector<const backend*>;

constexpr int draws = 10000;
// The balancer's clock (monotonic_ms): a synthetic reading, never the machine's.
constexpr std::int64_t t0 = 1'000'000;

backend_ptr make_backend(std::uint16_t port)
{
    const boost::asio::ip::tcp::endpoint endpoint{boost::asio::ip::make_address_v4("127.0.0.1"), port};
    return std::make_shared<backend>("127.0.0.1:" + std::to_string(port), endpoint);
}

pool make_pool(std::string name, std::uint32_t weight, std::vector<backend_ptr> backends, bool draining = false)
{
    pool p;
    p.name = std::move(name);
    p.weight = weight;
    p.draining = draining;
    p.backends = std::move(backends);
    return p;
}

upstream_state make_upstream(std::vector<pool> pools)
{
    upstream_state u;
    u.config.name = "mcp";
    u.pools = std::move(pools);
    return u;
}

// How often each pool is picked over n draws; nullopt results are counted under pool -1.
std::map<int, int> pool_counts(balancer& b, const upstream_state& u, int n, const exclude_list& exclude = {})
{
    std::map<int, int> counts;
    for (int i = 0; i < n; ++i) {
        const auto picked = b.choose(u, exclude, t0);
        ++counts[picked ? static_cast<int>(picked->pool) : -1];
    }
    return counts;
}

// How often each backend is picked over n draws.
std::map<const backend*, int> backend_counts(balancer& b, const upstream_state& u, int n,
                                             const exclude_list& exclude = {})
{
    std::map<const backend*, int> counts;
    for (int i = 0; i < n; ++i) {
        const auto picked = b.choose(u, exclude, t0);
        REQUIRE(picked);
        REQUIRE(picked->target);
        ++counts[picked->target.get()];
    }
    return counts;
}

} // namespace

TEST_CASE("new sessions are split between pools by weight")
{
    const auto u = make_upstream({make_pool("blue", 90, {make_backend(3001), make_backend(3002)}),
                                  make_pool("green", 10, {make_backend(3011)})});
    for (const std::uint64_t seed : {1ull, 42ull, 0xdeadbeefull, 123456789ull}) {
        CAPTURE(seed);
        balancer b{seed};
        const auto counts = pool_counts(b, u, draws);
        CHECK(counts.count(-1) == 0);
        // Expected 9000 / 1000; the binomial standard deviation is 30, so this cannot flake.
        CHECK(counts.at(0) >= draws * 85 / 100);
        CHECK(counts.at(0) <= draws * 95 / 100);
        CHECK(counts.at(1) >= draws * 5 / 100);
        CHECK(counts.at(1) <= draws * 15 / 100);
    }
}

TEST_CASE("a pick names the pool it came from and one of that pool's backends")
{
    const auto blue = make_backend(3001);
    const auto green = make_backend(3011);
    const auto u = make_upstream({make_pool("blue", 50, {blue}), make_pool("green", 50, {green})});
    balancer b{7};
    for (int i = 0; i < 1000; ++i) {
        const auto picked = b.choose(u, {}, t0);
        REQUIRE(picked);
        CHECK(picked->target == (picked->pool == 0 ? blue : green));
    }
}

TEST_CASE("a pool with weight 0 is never chosen")
{
    const auto u = make_upstream({make_pool("blue", 100, {make_backend(3001)}),
                                  make_pool("green", 0, {make_backend(3011), make_backend(3012)})});
    balancer b{3};
    const auto counts = pool_counts(b, u, draws);
    CHECK(counts.at(0) == draws);
    CHECK(counts.count(1) == 0);
}

TEST_CASE("with every weight 0 nothing is chosen")
{
    const auto u = make_upstream({make_pool("blue", 0, {make_backend(3001)}),
                                  make_pool("green", 0, {make_backend(3011)})});
    balancer b{3};
    for (int i = 0; i < 100; ++i)
        CHECK_FALSE(b.choose(u, {}, t0));
    CHECK_FALSE(b.choose(make_upstream({}), {}, t0));
}

TEST_CASE("unhealthy and draining backends are never chosen")
{
    const auto sick = make_backend(3001);
    const auto leaving = make_backend(3002);
    const auto fine = make_backend(3003);
    sick->set_healthy(false);
    leaving->set_draining(true);
    const auto u = make_upstream({make_pool("blue", 100, {sick, leaving, fine})});
    balancer b{11};
    const auto counts = backend_counts(b, u, 1000);
    CHECK(counts.size() == 1);
    CHECK(counts.at(fine.get()) == 1000);

    fine->set_healthy(false);
    CHECK_FALSE(b.choose(u, {}, t0));
    CHECK_FALSE(b.choose_backend(u.pools[0], {}, t0));

    sick->set_healthy(true); // recovered
    const auto picked = b.choose(u, {}, t0);
    REQUIRE(picked);
    CHECK(picked->target == sick);
}

TEST_CASE("backends in the exclude list are never chosen")
{
    const auto a = make_backend(3001);
    const auto c = make_backend(3002);
    const auto d = make_backend(3003);
    const auto u = make_upstream({make_pool("blue", 100, {a, c, d})});
    balancer b{5};

    const exclude_list two = {a.get(), d.get()};
    const auto counts = backend_counts(b, u, 1000, two);
    CHECK(counts.size() == 1);
    CHECK(counts.at(c.get()) == 1000);

    const exclude_list one = {c.get()};
    const auto others = backend_counts(b, u, 1000, one);
    CHECK(others.count(c.get()) == 0);
    CHECK(others.count(a.get()) == 1);
    CHECK(others.count(d.get()) == 1);

    const exclude_list all = {a.get(), c.get(), d.get()};
    CHECK_FALSE(b.choose(u, all, t0));
}

TEST_CASE("when the drawn pool has no available backend another weighted pool takes the session")
{
    const auto down = make_backend(3001);
    down->set_healthy(false);
    const auto up = make_backend(3011);
    const auto u = make_upstream({make_pool("blue", 90, {down}), make_pool("green", 10, {up})});
    balancer b{9};
    const auto counts = pool_counts(b, u, draws);
    CHECK(counts.at(1) == draws);

    // Excluding the only backend of a pool has the same effect.
    const auto healthy = make_backend(3002);
    const auto v = make_upstream({make_pool("blue", 90, {healthy}), make_pool("green", 10, {up})});
    const exclude_list tried = {healthy.get()};
    CHECK(pool_counts(b, v, 1000, tried).at(1) == 1000);
}

TEST_CASE("the fallback tries the heaviest of the other pools first")
{
    const auto down = make_backend(3001);
    down->set_healthy(false);
    const auto u = make_upstream({make_pool("a", 50, {down}), make_pool("b", 20, {make_backend(3011)}),
                                  make_pool("c", 30, {make_backend(3021)})});
    balancer b{13};
    const auto counts = pool_counts(b, u, draws);
    CHECK(counts.count(0) == 0);
    CHECK(counts.count(-1) == 0);
    // "b" gets only its own draws (about 20%); "c" gets its own and all of "a"'s (about 80%).
    CHECK(counts.at(1) >= draws * 15 / 100);
    CHECK(counts.at(1) <= draws * 25 / 100);
    CHECK(counts.at(2) >= draws * 75 / 100);
}

TEST_CASE("the fallback never goes to a pool with weight 0")
{
    const auto down = make_backend(3001);
    down->set_healthy(false);
    const auto u = make_upstream({make_pool("blue", 100, {down}), make_pool("green", 0, {make_backend(3011)})});
    balancer b{17};
    for (int i = 0; i < 100; ++i)
        CHECK_FALSE(b.choose(u, {}, t0));
}

TEST_CASE("power of two choices prefers the less loaded of two backends")
{
    const auto busy = make_backend(3001);
    const auto idle = make_backend(3002);
    busy->counters().in_flight.store(50);
    const auto u = make_upstream({make_pool("blue", 100, {busy, idle})});
    balancer b{19};
    const auto counts = backend_counts(b, u, 1000);
    CHECK(counts.count(busy.get()) == 0);
    CHECK(counts.at(idle.get()) == 1000);

    // The other way round.
    busy->counters().in_flight.store(0);
    idle->counters().in_flight.store(1);
    const auto swapped = backend_counts(b, u, 1000);
    CHECK(swapped.at(busy.get()) == 1000);
}

TEST_CASE("power of two choices never picks the most loaded of several backends")
{
    std::vector<backend_ptr> backends;
    for (std::uint16_t port = 3001; port <= 3004; ++port)
        backends.push_back(make_backend(port));
    backends[2]->counters().in_flight.store(100);
    const auto u = make_upstream({make_pool("blue", 100, backends)});
    balancer b{23};
    const auto counts = backend_counts(b, u, draws);
    CHECK(counts.count(backends[2].get()) == 0);
    for (const auto i : {0, 1, 3}) {
        CAPTURE(i);
        CHECK(counts.count(backends[static_cast<std::size_t>(i)].get()) == 1);
    }
}

TEST_CASE("equally loaded backends all get sessions")
{
    std::vector<backend_ptr> backends;
    for (std::uint16_t port = 3001; port <= 3003; ++port)
        backends.push_back(make_backend(port));
    const auto u = make_upstream({make_pool("blue", 100, backends)});
    balancer b{29};
    const auto counts = backend_counts(b, u, 3000);
    for (const auto& each : backends) {
        CHECK(counts.count(each.get()) == 1);
        CHECK(counts.at(each.get()) >= 500);
    }
}

TEST_CASE("a draining pool is skipped")
{
    const auto u = make_upstream({make_pool("blue", 90, {make_backend(3001)}, true),
                                  make_pool("green", 10, {make_backend(3011)})});
    balancer b{31};
    const auto counts = pool_counts(b, u, draws);
    CHECK(counts.at(1) == draws);
    CHECK_FALSE(b.choose_backend(u.pools[0], {}, t0));

    const auto only_draining = make_upstream({make_pool("blue", 100, {make_backend(3001)}, true)});
    CHECK_FALSE(b.choose(only_draining, {}, t0));
}

TEST_CASE("a balancer seeded with 0 still spreads sessions")
{
    const auto u = make_upstream({make_pool("blue", 50, {make_backend(3001)}),
                                  make_pool("green", 50, {make_backend(3011)})});
    balancer b{0};
    const auto counts = pool_counts(b, u, 1000);
    CHECK(counts.at(0) > 300);
    CHECK(counts.at(1) > 300);
}

// ---- client_key stickiness ------------------------------------------------------------------

namespace {

std::uint64_t client_hash(int client) { return XXH3_64bits_withSeed(&client, sizeof client, 11); }

int sticky_pool(balancer& b, const upstream_state& u, int client)
{
    const auto picked = b.choose_sticky(u, client_hash(client), {}, t0);
    return picked ? static_cast<int>(picked->pool) : -1;
}

} // namespace

TEST_CASE("client_key: each client stays on one pool, and the shares follow the weights")
{
    balancer b(1);
    const auto u = make_upstream({make_pool("blue", 50, {make_backend(1), make_backend(2)}),
                                  make_pool("green", 50, {make_backend(3), make_backend(4)})});
    std::map<int, int> per_pool;
    for (int client = 0; client < 50; ++client) {
        const int first = sticky_pool(b, u, client);
        for (int i = 0; i < 20; ++i) // 1 000 requests from 50 keys
            CHECK(sticky_pool(b, u, client) == first);
        ++per_pool[first];
    }
    CHECK(per_pool[0] > 0);
    CHECK(per_pool[1] > 0);
    std::map<int, int> shares;
    const auto weighted = make_upstream({make_pool("blue", 80, {make_backend(1)}), make_pool("green", 20, {make_backend(3)})});
    for (int client = 0; client < 20000; ++client)
        ++shares[sticky_pool(b, weighted, client)];
    CHECK(shares[1] == doctest::Approx(4000).epsilon(0.08));
}

TEST_CASE("client_key: raising the canary from 10 to 25 keeps its clients and moves about 15 % of the others")
{
    balancer b(1);
    auto before = make_upstream({make_pool("stable", 90, {make_backend(1)}), make_pool("canary", 10, {make_backend(3)})});
    auto after = make_upstream({make_pool("stable", 75, {make_backend(1)}), make_pool("canary", 25, {make_backend(3)})});
    constexpr int clients = 20000;
    int on_canary = 0, stayed_on_canary = 0, others = 0, moved = 0;
    for (int client = 0; client < clients; ++client) {
        const int was = sticky_pool(b, before, client);
        const int now = sticky_pool(b, after, client);
        if (was == 1) {
            ++on_canary;
            stayed_on_canary += now == 1;
        } else {
            ++others;
            moved += now != was;
        }
    }
    CHECK(on_canary == doctest::Approx(2000).epsilon(0.1));
    CHECK(stayed_on_canary == on_canary); // every canary client stays
    // 15 % of all clients move (the share the canary gained): 1/6 of the others.
    const double moved_of_all = static_cast<double>(moved) / clients;
    CHECK(moved_of_all > 0.13);
    CHECK(moved_of_all < 0.17);
    MESSAGE("moved " << moved << " of " << others << " stable clients (" << 100.0 * moved / others
                     << " %), " << 100.0 * moved_of_all << " % of all");
}

TEST_CASE("client_key: the order of the pools does not matter, a third pool takes only its share")
{
    balancer b(1);
    const auto ab = make_upstream({make_pool("a", 50, {make_backend(1)}), make_pool("b", 50, {make_backend(2)})});
    const auto ba = make_upstream({make_pool("b", 50, {make_backend(2)}), make_pool("a", 50, {make_backend(1)})});
    const auto abc = make_upstream({make_pool("a", 50, {make_backend(1)}), make_pool("b", 50, {make_backend(2)}),
                                    make_pool("c", 25, {make_backend(3)})});
    int moved_between_a_and_b = 0, to_c = 0;
    for (int client = 0; client < 10000; ++client) {
        const auto name = [](const upstream_state& u, int pool) { return u.pools[static_cast<std::size_t>(pool)].name; };
        const auto in_ab = name(ab, sticky_pool(b, ab, client));
        CHECK(in_ab == name(ba, sticky_pool(b, ba, client)));
        const auto in_abc = name(abc, sticky_pool(b, abc, client));
        to_c += in_abc == "c";
        moved_between_a_and_b += in_abc != "c" && in_abc != in_ab;
    }
    CHECK(moved_between_a_and_b == 0);
    CHECK(to_c == doctest::Approx(2000).epsilon(0.1));
}

TEST_CASE("client_key: a pool that cannot take the client passes it to its next choice; weight 0 takes none")
{
    balancer b(1);
    auto u = make_upstream({make_pool("blue", 50, {make_backend(1)}), make_pool("green", 50, {make_backend(2)}, true)});
    for (int client = 0; client < 200; ++client)
        CHECK(sticky_pool(b, u, client) == 0); // green drains
    u.pools[1].draining = false;
    u.pools[1].weight = 0;
    for (int client = 0; client < 200; ++client)
        CHECK(sticky_pool(b, u, client) == 0);
    u.pools[0].weight = 0;
    CHECK(sticky_pool(b, u, 1) == -1);
}

namespace {

pool backup_pool(std::string name, std::uint32_t weight, std::vector<backend_ptr> backends)
{
    auto p = make_pool(std::move(name), weight, std::move(backends));
    p.backup = true;
    return p;
}

} // namespace

TEST_CASE("a backup pool takes new sessions only when no weighted pool has an available backend")
{
    const auto primary = make_backend(3001);
    const auto spare = make_backend(3091);
    // The backup's weight does not put it in the draw while the primary can take sessions.
    const auto u = make_upstream({make_pool("main", 100, {primary}), backup_pool("main-backup", 100, {spare})});
    balancer b{5};
    CHECK(pool_counts(b, u, 1000).at(0) == 1000);
    constexpr std::uint64_t client = 42;
    for (int i = 0; i < 100; ++i)
        CHECK(b.choose_sticky(u, client + static_cast<std::uint64_t>(i), {}, t0)->pool == 0);
    CHECK(turnout::upstream::rendezvous_pick(u, "some-session")->target == primary);

    primary->set_healthy(false);
    const auto counts = pool_counts(b, u, 1000);
    CHECK(counts.at(1) == 1000);
    CHECK(b.choose_sticky(u, client, {}, t0)->target == spare);
    CHECK(turnout::upstream::rendezvous_pick(u, "some-session")->target == spare);
    // A backend already tried is not tried again: with the spare excluded, nothing is left.
    const exclude_list tried{spare.get()};
    CHECK_FALSE(b.choose(u, tried, t0));

    primary->set_healthy(true); // back: new sessions return to the primary
    CHECK(pool_counts(b, u, 1000).at(0) == 1000);
}

TEST_CASE("backup pools are tried after every weighted pool, the heaviest backup first")
{
    const auto blue = make_backend(3001);
    const auto green = make_backend(3011);
    const auto light = make_backend(3091);
    const auto heavy = make_backend(3092);
    const auto u = make_upstream({make_pool("blue", 90, {blue}), make_pool("green", 10, {green}),
                                  backup_pool("light", 0, {light}), backup_pool("heavy", 5, {heavy})});
    balancer b{9};
    blue->set_healthy(false);
    CHECK(pool_counts(b, u, 1000).at(1) == 1000); // the other weighted pool first
    green->set_healthy(false);
    CHECK(pool_counts(b, u, 1000).at(3) == 1000);
    heavy->set_healthy(false);
    CHECK(pool_counts(b, u, 1000).at(2) == 1000);
    light->set_healthy(false);
    CHECK_FALSE(b.choose(u, {}, t0));
}

TEST_CASE("a backup pool is used when the weighted pools have weight 0 (switched to it)")
{
    const auto u = make_upstream({make_pool("main", 0, {make_backend(3001)}),
                                  backup_pool("main-backup", 100, {make_backend(3091)})});
    balancer b{13};
    CHECK(pool_counts(b, u, 100).at(1) == 100);
}
