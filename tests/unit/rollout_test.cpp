#include "turnout/config/config.hpp"
#include "turnout/control/rollout_analysis.hpp"
#include "turnout/control/rollout_plan.hpp"
#include "turnout/runtime/rollout_json.hpp"
#include "turnout/upstream/latency_histogram.hpp"

#include <doctest/doctest.h>

#include <stdexcept>

using namespace turnout;
using runtime::verdict;

namespace {

runtime::upstream_runtime blue_green()
{
    runtime::upstream_runtime u;
    u.name = "mcp";
    u.pools = {{"blue", 100, false, std::nullopt, std::nullopt, false},
               {"green", 0, false, std::nullopt, std::nullopt, false}};
    return u;
}

runtime::rollout_runtime plan(std::vector<config::rollout_step> steps = {{10, 1000}, {50, 1000}, {100, 0}})
{
    runtime::rollout_runtime r;
    r.pool = "green";
    r.baseline = "blue";
    r.steps = std::move(steps);
    r.rules.min_requests = 10;
    r.rules.failure_limit = 2;
    r.rules.rollback_drain_ms = 5000;
    return r;
}

runtime::verdict_record record(verdict v, std::uint64_t canary_requests = 50)
{
    return {v, {canary_requests, 0, 1}, {500, 0, 1}, 0};
}

std::uint32_t weight_of(const runtime::upstream_runtime& u, std::string_view pool)
{
    return u.find(pool)->weight;
}

} // namespace

TEST_CASE("rollout judge: inconclusive below min_requests, fail over the ratio or the floor, else pass")
{
    config::rollout_rules rules;
    rules.min_requests = 20;
    const runtime::pool_figures baseline{1000, 0.01, 20};
    CHECK(control::judge({19, 0.5, 500}, baseline, rules) == verdict::inconclusive);
    CHECK(control::judge({20, 0.02, 30}, baseline, rules) == verdict::pass);  // at 2x: not over
    CHECK(control::judge({20, 0.021, 30}, baseline, rules) == verdict::fail); // over 2x the baseline
    CHECK(control::judge({20, 0.0, 61}, baseline, rules) == verdict::fail);   // p99 over 3x, above the floor
    // A clean baseline: the floors decide.
    const runtime::pool_figures clean{1000, 0, 2};
    CHECK(control::judge({20, 0.009, 49}, clean, rules) == verdict::pass);
    CHECK(control::judge({20, 0.011, 10}, clean, rules) == verdict::fail);
    CHECK(control::judge({20, 0.0, 51}, clean, rules) == verdict::fail);
}

TEST_CASE("latency histogram: buckets grow by a quarter power of two; p99 is the bucket bound")
{
    using upstream::latency_histogram;
    CHECK(latency_histogram::upper_bound_us(0) == 100);
    CHECK(latency_histogram::upper_bound_us(4) == 200);
    CHECK(latency_histogram::bucket_of(std::chrono::microseconds(100)) == 0);
    CHECK(latency_histogram::bucket_of(std::chrono::microseconds(101)) == 1);
    CHECK(latency_histogram::bucket_of(std::chrono::hours(1)) == latency_histogram::bucket_count - 1);
    latency_histogram h;
    for (int i = 0; i < 99; ++i)
        h.record(std::chrono::microseconds(150));
    h.record(std::chrono::milliseconds(40));
    latency_histogram::counts c{};
    h.add_to(c);
    CHECK(latency_histogram::quantile_ms(c, 0.99) == doctest::Approx(0.168).epsilon(0.01));
    CHECK(latency_histogram::quantile_ms(c, 1.0) > 40);
    CHECK(latency_histogram::quantile_ms({}, 0.99) == 0);
}

TEST_CASE("figures between two samples: differences, never negative")
{
    control::pool_sample a, b;
    a.requests = 100;
    a.failed = 5;
    b.requests = 150;
    b.failed = 15;
    b.latency[8] = 50;
    const auto f = control::figures_between(a, b);
    CHECK(f.requests == 50);
    CHECK(f.error_rate == doctest::Approx(0.2));
    CHECK(f.p99_ms == doctest::Approx(0.4));
    CHECK(control::figures_between(b, a).requests == 0);
}

TEST_CASE("rollout plan: start sets step 1, passes advance after the hold, the last step succeeds")
{
    auto u = blue_green();
    control::begin_rollout(u, plan(), 1000);
    CHECK(weight_of(u, "green") == 10);
    CHECK(weight_of(u, "blue") == 90);
    CHECK(u.rollout->weights_before == runtime::weight_list{{"blue", 100}, {"green", 0}});

    control::on_interval(u, record(verdict::pass), 500, 2000); // hold not passed
    CHECK(u.rollout->step == 0);
    control::on_interval(u, record(verdict::inconclusive), 600, 3000); // hold passed, not a pass
    CHECK(u.rollout->step == 0);
    control::on_interval(u, record(verdict::pass), 100, 4000);
    CHECK(u.rollout->step == 1);
    CHECK(weight_of(u, "green") == 50);
    CHECK(u.rollout->step_held_ms == 0);

    control::on_interval(u, record(verdict::pass, 5), 2000, 5000); // too few requests in the step
    CHECK(u.rollout->step == 1);
    control::on_interval(u, record(verdict::pass, 5), 100, 6000);
    CHECK(u.rollout->step == 2);
    CHECK(u.rollout->phase == runtime::rollout_phase::succeeded);
    CHECK(weight_of(u, "green") == 100);
    CHECK(weight_of(u, "blue") == 0);
    CHECK(u.previous_weights == runtime::weight_list{{"blue", 100}, {"green", 0}}); // ready for rollback
}

TEST_CASE("rollout plan: failure_limit failed intervals in a row roll back and drain the canary")
{
    auto u = blue_green();
    control::begin_rollout(u, plan(), 1000);
    control::on_interval(u, record(verdict::fail), 100, 2000);
    control::on_interval(u, record(verdict::pass), 100, 3000); // the row is broken
    control::on_interval(u, record(verdict::fail), 100, 4000);
    CHECK(u.rollout->phase == runtime::rollout_phase::running);
    control::on_interval(u, record(verdict::fail), 100, 5000);
    CHECK(u.rollout->phase == runtime::rollout_phase::rolled_back);
    CHECK(weight_of(u, "blue") == 100);
    CHECK(weight_of(u, "green") == 0);
    CHECK(u.find("green")->draining);
    CHECK(u.find("green")->drain_deadline_ms == 10000);
}

TEST_CASE("rollout plan: on_failure = pause holds the weights; resume goes on; promote and abort")
{
    auto u = blue_green();
    auto r = plan();
    r.rules.on_failure = config::failure_action::pause;
    control::begin_rollout(u, std::move(r), 0);
    control::on_failure(u, "canary crashed", 10);
    CHECK(u.rollout->phase == runtime::rollout_phase::paused);
    CHECK(weight_of(u, "green") == 10);
    control::on_interval(u, record(verdict::pass), 5000, 20); // paused: nothing moves
    CHECK(u.rollout->step == 0);
    control::resume(u, 30);
    CHECK(u.rollout->phase == runtime::rollout_phase::running);
    control::promote(u, 40);
    CHECK(weight_of(u, "green") == 50);
    control::roll_back(u, runtime::rollout_phase::aborted, "aborted by an operator", 50);
    CHECK(u.rollout->phase == runtime::rollout_phase::aborted);
    CHECK(weight_of(u, "blue") == 100);
    std::vector<std::string> events;
    for (const auto& e : u.rollout->history)
        events.push_back(e.event);
    CHECK(events == std::vector<std::string>{"started", "step", "paused", "resumed", "promoted", "aborted"});
    CHECK(u.rollout->events_total == 6);
}

TEST_CASE("rollout steps: parsed from the config's spelling and checked")
{
    std::string why;
    CHECK(config::parse_rollout_step("25:1h", why) == config::rollout_step{25, 3'600'000});
    CHECK(config::parse_rollout_step("100", why) == config::rollout_step{100, 0});
    CHECK_FALSE(config::parse_rollout_step("x:1h", why));
    CHECK_FALSE(config::parse_rollout_step("5:soon", why));
    CHECK(why.find("not a duration") != std::string::npos);
    CHECK_FALSE(config::steps_problem({{5, 1}, {100, 0}}));
    CHECK(config::steps_problem({{50, 1}, {20, 0}})->find("rise") != std::string::npos);
    CHECK(config::steps_problem({{5, 0}, {100, 0}})->find("hold time above zero") != std::string::npos);
    CHECK(config::steps_problem({{5, 1}, {100, 1}})->find("last step") != std::string::npos);
    CHECK(config::steps_problem({{0, 1}, {100, 0}})->find("between 1 and 100") != std::string::npos);
    CHECK(config::steps_problem({}));
}

TEST_CASE("[upstream.rollout]: defaults, values, and errors with their place")
{
    const std::string head = "[proxy]\n[[listen]]\naddress = \"127.0.0.1:0\"\n[[upstream]]\nname = \"mcp\"\n"
                             "[[upstream.pool]]\nname = \"blue\"\nweight = 1\nbackends = [\"127.0.0.1:1\"]\n";
    const auto plain = config::parse(head, "/tmp/t.toml");
    CHECK(plain.upstreams[0].rollout == config::rollout_config{});
    const auto set = config::parse(head + "[upstream.rollout]\nsteps = [\"10:5m\", \"100\"]\ninterval = \"30s\"\n"
                                          "max_error_ratio = 1.5\nlatency_floor = \"20ms\"\non_failure = \"pause\"\n"
                                          "webhook = \"http://127.0.0.1:9/h\"\n",
                                   "/tmp/t.toml");
    const auto& r = set.upstreams[0].rollout;
    CHECK(r.steps == std::vector<config::rollout_step>{{10, 300'000}, {100, 0}});
    CHECK(r.rules.interval_ms == 30'000);
    CHECK(r.rules.max_error_ratio == 1.5);
    CHECK(r.rules.latency_floor_ms == 20);
    CHECK(r.rules.on_failure == config::failure_action::pause);
    CHECK(r.rules.webhook == "http://127.0.0.1:9/h");
    for (const std::string bad : {"steps = [\"50:1m\", \"10\"]", "on_failure = \"retry\"", "webhook = \"https://x\"",
                                  "interval = \"0s\"", "max_error_ratio = 0.5", "colour = 1"}) {
        try {
            config::parse(head + "[upstream.rollout]\n" + bad + "\n", "/tmp/t.toml");
            FAIL("accepted: " << bad);
        } catch (const config::config_error& e) {
            CHECK_MESSAGE(std::string(e.what()).find("t.toml:11") != std::string::npos, e.what());
        }
    }
}

TEST_CASE("rollout state: written and read back whole; a damaged one names its field")
{
    auto u = blue_green();
    control::begin_rollout(u, plan(), 1234);
    control::on_interval(u, record(verdict::fail), 100, 2000);
    u.rollout->frozen_baseline = runtime::pool_figures{7, 0.5, 3};
    const auto back = runtime::rollout_from_json(runtime::rollout_to_json(*u.rollout), "rollout");
    CHECK(back == *u.rollout);

    auto doc = runtime::rollout_to_json(*u.rollout);
    doc.as_object()["phase"] = "exploded";
    CHECK_THROWS_WITH_AS(runtime::rollout_from_json(doc, "upstreams[0].rollout"),
                         doctest::Contains("upstreams[0].rollout.phase"), std::runtime_error);
    doc = runtime::rollout_to_json(*u.rollout);
    doc.as_object()["step"] = 9;
    CHECK_THROWS_AS(runtime::rollout_from_json(doc, "r"), std::runtime_error);
}
