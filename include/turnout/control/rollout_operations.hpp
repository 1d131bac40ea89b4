#pragma once
// The rollout commands of the admin API as decisions, like control::operations: each
// computes the next runtime state (the rollout and the weights it sets) or refuses with a
// status and one clear sentence, and changes nothing itself.

#include "turnout/config/config.hpp"
#include "turnout/control/operations.hpp"
#include "turnout/control/rollout_request.hpp"
#include "turnout/runtime/runtime_state.hpp"
#include "turnout/runtime/snapshot.hpp"

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace turnout::control {

class rollout_operations {
public:
    rollout_operations(const runtime::runtime_state& current, const runtime::snapshot& live,
                       const config::configuration& config)
        : current_(current), live_(live), config_(config)
    {
    }

    decision start(std::string_view upstream, const rollout_request& request, std::int64_t now_ms) const;
    /// `switch --watch`: the switch, and a watch of `watch_ms` comparing the pool switched to
    /// with old_pool_figures (the old pool's, from before the switch).
    decision watch_switch(std::string_view upstream, std::string_view pool, bool force, std::int64_t watch_ms,
                          const runtime::pool_figures& old_pool_figures, std::int64_t now_ms) const;
    decision command(std::string_view upstream, rollout_command c, std::int64_t now_ms) const;

    /// A manual weights/switch/rollback change (already decided in next) pauses the running
    /// rollout of upstream, saying why.
    static void pause_for_manual_change(runtime::runtime_state& next, std::string_view upstream,
                                        std::string_view what, std::int64_t now_ms);

    /// The pool a rollout compares with by default: the highest weight other than pool's.
    static const runtime::pool_runtime* default_baseline(const runtime::upstream_runtime& u, std::string_view pool);

private:
    const runtime::runtime_state& current_;
    const runtime::snapshot& live_;
    const config::configuration& config_;
};

} // namespace turnout::control
