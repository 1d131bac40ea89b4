#include "turnout/config/rollout_config.hpp"

#include "turnout/config/duration.hpp"

#include <charconv>

namespace turnout::config {

std::optional<rollout_step> parse_rollout_step(std::string_view text, std::string& why)
{
    const auto colon = text.find(':');
    const auto weight_text = text.substr(0, colon);
    unsigned weight = 0;
    const auto [end, ec] = std::from_chars(weight_text.data(), weight_text.data() + weight_text.size(), weight);
    if (ec != std::errc{} || end != weight_text.data() + weight_text.size() || weight_text.empty()) {
        why = "step '" + std::string(text) + "' must be WEIGHT or WEIGHT:HOLD, such as 25:1h";
        return std::nullopt;
    }
    rollout_step step{static_cast<std::uint32_t>(weight), 0};
    if (colon != std::string_view::npos) {
        const auto hold = parse_duration(text.substr(colon + 1));
        if (!hold) {
            why = "step '" + std::string(text) + "': '" + std::string(text.substr(colon + 1)) +
                  "' is not a duration (such as 30s, 5m, 1h)";
            return std::nullopt;
        }
        step.hold_ms = hold->count();
    }
    return step;
}

std::optional<std::string> steps_problem(const std::vector<rollout_step>& steps)
{
    if (steps.empty())
        return "a rollout needs at least one step";
    std::uint32_t previous = 0;
    for (std::size_t i = 0; i < steps.size(); ++i) {
        const auto& s = steps[i];
        const bool last = i + 1 == steps.size();
        if (s.weight < 1 || s.weight > 100)
            return "step weights must be between 1 and 100 (step " + std::to_string(i + 1) + " has " +
                   std::to_string(s.weight) + ")";
        if (s.weight <= previous)
            return "step weights must rise from one step to the next (step " + std::to_string(i + 1) + ": " +
                   std::to_string(s.weight) + " after " + std::to_string(previous) + ")";
        if (!last && s.hold_ms <= 0)
            return "every step but the last needs a hold time above zero (step " + std::to_string(i + 1) + ")";
        if (last && s.hold_ms != 0)
            return "the last step has no hold time: the rollout has succeeded when it gets there";
        previous = s.weight;
    }
    return std::nullopt;
}

bool is_valid_webhook(std::string_view url) noexcept
{
    constexpr std::string_view scheme = "http://";
    if (!url.starts_with(scheme) || url.size() == scheme.size())
        return false;
    const auto rest = url.substr(scheme.size());
    for (const char c : rest)
        if (static_cast<unsigned char>(c) <= 0x20 || c == 0x7F)
            return false;
    return rest.front() != '/';
}

std::string_view to_string(failure_action a) noexcept
{
    return a == failure_action::rollback ? "rollback" : "pause";
}

std::optional<failure_action> parse_failure_action(std::string_view s) noexcept
{
    if (s == "rollback")
        return failure_action::rollback;
    if (s == "pause")
        return failure_action::pause;
    return std::nullopt;
}

} // namespace turnout::config
