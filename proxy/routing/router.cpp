#include "turnout/routing/router.hpp"

#include "turnout/http/headers.hpp"

#include <algorithm>

namespace turnout::routing {

namespace {

// How much of a route's MCP patterns is literal: an exact name beats a glob, and a longer
// glob ("search_web_*") beats a shorter one ("search_*").
std::size_t literal_length(const route& r) noexcept
{
    const auto literal = [](const std::string& p) {
        return p.size() - static_cast<std::size_t>(std::count(p.begin(), p.end(), '*'));
    };
    const auto exact = [](const std::string& p) { return !p.empty() && p.find('*') == std::string::npos; };
    // Exactness first (weighted above any length), then length.
    return (exact(r.mcp_method) + exact(r.mcp_name)) * (std::size_t{1} << 32) + literal(r.mcp_method) +
           literal(r.mcp_name);
}

bool pattern_matches(const std::string& pattern, std::string_view value) noexcept
{
    if (pattern.empty())
        return true;
    if (value.empty())
        return false; // a request whose method or name is unknown matches no rule on them
    return glob_match(pattern, value);
}

} // namespace

router::router(std::vector<route> routes) : routes_(std::move(routes))
{
    std::stable_sort(routes_.begin(), routes_.end(), [](const route& a, const route& b) {
        if (a.mcp_rank() != b.mcp_rank())
            return a.mcp_rank() > b.mcp_rank();
        if (const auto la = literal_length(a), lb = literal_length(b); la != lb)
            return la > lb;
        if (a.host.empty() != b.host.empty())
            return !a.host.empty();
        if (a.exact != b.exact)
            return a.exact;
        return a.path_prefix.size() > b.path_prefix.size();
    });
    has_mcp_rules_ = std::any_of(routes_.begin(), routes_.end(), [](const route& r) { return r.mcp_rank() > 0; });
}

bool route::matches(const request_facts& r) const noexcept
{
    const bool path_ok = exact ? r.path == path_prefix : r.path.starts_with(path_prefix);
    const bool listener_ok =
        listeners.empty() || std::binary_search(listeners.begin(), listeners.end(), r.listener);
    return (host.empty() || http::iequals(host, host_without_port(r.host))) && path_ok && listener_ok &&
           pattern_matches(mcp_method, r.mcp_method) && pattern_matches(mcp_name, r.mcp_name);
}

bool glob_match(std::string_view pattern, std::string_view text) noexcept
{
    // The classic greedy match with one backtrack point: linear for patterns with '*'s.
    std::size_t p = 0, t = 0, star = std::string_view::npos, resume = 0;
    while (t < text.size()) {
        if (p < pattern.size() && pattern[p] == '*') {
            star = p++;
            resume = t;
        } else if (p < pattern.size() && pattern[p] == text[t]) {
            ++p;
            ++t;
        } else if (star != std::string_view::npos) {
            p = star + 1;
            t = ++resume;
        } else {
            return false;
        }
    }
    while (p < pattern.size() && pattern[p] == '*')
        ++p;
    return p == pattern.size();
}

const route* router::find(const request_facts& r) const noexcept
{
    for (const auto& candidate : routes_)
        if (candidate.matches(r))
            return &candidate;
    return nullptr;
}

std::optional<std::size_t> router::match(const request_facts& r) const noexcept
{
    const auto* found = find(r);
    if (!found || found->answer)
        return std::nullopt;
    return found->upstream;
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
