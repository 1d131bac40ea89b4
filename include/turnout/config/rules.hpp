#pragma once
// The rules that configuration, state file, admin API and operations share, each in one
// place: a rule that drifted between them would let a value in through one door that another
// refuses (a state file naming a pool the configuration could never have).

#include <algorithm>
#include <cstdint>
#include <string_view>

namespace turnout::config {

/// Upstream and pool names appear in admin URLs (/v1/upstreams/{u}/pools/{p}), in turnoutctl's
/// POOL=N arguments and in metric labels, so they are kept to a safe alphabet.
constexpr std::size_t max_name_length = 64;
constexpr std::string_view name_rule = "must be 1 to 64 letters, digits, '.', '_' or '-'";

constexpr bool is_name_char(char c) noexcept
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
           c == '_' || c == '-';
}

constexpr bool is_valid_name(std::string_view s) noexcept
{
    return !s.empty() && s.size() <= max_name_length && std::all_of(s.begin(), s.end(), is_name_char);
}

/// A pool's new-session weight: an integer from 0 to max_weight.
constexpr std::int64_t max_weight = 1'000'000;
constexpr std::string_view weight_rule = "an integer from 0 to 1000000";

constexpr bool is_valid_weight(std::int64_t w) noexcept
{
    return w >= 0 && w <= max_weight;
}

} // namespace turnout::config
