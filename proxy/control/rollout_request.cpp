#include "turnout/control/rollout_request.hpp"

namespace turnout::control {

std::string_view to_string(rollout_command c) noexcept
{
    switch (c) {
    case rollout_command::pause: return "pause";
    case rollout_command::resume: return "resume";
    case rollout_command::promote: return "promote";
    case rollout_command::abort: return "abort";
    }
    return "?";
}

std::optional<rollout_command> parse_rollout_command(std::string_view s) noexcept
{
    for (const auto c : {rollout_command::pause, rollout_command::resume, rollout_command::promote, rollout_command::abort})
        if (to_string(c) == s)
            return c;
    return std::nullopt;
}

} // namespace turnout::control
