#pragma once
// A rollout as runtime state: the plan (steps, thresholds), where it stands (step, hold time
// passed, failures in a row), the last verdict and a bounded history. It lives in the state
// file with the weights it changes, so it survives a reload, a restart and an upgrade and
// resumes its step with the hold time that was left.

#include "turnout/config/rollout_config.hpp"

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace turnout::runtime {

enum class rollout_phase { running, paused, succeeded, rolled_back, aborted };
enum class rollout_kind { steps, switch_watch }; // switch_watch: `switch --watch`
enum class verdict { pass, fail, inconclusive };

std::string_view to_string(rollout_phase p) noexcept;
std::string_view to_string(rollout_kind k) noexcept;
std::string_view to_string(verdict v) noexcept;
std::optional<rollout_phase> parse_rollout_phase(std::string_view s) noexcept;
std::optional<rollout_kind> parse_rollout_kind(std::string_view s) noexcept;
std::optional<verdict> parse_verdict(std::string_view s) noexcept;

using config::failure_action;
using config::rollout_rules;
using config::rollout_step;

/// A pool's figures over one interval.
struct pool_figures {
    std::uint64_t requests = 0;
    double error_rate = 0;
    double p99_ms = 0;

    friend bool operator==(const pool_figures&, const pool_figures&) = default;
};

struct verdict_record {
    verdict result = verdict::inconclusive;
    pool_figures canary;
    pool_figures baseline;
    std::int64_t at_ms = 0; // Unix time

    friend bool operator==(const verdict_record&, const verdict_record&) = default;
};

struct rollout_event {
    std::int64_t at_ms = 0; // Unix time
    std::string event;      // started, step, interval_failed, paused, resumed, promoted, ...
    std::string detail;

    friend bool operator==(const rollout_event&, const rollout_event&) = default;
};

struct rollout_runtime {
    static constexpr std::size_t max_history = 100;

    rollout_kind kind = rollout_kind::steps;
    std::string pool;     // the canary (or, for switch_watch, the pool switched to)
    std::string baseline; // the stable pool it is compared with
    std::vector<rollout_step> steps;
    rollout_rules rules;

    rollout_phase phase = rollout_phase::running;
    std::size_t step = 0;
    std::int64_t step_held_ms = 0;       // hold time passed in the current step
    std::uint64_t step_requests = 0;     // canary requests counted in the current step
    unsigned failures = 0;               // failed intervals in a row
    std::string reason;                  // why it paused or ended, empty otherwise
    std::vector<std::pair<std::string, std::uint32_t>> weights_before;
    std::optional<pool_figures> frozen_baseline; // switch_watch: the old pool before the switch
    std::optional<verdict_record> last;
    std::vector<rollout_event> history;
    std::int64_t started_ms = 0;    // Unix time: with pool, which rollout this is
    std::uint64_t events_total = 0; // events recorded ever (history keeps the last ones)

    bool active() const noexcept { return phase == rollout_phase::running || phase == rollout_phase::paused; }
    /// The canary's weight at the current step.
    std::uint32_t weight() const noexcept { return step < steps.size() ? steps[step].weight : 0; }
    /// Adds an event, keeping the last max_history.
    void record(std::int64_t at_ms, std::string event, std::string detail);

    friend bool operator==(const rollout_runtime&, const rollout_runtime&) = default;
};

} // namespace turnout::runtime
