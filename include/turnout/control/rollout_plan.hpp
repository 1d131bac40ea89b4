#pragma once
// How a rollout moves, as pure changes of an upstream's runtime state: start, the verdict of
// an interval, a crash, and the operator's pause/resume/promote/abort. Each records what it
// did in the rollout's history (the driver sends those events to the log and the webhook)
// and sets the weights of the step it reaches; only where new sessions go ever changes.

#include "turnout/runtime/rollout.hpp"
#include "turnout/runtime/runtime_state.hpp"

#include <cstdint>
#include <string>

namespace turnout::control {

/// Sets the weights of rollout's current step: canary w, baseline 100 − w, others 0.
void apply_step_weights(runtime::upstream_runtime& u);

/// Begins rollout r on u: remembers the weights to go back to, undrains the canary, sets
/// step 1's weights.
void begin_rollout(runtime::upstream_runtime& u, runtime::rollout_runtime r, std::int64_t now_ms);

/// One interval's verdict on a running rollout: counts failures in a row (failure_limit of
/// them end it), holds, advances a step when its hold has passed with enough requests and a
/// passing verdict; reaching the last step succeeds. elapsed_ms: running time since the last
/// interval.
void on_interval(runtime::upstream_runtime& u, const runtime::verdict_record& v, std::int64_t elapsed_ms,
                 std::int64_t now_ms);

/// A crash of the canary (or failure_limit failed intervals): rollback, or pause, as the
/// rules say.
void on_failure(runtime::upstream_runtime& u, const std::string& reason, std::int64_t now_ms);

void pause(runtime::upstream_runtime& u, const std::string& reason, std::int64_t now_ms);
void resume(runtime::upstream_runtime& u, std::int64_t now_ms);
/// To the next step now (succeeding from the last but one).
void promote(runtime::upstream_runtime& u, std::int64_t now_ms);
/// Weights back as before the rollout, the canary drained for rollback_drain; ends it as
/// `phase` (rolled_back after a failure, aborted by an operator).
void roll_back(runtime::upstream_runtime& u, runtime::rollout_phase phase, const std::string& reason,
               std::int64_t now_ms);

} // namespace turnout::control
