#pragma once
// tools/call counts of a backend by tool name and outcome, for turnout_tool_calls_total.
// Names come from clients, so the tally is bounded: past max_names distinct names, calls
// count under "" (shown as `other`, with the names the pool did not announce). A lock
// rather than atomics: only tool calls come here, their names are not known in advance, and
// one uncontended lock costs less than the JSON they carry.

#include <array>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

namespace turnout::upstream {

enum class tool_outcome : std::uint8_t { ok, error, tool_error };
inline constexpr std::array<std::string_view, 3> tool_outcome_names{"ok", "error", "tool_error"};

struct tool_count {
    std::string name; // "" = the names past the bound
    std::array<std::uint64_t, 3> by_outcome{};
};

class tool_tally {
public:
    static constexpr std::size_t max_names = 128;

    void add(std::string_view name, tool_outcome outcome);
    /// A copy of the counts, in the order names were first seen.
    std::vector<tool_count> read() const;

private:
    mutable std::mutex mutex_;
    std::vector<tool_count> counts_;
};

} // namespace turnout::upstream
