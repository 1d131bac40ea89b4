// The figures a fleet's rollout leader sums: what each instance publishes, and the sum of each
// instance's own difference.
#include "turnout/control/fleet_figures.hpp"

#include <doctest/doctest.h>

using namespace turnout::control;

namespace {

pool_sample counts(std::uint64_t requests, std::uint64_t failed)
{
    pool_sample s;
    s.requests = requests;
    s.failed = failed;
    s.latency[3] = requests;
    return s;
}

} // namespace

TEST_CASE("fleet figures: published as JSON and read back; foreign values skipped")
{
    published_pools pools;
    pools[{"mcp", "green"}] = counts(10, 2);
    pools[{"mcp", "blue"}] = counts(90, 0);
    pools[{"other", "a"}] = counts(1, 1);
    const auto back = figures_from_json(figures_to_json(pools));
    REQUIRE(back);
    CHECK(back->size() == 3);
    CHECK(back->at({"mcp", "green"}).requests == 10);
    CHECK(back->at({"mcp", "green"}).failed == 2);
    CHECK(back->at({"mcp", "green"}).latency[3] == 10);
    CHECK_FALSE(figures_from_json("not json"));
    CHECK_FALSE(figures_from_json(R"({"mcp":{"green":{"requests":1,"latency":[1,2]}}})")); // another histogram
    CHECK_FALSE(figures_from_json(R"({"mcp":{"green":{"requests":-1,"latency":[]}}})"));
}

TEST_CASE("fleet figures: the interval sums each instance's difference")
{
    std::map<std::string, published_pools> others_before, others_after;
    others_before["b"][{"mcp", "green"}] = counts(100, 10);
    others_before["gone"][{"mcp", "green"}] = counts(500, 0);
    others_after["b"][{"mcp", "green"}] = counts(130, 22);
    others_after["new"][{"mcp", "green"}] = counts(1000, 0); // first reading: counts from the next
    others_after["restarted"][{"mcp", "blue"}] = counts(5, 5); // another pool: not this one's

    const auto before = sample_fleet("a", counts(50, 0), others_before, "mcp", "green");
    const auto after = sample_fleet("a", counts(60, 0), others_after, "mcp", "green");
    CHECK(before.size() == 3);
    CHECK(after.size() == 3);
    const auto f = figures_between(before, after);
    // a: +10 requests, b: +30 requests with +12 failed; "gone" left, "new" just came.
    CHECK(f.requests == 40);
    CHECK(f.error_rate == doctest::Approx(12.0 / 40.0));

    // An instance whose counts went back (restarted under the same name) adds nothing.
    fleet_sample restarted_before{{"a", counts(50, 5)}}, restarted_after{{"a", counts(3, 1)}};
    CHECK(figures_between(restarted_before, restarted_after).requests == 0);
}
