#pragma once
// The figures a fleet's rollout analysis sums: each instance publishes the cumulative counts
// of the pools its rollouts judge (fleet_member::publish), as JSON
//   {"UPSTREAM": {"POOL": {"requests": N, "failed": N, "connect_failures": N, "latency": [N, ...]}}}
// and the leader reads everyone's. Counts are cumulative per instance, so an interval's
// figures are the sum of each instance's own difference: an instance that died (its key
// vanished with its lease) or restarted (its counts went back) takes nothing away from the
// others', and one seen for the first time counts from its second reading.

#include "turnout/control/rollout_analysis.hpp"

#include <map>
#include <optional>
#include <string>
#include <string_view>

namespace turnout::control {

/// One pool's cumulative counts, by instance name.
using fleet_sample = std::map<std::string, pool_sample, std::less<>>;

/// (upstream, pool) → counts: what one instance publishes.
using published_pools = std::map<std::pair<std::string, std::string>, pool_sample>;

std::string figures_to_json(const published_pools& pools);
/// nullopt for a value that is not such JSON (another version's, a damaged one): skipped.
std::optional<published_pools> figures_from_json(std::string_view text);

/// One pool across the fleet: own (this instance's counts, read right now) under own_name,
/// and each other instance's last published counts of that pool.
fleet_sample sample_fleet(std::string_view own_name, const pool_sample& own,
                          const std::map<std::string, published_pools>& others, std::string_view upstream,
                          std::string_view pool);

/// The fleet's figures between two samples: each instance's difference, summed (instances
/// missing from either sample add nothing).
runtime::pool_figures figures_between(const fleet_sample& before, const fleet_sample& after);

} // namespace turnout::control
