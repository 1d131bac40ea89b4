#include "turnout/http/headers.hpp"

#include <array>

namespace turnout::http {

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
    switch (ascii_lower(name.empty() ? '\0' : name[0])) {
    case 'c': case 'k': case 'p': case 't': case 'u': break;
    default: return false;
    }
    for (const auto candidate : names)
        if (iequals(name, candidate))
            return true;
    return false;
}

} // namespace turnout::http
