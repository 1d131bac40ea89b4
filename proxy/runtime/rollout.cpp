#include "turnout/runtime/rollout.hpp"

#include <array>

namespace turnout::runtime {
namespace {

template <class Enum, std::size_t N>
std::optional<Enum> parse_name(const std::array<std::string_view, N>& names, std::string_view s) noexcept
{
    for (std::size_t i = 0; i < N; ++i)
        if (names[i] == s)
            return static_cast<Enum>(i);
    return std::nullopt;
}

constexpr std::array<std::string_view, 5> phase_names{"running", "paused", "succeeded", "rolled_back", "aborted"};
constexpr std::array<std::string_view, 2> kind_names{"steps", "switch_watch"};
constexpr std::array<std::string_view, 3> verdict_names{"pass", "fail", "inconclusive"};

} // namespace

std::string_view to_string(rollout_phase p) noexcept { return phase_names[static_cast<std::size_t>(p)]; }
std::string_view to_string(rollout_kind k) noexcept { return kind_names[static_cast<std::size_t>(k)]; }
std::string_view to_string(verdict v) noexcept { return verdict_names[static_cast<std::size_t>(v)]; }

std::optional<rollout_phase> parse_rollout_phase(std::string_view s) noexcept
{
    return parse_name<rollout_phase>(phase_names, s);
}
std::optional<rollout_kind> parse_rollout_kind(std::string_view s) noexcept
{
    return parse_name<rollout_kind>(kind_names, s);
}
std::optional<verdict> parse_verdict(std::string_view s) noexcept
{
    return parse_name<verdict>(verdict_names, s);
}

void rollout_runtime::record(std::int64_t at_ms, std::string event, std::string detail)
{
    if (history.size() == max_history)
        history.erase(history.begin());
    history.push_back({at_ms, std::move(event), std::move(detail)});
    ++events_total;
}

} // namespace turnout::runtime
