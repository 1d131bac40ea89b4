#pragma once
// The figures a rollout judges, read off what turnout forwarded itself: per pool, the sum of
// its backends' cumulative counters (requests, failed requests, response-head latency), and
// an interval's figures as the difference of two readings. The workers only add to relaxed
// atomics; everything here runs on the control thread, off the data path.

#include "turnout/config/rollout_config.hpp"
#include "turnout/runtime/rollout.hpp"
#include "turnout/runtime/snapshot.hpp"
#include "turnout/upstream/latency_histogram.hpp"

#include <cstdint>
#include <optional>
#include <string>

namespace turnout::control {

/// Cumulative counts of a pool at one moment.
struct pool_sample {
    std::uint64_t requests = 0;
    std::uint64_t failed = 0;
    std::uint64_t connect_failures = 0;
    std::size_t healthy_backends = 0;
    upstream::latency_histogram::counts latency{};
};

pool_sample sample_pool(const runtime::pool& p);

/// Requests, error rate and p99 between two samples of one pool.
runtime::pool_figures figures_between(const pool_sample& before, const pool_sample& after);

/// SPEC's verdict of one interval: inconclusive while the canary has fewer than
/// min_requests requests; fail when its error rate or p99 is over the bound (a ratio of the
/// baseline's, never below the floor); pass otherwise.
runtime::verdict judge(const runtime::pool_figures& canary, const runtime::pool_figures& baseline,
                       const config::rollout_rules& rules);

/// Why the canary counts as crashed between two samples, or nullopt: one of its backends
/// refused connections (or did not accept them in time), went unhealthy, or is ejected.
std::optional<std::string> crash_between(const runtime::pool& canary, const pool_sample& before,
                                         const pool_sample& now, std::int64_t monotonic_now_ms);

} // namespace turnout::control
