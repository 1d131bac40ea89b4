#include "turnout/routing/router.hpp"

#include "turnout/http/headers.hpp"

#include <algorithm>

namespace turnout::routing {

router::router(std::vector<route> routes) : routes_(std::move(routes))
{
    std::stable_sort(routes_.begin(), routes_.end(), [](const route& a, const route& b) {
        if (a.host.empty() != b.host.empty())
            return !a.host.empty();
        return a.path_prefix.size() > b.path_prefix.size();
    });
}

bool route::matches(const request_facts& r) const noexcept
{
    return (host.empty() || http::iequals(host, host_without_port(r.host))) && r.path.starts_with(path_prefix);
}

std::optional<std::size_t> router::match(const request_facts& r) const noexcept
{
    for (const auto& candidate : routes_)
        if (candidate.matches(r))
            return candidate.upstream;
    return std::nullopt;
}

std::string_view host_without_port(std::string_view host) noexcept
{
    if (host.starts_with('[')) {
        const auto close = host.find(']');
        return close == std::string_view::npos ? host : host.substr(0, close + 1);
    }
    const auto colon = host.rfind(':');
    return colon == std::string_view::npos ? host : host.substr(0, colon);
}

std::string_view target_path(std::string_view target) noexcept
{
    if (!target.starts_with('/')) {
        // absolute-form ("http://host/path?q"): skip scheme and authority.
        const auto scheme = target.find("://");
        if (scheme == std::string_view::npos)
            return "/"; // asterisk-form ("*") and the like route as "/"
        const auto slash = target.find_first_of("/?#", scheme + 3);
        if (slash == std::string_view::npos || target[slash] != '/')
            return "/";
        target.remove_prefix(slash);
    }
    // One pass (find_first_of would call memchr once per character of the path).
    const auto end = std::find_if(target.begin(), target.end(), [](char c) { return c == '?' || c == '#'; });
    return target.substr(0, static_cast<std::size_t>(end - target.begin()));
}

} // namespace turnout::routing
