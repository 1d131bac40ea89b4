#include "turnout/config/duration.hpp"

#include <array>
#include <charconv>
#include <cstdint>
#include <limits>
#include <system_error>

namespace turnout::config {

namespace {

struct unit {
    std::string_view suffix;
    std::int64_t milliseconds;
};

// Longest suffix first where one is a suffix of another ("ms" ends in "s").
constexpr std::array<unit, 4> units{{
    {"ms", 1},
    {"s", 1000},
    {"m", 60 * 1000},
    {"h", 60 * 60 * 1000},
}};

// Largest unit first, so the first one that divides exactly gives the shortest spelling.
constexpr std::array<unit, 4> units_by_size{{
    {"h", 60 * 60 * 1000},
    {"m", 60 * 1000},
    {"s", 1000},
    {"ms", 1},
}};

} // namespace

std::optional<duration> parse_duration(std::string_view text)
{
    for (const unit& u : units) {
        if (!text.ends_with(u.suffix))
            continue;
        const std::string_view number = text.substr(0, text.size() - u.suffix.size());
        // from_chars would accept a leading '-'; the grammar is digits only.
        if (number.empty() || number.find_first_not_of("0123456789") != std::string_view::npos)
            return std::nullopt;
        std::uint64_t value = 0;
        const auto [end, ec] = std::from_chars(number.data(), number.data() + number.size(), value);
        if (ec != std::errc{} || end != number.data() + number.size())
            return std::nullopt;
        constexpr auto max = static_cast<std::uint64_t>(std::numeric_limits<duration::rep>::max());
        if (value > max / static_cast<std::uint64_t>(u.milliseconds))
            return std::nullopt;
        return duration{static_cast<duration::rep>(value) * u.milliseconds};
    }
    return std::nullopt;
}

std::string format_duration(duration d)
{
    const duration::rep ms = d.count();
    if (ms == 0)
        return "0s";
    // Negative durations never come out of parse_duration; spell them anyway rather than lie.
    // (Dividing with the sign kept avoids negating the most negative value.)
    const std::string sign = ms < 0 ? "-" : "";
    for (const unit& u : units_by_size) {
        if (ms % u.milliseconds != 0)
            continue;
        const duration::rep n = ms / u.milliseconds;
        std::string digits = std::to_string(n);
        if (n < 0)
            digits.erase(0, 1);
        return sign + digits + std::string{u.suffix};
    }
    return sign + std::to_string(ms) + "ms"; // unreachable: 1 divides everything
}

} // namespace turnout::config
