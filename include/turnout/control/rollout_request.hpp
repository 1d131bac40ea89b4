#pragma once
// A rollout command as an operator gives it (turnoutctl, the admin API): what the admin
// server parsed, before control decides what it means.

#include "turnout/config/rollout_config.hpp"

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace turnout::control {

/// What is left out comes from [upstream.rollout].
struct rollout_request {
    std::string pool;
    std::optional<std::vector<config::rollout_step>> steps;
    std::optional<std::string> baseline;
    std::optional<std::int64_t> interval_ms;
    std::optional<unsigned> failure_limit;
    std::optional<config::failure_action> on_failure;
    bool force = false;
};

enum class rollout_command { pause, resume, promote, abort };

std::string_view to_string(rollout_command c) noexcept;
std::optional<rollout_command> parse_rollout_command(std::string_view s) noexcept;

} // namespace turnout::control
