#pragma once
// What operators changed at run time (weights, drains, backend sets, the weights to roll back
// to), layered over the configuration. It is what the state file holds, and what a reload or
// a restart reconciles with the configuration: the state wins for pools that still exist.

#include "turnout/config/config.hpp"
#include "turnout/runtime/rollout.hpp"

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace turnout::runtime {

/// One backend of a pool an operator drained (`drain UPSTREAM POOL ADDR`): it takes no new
/// sessions; at the deadline its streams close and its sessions answer 404.
struct backend_drain {
    std::string address;          // as the pool lists it
    std::int64_t deadline_ms = 0; // Unix time, ms (wall clock: it survives a restart)

    friend bool operator==(const backend_drain&, const backend_drain&) = default;
};

struct pool_runtime {
    std::string name;
    std::uint32_t weight = 0;
    bool draining = false;
    /// When the drain's grace ends (Unix time, ms): then its streams close and its sessions
    /// answer 404. Wall clock, so that it survives a restart.
    std::optional<std::int64_t> drain_deadline_ms;
    /// Backends set at run time (`turnoutctl backends`); nullopt = the configuration's.
    std::optional<std::vector<std::string>> backends;
    /// Created at run time (not in the configuration): kept across reloads.
    bool created_at_runtime = false;
    /// Backends drained one by one, each listed in the pool; a backend leaving the pool ends
    /// its drain.
    std::vector<backend_drain> drained_backends;

    backend_drain* find_drain(std::string_view address) noexcept;
    const backend_drain* find_drain(std::string_view address) const noexcept;
    /// Keeps the drains of the listed addresses only.
    void keep_drains_of(const std::vector<std::string>& listed);

    friend bool operator==(const pool_runtime&, const pool_runtime&) = default;
};

using weight_list = std::vector<std::pair<std::string, std::uint32_t>>;

struct upstream_runtime {
    std::string name;
    std::vector<pool_runtime> pools;
    /// The weights before the last weights/switch change, for rollback.
    std::optional<weight_list> previous_weights;
    /// The running rollout, or the last one (status shows how it ended); nullopt = never.
    std::optional<rollout_runtime> rollout;

    pool_runtime* find(std::string_view pool) noexcept;
    const pool_runtime* find(std::string_view pool) const noexcept;
    weight_list weights() const;

    friend bool operator==(const upstream_runtime&, const upstream_runtime&) = default;
};

struct runtime_state {
    std::vector<upstream_runtime> upstreams;

    upstream_runtime* find(std::string_view upstream) noexcept;
    const upstream_runtime* find(std::string_view upstream) const noexcept;

    friend bool operator==(const runtime_state&, const runtime_state&) = default;
};

/// The state a configuration starts with when there is no state file.
runtime_state initial_state(const config::configuration& config);

/// A saved (or current) state reconciled with a configuration: upstreams and pools follow the
/// configuration; a pool that still exists keeps its weight, drain, backends and the
/// upstream its rollback weights; a new pool starts with its configured weight; a pool
/// created at run time is kept.
runtime_state reconcile(const runtime_state& saved, const config::configuration& config);

} // namespace turnout::runtime
