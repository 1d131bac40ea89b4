#include "turnout/http/headers.hpp"

#include <array>

namespace turnout::http {
namespace {

constexpr char lower(char c) noexcept { return (c >= 'A' && c <= 'Z') ? char(c + 32) : c; }

} // namespace

bool iequals(std::string_view a, std::string_view b) noexcept
{
    if (a.size() != b.size())
        return false;
    for (std::size_t i = 0; i < a.size(); ++i)
        if (lower(a[i]) != lower(b[i]))
            return false;
    return true;
}

bool has_token(std::string_view list, std::string_view token) noexcept
{
    bool found = false;
    for_each_token(list, [&](std::string_view item) { found = found || iequals(item, token); });
    return found;
}

bool is_hop_by_hop(std::string_view name) noexcept
{
    static constexpr std::array<std::string_view, 7> names = {
        "connection", "keep-alive", "proxy-connection", "te", "trailer", "transfer-encoding",
        "upgrade"};
    // Cheap first-letter filter: this runs for every forwarded field.
    switch (lower(name.empty() ? '\0' : name[0])) {
    case 'c': case 'k': case 'p': case 't': case 'u': break;
    default: return false;
    }
    for (const auto candidate : names)
        if (iequals(name, candidate))
            return true;
    return false;
}

} // namespace turnout::http
