#pragma once
// The admin operations as decisions: given the runtime state in force, the live snapshot (for
// health and tools) and the configuration, each computes the next runtime state or refuses
// with a status and one clear sentence. Nothing here persists, publishes or touches a socket:
// the caller commits what it decided (control::publisher), so each rule is testable alone and
// a new operation (rollouts) or another store (etcd) changes nothing here.

#include "turnout/config/config.hpp"
#include "turnout/config/duration.hpp"
#include "turnout/runtime/runtime_state.hpp"
#include "turnout/runtime/snapshot.hpp"

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace turnout::control {

/// The next state (status 200), or a refusal: 404 unknown upstream/pool, 400 bad value,
/// 409 refused in this situation.
struct decision {
    unsigned status = 200;
    std::string error;
    runtime::runtime_state next;
    std::string summary; // what changed, for the log ("mcp weights blue=90 green=10")

    bool ok() const noexcept { return status == 200; }
    static decision refuse(unsigned status, std::string error) { return {status, std::move(error), {}, {}}; }
    /// 404 naming what is unknown.
    static decision unknown_upstream(std::string_view upstream);
    static decision unknown_pool(std::string_view upstream, std::string_view pool);
};

class operations {
public:
    /// All three must outlive the operations object (it is made per request).
    operations(const runtime::runtime_state& current, const runtime::snapshot& live,
               const config::configuration& config)
        : current_(current), live_(live), config_(config)
    {
    }

    /// force: give pools their first traffic even when refusal() has a reason not to.
    decision set_weights(std::string_view upstream,
                         const std::vector<std::pair<std::string, std::int64_t>>& weights, bool force) const;
    decision switch_to(std::string_view upstream, std::string_view pool, bool force) const;
    decision rollback(std::string_view upstream) const;
    /// timeout: nullopt = the proxy's drain_timeout; now_ms: Unix time, for the deadline.
    decision drain(std::string_view upstream, std::string_view pool, std::optional<config::duration> timeout,
                   std::int64_t now_ms) const;
    decision undrain(std::string_view upstream, std::string_view pool) const;
    /// The same for one backend the pool lists (address as the pool lists it), written or
    /// found by DNS discovery (then as the live snapshot lists it, "10.0.0.7:3000"). Undrain
    /// also ends a drain whose address the pool no longer lists.
    decision drain_backend(std::string_view upstream, std::string_view pool, std::string_view address,
                           std::optional<config::duration> timeout, std::int64_t now_ms) const;
    decision undrain_backend(std::string_view upstream, std::string_view pool, std::string_view address) const;
    /// Checks the addresses' form only: resolving them is the caller's (no DNS here).
    decision set_backends(std::string_view upstream, std::string_view pool,
                          const std::vector<std::string>& addresses) const;

    /// Why pool should not start taking new sessions, or nullopt: it has no healthy backend,
    /// or its tools break those of baseline (control::breaking_change; null baseline: the
    /// other pool taking most new sessions now).
    static std::optional<std::string> refusal(const runtime::upstream_state& u, const runtime::pool& target,
                                              const runtime::pool* baseline = nullptr);

private:
    /// The addresses pool lists now: its run-time set, else the configuration's and those
    /// its dns:/srv: names resolved to (from the live snapshot).
    std::vector<std::string> listed_backends(std::string_view upstream, const runtime::pool_runtime& pool) const;
    /// The refusal when address is not one the pool lists, or nullopt.
    std::optional<decision> check_listed(std::string_view upstream, const runtime::pool_runtime& pool,
                                         std::string_view address) const;

    const runtime::runtime_state& current_;
    const runtime::snapshot& live_;
    const config::configuration& config_;
};

} // namespace turnout::control
