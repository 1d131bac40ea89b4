#include "turnout/control/rollout_analysis.hpp"

#include <algorithm>

namespace turnout::control {

pool_sample sample_pool(const runtime::pool& p)
{
    pool_sample s;
    for (const auto& b : p.backends) {
        const auto& c = b->counters();
        s.requests += c.requests_total.load(std::memory_order_relaxed);
        s.failed += c.failed_requests_total.load(std::memory_order_relaxed);
        s.connect_failures += c.connect_failures_total.load(std::memory_order_relaxed);
        s.healthy_backends += b->healthy() && b->in_service() ? 1 : 0;
        c.head_latency.add_to(s.latency);
    }
    return s;
}

runtime::pool_figures figures_between(const pool_sample& before, const pool_sample& after)
{
    runtime::pool_figures f;
    // A backend that left the pool takes its counts along: never below zero.
    f.requests = after.requests > before.requests ? after.requests - before.requests : 0;
    const auto failed = after.failed > before.failed ? after.failed - before.failed : 0;
    f.error_rate = f.requests ? std::min(1.0, static_cast<double>(failed) / static_cast<double>(f.requests)) : 0;
    upstream::latency_histogram::counts interval{};
    for (std::size_t i = 0; i < interval.size(); ++i)
        interval[i] = after.latency[i] > before.latency[i] ? after.latency[i] - before.latency[i] : 0;
    f.p99_ms = upstream::latency_histogram::quantile_ms(interval, 0.99);
    return f;
}

runtime::verdict judge(const runtime::pool_figures& canary, const runtime::pool_figures& baseline,
                       const config::rollout_rules& rules)
{
    if (canary.requests < std::max<std::uint64_t>(rules.min_requests, 1))
        return runtime::verdict::inconclusive;
    const double error_bound = std::max(rules.max_error_ratio * baseline.error_rate, rules.error_rate_floor);
    const double latency_bound = std::max(rules.max_p99_ratio * baseline.p99_ms, rules.latency_floor_ms);
    if (canary.error_rate > error_bound || canary.p99_ms > latency_bound)
        return runtime::verdict::fail;
    return runtime::verdict::pass;
}

std::optional<std::string> crash_between(const runtime::pool& canary, const pool_sample& before,
                                         const pool_sample& now, std::int64_t monotonic_now_ms)
{
    if (now.connect_failures > before.connect_failures)
        return "a backend of pool '" + canary.name + "' refused connections";
    if (now.healthy_backends < before.healthy_backends)
        return "a backend of pool '" + canary.name + "' went unhealthy";
    for (const auto& b : canary.backends)
        if (b->ejected(monotonic_now_ms))
            return "backend " + b->address() + " of pool '" + canary.name + "' was ejected by passive checks";
    return std::nullopt;
}

} // namespace turnout::control
