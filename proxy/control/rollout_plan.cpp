#include "turnout/control/rollout_plan.hpp"

#include <algorithm>
#include <cstdio>

namespace turnout::control {
namespace {

std::string percent(double share)
{
    char text[32];
    std::snprintf(text, sizeof text, "%.2f%%", share * 100);
    return text;
}

std::string describe(const runtime::verdict_record& v)
{
    char text[160];
    std::snprintf(text, sizeof text, "canary %llu requests, %s errors, p99 %.1f ms; baseline %llu, %s, %.1f ms",
                  static_cast<unsigned long long>(v.canary.requests), percent(v.canary.error_rate).c_str(),
                  v.canary.p99_ms, static_cast<unsigned long long>(v.baseline.requests),
                  percent(v.baseline.error_rate).c_str(), v.baseline.p99_ms);
    return text;
}

void succeed(runtime::upstream_runtime& u, std::int64_t now_ms)
{
    auto& r = *u.rollout;
    r.phase = runtime::rollout_phase::succeeded;
    r.reason.clear();
    // The baseline keeps its sessions and stays ready (weight 0) for `turnoutctl rollback`.
    u.previous_weights = r.weights_before;
    r.record(now_ms, "succeeded",
             r.kind == runtime::rollout_kind::switch_watch ? "the watch passed" : "pool '" + r.pool + "' at 100%");
}

void enter_step(runtime::upstream_runtime& u, std::size_t step, std::int64_t now_ms, const char* event)
{
    auto& r = *u.rollout;
    r.step = step;
    r.step_held_ms = 0;
    r.step_requests = 0;
    apply_step_weights(u);
    r.record(now_ms, event,
             "step " + std::to_string(step + 1) + "/" + std::to_string(r.steps.size()) + ": " + r.pool + " " +
                 std::to_string(r.weight()) + "%");
    if (step + 1 == r.steps.size())
        succeed(u, now_ms);
}

} // namespace

void apply_step_weights(runtime::upstream_runtime& u)
{
    const auto& r = *u.rollout;
    const auto w = r.weight();
    for (auto& p : u.pools)
        p.weight = p.name == r.pool ? w : p.name == r.baseline ? 100 - w : 0;
}

void begin_rollout(runtime::upstream_runtime& u, runtime::rollout_runtime r, std::int64_t now_ms)
{
    r.weights_before = u.weights();
    u.previous_weights = r.weights_before;
    if (auto* canary = u.find(r.pool)) {
        canary->draining = false;
        canary->drain_deadline_ms.reset();
    }
    r.started_ms = now_ms;
    u.rollout = std::move(r);
    auto& started = *u.rollout;
    started.record(now_ms, "started",
                   started.kind == runtime::rollout_kind::switch_watch
                       ? "switched to '" + started.pool + "', watched against '" + started.baseline + "'"
                       : "pool '" + started.pool + "' against '" + started.baseline + "'");
    if (started.kind == runtime::rollout_kind::steps)
        enter_step(u, 0, now_ms, "step");
}

void on_interval(runtime::upstream_runtime& u, const runtime::verdict_record& v, std::int64_t elapsed_ms,
                 std::int64_t now_ms)
{
    auto& r = *u.rollout;
    if (r.phase != runtime::rollout_phase::running)
        return;
    r.last = v;
    r.step_held_ms += elapsed_ms;
    r.step_requests += v.canary.requests;
    if (v.result == runtime::verdict::fail) {
        ++r.failures;
        r.record(now_ms, "interval_failed",
                 describe(v) + " (" + std::to_string(r.failures) + " of " + std::to_string(r.rules.failure_limit) +
                     " in a row)");
        if (r.failures >= r.rules.failure_limit)
            on_failure(u, std::to_string(r.failures) + " failed intervals in a row: " + describe(v), now_ms);
        return;
    }
    if (v.result == runtime::verdict::pass)
        r.failures = 0;
    if (r.kind == runtime::rollout_kind::switch_watch) {
        if (r.step_held_ms >= r.steps.front().hold_ms)
            succeed(u, now_ms);
        return;
    }
    const auto& step = r.steps[r.step];
    if (v.result == runtime::verdict::pass && r.step_held_ms >= step.hold_ms && r.step_requests >= r.rules.min_requests)
        enter_step(u, r.step + 1, now_ms, "step");
}

void on_failure(runtime::upstream_runtime& u, const std::string& reason, std::int64_t now_ms)
{
    if (u.rollout->rules.on_failure == runtime::failure_action::pause)
        return pause(u, reason, now_ms);
    roll_back(u, runtime::rollout_phase::rolled_back, reason, now_ms);
}

void pause(runtime::upstream_runtime& u, const std::string& reason, std::int64_t now_ms)
{
    auto& r = *u.rollout;
    r.phase = runtime::rollout_phase::paused;
    r.reason = reason;
    r.record(now_ms, "paused", reason);
}

void resume(runtime::upstream_runtime& u, std::int64_t now_ms)
{
    auto& r = *u.rollout;
    r.phase = runtime::rollout_phase::running;
    r.reason.clear();
    r.failures = 0;
    // The weights may have been changed by hand while it was paused: the step's come back.
    if (r.kind == runtime::rollout_kind::steps)
        apply_step_weights(u);
    r.record(now_ms, "resumed", "step " + std::to_string(r.step + 1) + ": " + r.pool + " " + std::to_string(r.weight()) + "%");
}

void promote(runtime::upstream_runtime& u, std::int64_t now_ms)
{
    auto& r = *u.rollout;
    if (r.phase == runtime::rollout_phase::paused) {
        r.phase = runtime::rollout_phase::running;
        r.reason.clear();
    }
    r.failures = 0;
    if (r.kind == runtime::rollout_kind::switch_watch)
        return succeed(u, now_ms);
    enter_step(u, r.step + 1, now_ms, "promoted");
}

void roll_back(runtime::upstream_runtime& u, runtime::rollout_phase phase, const std::string& reason,
               std::int64_t now_ms)
{
    auto& r = *u.rollout;
    for (const auto& [pool, weight] : r.weights_before)
        if (auto* p = u.find(pool))
            p->weight = weight;
    if (auto* canary = u.find(r.pool)) {
        canary->weight = 0;
        canary->draining = true;
        canary->drain_deadline_ms = now_ms + r.rules.rollback_drain_ms;
    }
    // New sessions must go somewhere: to the baseline when nothing else had weight before.
    if (std::all_of(u.pools.begin(), u.pools.end(), [](const auto& p) { return p.weight == 0; }))
        if (auto* baseline = u.find(r.baseline))
            baseline->weight = 100;
    r.phase = phase;
    r.reason = reason;
    r.record(now_ms, phase == runtime::rollout_phase::aborted ? "aborted" : "rolled_back", reason);
}

} // namespace turnout::control
