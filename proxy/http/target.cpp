#include "turnout/http/target.hpp"

#include <algorithm>

namespace turnout::http {

namespace {

// Where a parameter sits in a target: its value spans [value_begin, value_end); has_equals is
// false for a bare "name" (an empty value with nowhere to put a new one but after the name).
struct parameter_span {
    std::size_t value_begin;
    std::size_t value_end;
    bool has_equals;
};

// The query of a target: what follows the first '?', up to a '#'. A '#' before any '?' means
// the '?' belongs to the fragment, so there is no query.
std::optional<parameter_span> find_parameter(std::string_view target, std::string_view name) noexcept
{
    // The query starts at the first '?', unless a fragment ('#') starts before it. Two
    // memchr scans: find_first_of would run one per character of the target.
    const std::size_t question = target.find('?');
    if (question == std::string_view::npos || target.substr(0, question).find('#') != std::string_view::npos)
        return std::nullopt;
    const std::size_t query_end = std::min(target.find('#', question + 1), target.size());

    std::size_t pos = question + 1;
    while (pos <= query_end) {
        const std::size_t pair_end = std::min(target.find('&', pos), query_end);
        const std::string_view pair = target.substr(pos, pair_end - pos);
        const std::size_t equals = pair.find('=');
        if (pair.substr(0, equals) == name) {
            if (equals == std::string_view::npos)
                return parameter_span{pair_end, pair_end, false};
            return parameter_span{pos + equals + 1, pair_end, true};
        }
        pos = pair_end + 1;
    }
    return std::nullopt;
}

} // namespace

std::optional<std::string_view> query_parameter(std::string_view target, std::string_view name) noexcept
{
    const auto span = find_parameter(target, name);
    if (!span)
        return std::nullopt;
    return target.substr(span->value_begin, span->value_end - span->value_begin);
}

std::string replace_query_parameter(std::string_view target, std::string_view name, std::string_view value)
{
    const auto span = find_parameter(target, name);
    if (!span)
        return std::string{target};
    std::string result;
    result.reserve(target.size() + value.size() + 1);
    result.append(target.substr(0, span->value_begin));
    if (!span->has_equals)
        result += '=';
    result.append(value);
    result.append(target.substr(span->value_end));
    return result;
}

} // namespace turnout::http
