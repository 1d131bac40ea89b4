#include "turnout/control/rollout_operations.hpp"

#include "turnout/control/rollout_plan.hpp"

#include <algorithm>

namespace turnout::control {
namespace {

struct found {
    decision d;
    runtime::upstream_runtime* upstream = nullptr;
};

found find_upstream(const runtime::runtime_state& current, std::string_view name)
{
    found f;
    f.d.next = current;
    f.upstream = f.d.next.find(name);
    if (!f.upstream)
        f.d = decision::unknown_upstream(name);
    return f;
}

} // namespace

const runtime::pool_runtime* rollout_operations::default_baseline(const runtime::upstream_runtime& u,
                                                                  std::string_view pool)
{
    const runtime::pool_runtime* best = nullptr;
    for (const auto& p : u.pools)
        if (p.name != pool && (!best || p.weight > best->weight))
            best = &p;
    return best;
}

decision rollout_operations::start(std::string_view upstream, const rollout_request& request, std::int64_t now_ms) const
{
    auto [d, u] = find_upstream(current_, upstream);
    if (!u)
        return d;
    const auto* configured = config_.find_upstream(upstream);
    if (u->rollout && u->rollout->active())
        return decision::refuse(409, "upstream '" + std::string(upstream) + "' already has a " +
                                         std::string(runtime::to_string(u->rollout->phase)) + " rollout of pool '" +
                                         u->rollout->pool + "'; abort it first");
    if (!u->find(request.pool))
        return decision::unknown_pool(upstream, request.pool);
    const auto* baseline = request.baseline ? u->find(*request.baseline) : default_baseline(*u, request.pool);
    if (request.baseline && !baseline)
        return decision::unknown_pool(upstream, *request.baseline);
    if (!baseline)
        return decision::refuse(400, "upstream '" + std::string(upstream) + "' has no other pool to compare '" +
                                         request.pool + "' with");
    if (baseline->name == request.pool)
        return decision::refuse(400, "the baseline must be another pool than the canary '" + request.pool + "'");

    runtime::rollout_runtime r;
    r.kind = runtime::rollout_kind::steps;
    r.pool = request.pool;
    r.baseline = baseline->name;
    const config::rollout_config defaults = configured ? configured->rollout : config::rollout_config{};
    r.steps = request.steps.value_or(defaults.steps);
    if (const auto problem = config::steps_problem(r.steps))
        return decision::refuse(400, *problem);
    r.rules = defaults.rules;
    if (request.interval_ms) {
        if (*request.interval_ms <= 0)
            return decision::refuse(400, "the interval must be greater than 0s");
        r.rules.interval_ms = *request.interval_ms;
    }
    if (request.failure_limit) {
        if (*request.failure_limit == 0)
            return decision::refuse(400, "the failure limit must be at least 1");
        r.rules.failure_limit = *request.failure_limit;
    }
    if (request.on_failure)
        r.rules.on_failure = *request.on_failure;

    if (!request.force)
        if (const auto* live = live_.find(upstream))
            if (const auto* canary = live->find(request.pool))
                // Tools are judged against the rollout's own baseline.
                if (const auto why = operations::refusal(*live, *canary, live->find(r.baseline)))
                    return decision::refuse(409, *why + "; use --force to start the rollout anyway");

    begin_rollout(*u, std::move(r), now_ms);
    d.summary = std::string(upstream) + " rollout of " + request.pool + " against " + baseline->name + " started";
    return d;
}

decision rollout_operations::watch_switch(std::string_view upstream, std::string_view pool, bool force,
                                          std::int64_t watch_ms, const runtime::pool_figures& old_pool_figures,
                                          std::int64_t now_ms) const
{
    if (watch_ms <= 0)
        return decision::refuse(400, "the watch must last longer than 0s");
    const auto* before = current_.find(upstream);
    if (before && before->rollout && before->rollout->active())
        return decision::refuse(409, "upstream '" + std::string(upstream) + "' has a " +
                                         std::string(runtime::to_string(before->rollout->phase)) +
                                         " rollout; abort it before a watched switch");
    const operations ops(current_, live_, config_);
    auto d = ops.switch_to(upstream, pool, force);
    if (!d.ok())
        return d;
    const auto* old_pool = default_baseline(*before, pool);
    if (!old_pool || old_pool->weight == 0)
        return decision::refuse(409, "no pool takes new sessions now: nothing to watch the switch against");

    auto* u = d.next.find(upstream);
    const auto* configured = config_.find_upstream(upstream);
    runtime::rollout_runtime r;
    r.kind = runtime::rollout_kind::switch_watch;
    r.pool = std::string(pool);
    r.baseline = old_pool->name;
    r.steps = {{100, watch_ms}};
    r.rules = configured ? configured->rollout.rules : config::rollout_rules{};
    r.frozen_baseline = old_pool_figures;
    begin_rollout(*u, std::move(r), now_ms);
    // begin_rollout keeps the weights in force: here, those before the switch are wanted.
    u->rollout->weights_before = before->weights();
    u->previous_weights = before->weights();
    d.summary += ", watched for " + std::to_string(watch_ms) + " ms";
    return d;
}

decision rollout_operations::command(std::string_view upstream, rollout_command c, std::int64_t now_ms) const
{
    auto [d, u] = find_upstream(current_, upstream);
    if (!u)
        return d;
    if (!u->rollout || !u->rollout->active())
        return decision::refuse(409, "upstream '" + std::string(upstream) + "' has no running or paused rollout to " +
                                         std::string(to_string(c)));
    auto& r = *u->rollout;
    switch (c) {
    case rollout_command::pause:
        if (r.phase == runtime::rollout_phase::paused)
            return decision::refuse(409, "the rollout is paused already");
        pause(*u, "paused by an operator", now_ms);
        break;
    case rollout_command::resume:
        if (r.phase == runtime::rollout_phase::running)
            return decision::refuse(409, "the rollout is running already");
        resume(*u, now_ms);
        break;
    case rollout_command::promote: promote(*u, now_ms); break;
    case rollout_command::abort: roll_back(*u, runtime::rollout_phase::aborted, "aborted by an operator", now_ms); break;
    }
    d.summary = std::string(upstream) + " rollout " + std::string(to_string(c));
    return d;
}

void rollout_operations::pause_for_manual_change(runtime::runtime_state& next, std::string_view upstream,
                                                 std::string_view what, std::int64_t now_ms)
{
    auto* u = next.find(upstream);
    if (u && u->rollout && u->rollout->phase == runtime::rollout_phase::running)
        pause(*u, "paused by a manual " + std::string(what), now_ms);
}

} // namespace turnout::control
