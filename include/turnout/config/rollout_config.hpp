#pragma once
// [upstream.rollout]: the defaults of the rollouts of an upstream (SPEC "Rollouts"); a
// rollout started through the admin API may override each of them.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace turnout::config {

enum class failure_action { rollback, pause };

struct rollout_step {
    std::uint32_t weight = 0; // the canary's share of new sessions, percent
    std::int64_t hold_ms = 0; // 0 on the last step

    friend bool operator==(const rollout_step&, const rollout_step&) = default;
};

/// The analysis' rules.
struct rollout_rules {
    std::int64_t interval_ms = 60'000;
    unsigned failure_limit = 5;
    std::uint64_t min_requests = 20;
    double max_error_ratio = 2.0;
    double error_rate_floor = 0.01;
    double max_p99_ratio = 3.0;
    double latency_floor_ms = 50;
    failure_action on_failure = failure_action::rollback;
    std::int64_t rollback_drain_ms = 120'000;
    std::string webhook; // http:// URL, empty = none

    friend bool operator==(const rollout_rules&, const rollout_rules&) = default;
};

struct rollout_config {
    std::vector<rollout_step> steps{{5, 30 * 60'000}, {25, 60 * 60'000}, {50, 60 * 60'000}, {100, 0}};
    rollout_rules rules;

    friend bool operator==(const rollout_config&, const rollout_config&) = default;
};

/// "25:1h" → {25, 3600000}; "100" → {100, 0}. nullopt with why set when malformed.
std::optional<rollout_step> parse_rollout_step(std::string_view text, std::string& why);
/// Steps' weights rise strictly, each is 1..100, every step but the last holds > 0 and the
/// last holds nothing: nullopt, or what is wrong in one sentence.
std::optional<std::string> steps_problem(const std::vector<rollout_step>& steps);
/// A webhook must be an http:// URL (host[:port][/path]).
bool is_valid_webhook(std::string_view url) noexcept;

std::string_view to_string(failure_action a) noexcept;
std::optional<failure_action> parse_failure_action(std::string_view s) noexcept;

} // namespace turnout::config
