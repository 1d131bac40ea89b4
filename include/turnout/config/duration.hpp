#pragma once
// Durations in the configuration and the admin API: a number with a unit ("250ms", "30s", "5m", "1h").

#include <chrono>
#include <optional>
#include <string>
#include <string_view>

namespace turnout::config {

using duration = std::chrono::milliseconds;

/// Parses "250ms", "30s", "5m", "1h" (also "0s"). A unit is required; the number is a
/// non-negative integer. Returns nullopt for anything else, including overflow.
std::optional<duration> parse_duration(std::string_view text);

/// The shortest exact spelling of d that parse_duration reads back ("1500ms", "30s", "5m").
std::string format_duration(duration d);

} // namespace turnout::config
