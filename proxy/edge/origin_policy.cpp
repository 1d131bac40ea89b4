#include "turnout/edge/origin_policy.hpp"

#include "turnout/edge/origin.hpp"
#include "turnout/http/headers.hpp"

#include <algorithm>

namespace turnout::edge {
namespace {

// allowed_hosts entries are "name" (any port) or "name:port", lowercase.
bool host_allowed(const std::vector<std::string>& allowed, std::string_view host_field) noexcept
{
    const auto parts = parse_authority(host_field, 0);
    if (!parts)
        return false;
    return std::any_of(allowed.begin(), allowed.end(), [&](const std::string& entry) {
        const auto wanted = parse_authority(entry, 0);
        return wanted && http::iequals(wanted->host, parts->host) && (wanted->port == 0 || wanted->port == parts->port);
    });
}

// The Origin against the request's own origin: same scheme, same host, same port (defaults
// filled in on both sides, so "http://a" and Host "a:80" agree).
bool is_own_origin(const origin_parts& origin, std::string_view host_field, bool https) noexcept
{
    const std::string_view scheme = https ? "https" : "http";
    if (!http::iequals(origin.scheme, scheme))
        return false;
    const auto own = parse_authority(host_field, default_port(scheme));
    return own && http::iequals(own->host, origin.host) && own->port == origin.port;
}

// allowed_origins holds normalized origins; the request's is compared in the same spelling,
// built on the stack (an Origin longer than the buffer is no configured origin anyway).
bool origin_listed(const std::vector<std::string>& allowed, const origin_parts& origin) noexcept
{
    if (allowed.empty())
        return false;
    char buffer[300];
    std::size_t n = 0;
    const auto put = [&](std::string_view piece) {
        for (const char c : piece) {
            if (n == sizeof buffer)
                return false;
            buffer[n++] = http::ascii_lower(c);
        }
        return true;
    };
    bool fits = put(origin.scheme) && put("://") && put(origin.host);
    if (fits && origin.port != default_port(origin.scheme)) {
        char digits[8];
        std::size_t d = 0;
        for (auto p = origin.port; p != 0; p /= 10)
            digits[d++] = static_cast<char>('0' + p % 10);
        fits = put(":");
        while (fits && d > 0)
            fits = put(std::string_view(&digits[--d], 1));
    }
    if (!fits)
        return false;
    const std::string_view spelled(buffer, n);
    return std::find(allowed.begin(), allowed.end(), spelled) != allowed.end();
}

} // namespace

std::optional<http::proxy_error> check_origin(const config::listen_config& listen, const http::message_head& head,
                                              bool https) noexcept
{
    const auto host = head.find(http::field_name::host).value_or("");
    if (!listen.allowed_hosts.empty() && !host_allowed(listen.allowed_hosts, host))
        return http::proxy_error::host_not_allowed;
    if (listen.any_origin)
        return std::nullopt;
    const auto origin_field = head.find(http::field_name::origin);
    if (!origin_field)
        return std::nullopt; // not a browser's cross-site request: nothing to check
    // Browsers send an origin already spelled as allowed_origins holds it (lowercase scheme and
    // host, no default port): such a listed one passes without being parsed. Normalizing is
    // idempotent (the edge_origin fuzz target checks it), so this answers as the parse would.
    const auto& listed = listen.allowed_origins;
    if (std::find(listed.begin(), listed.end(), *origin_field) != listed.end())
        return std::nullopt;
    const auto origin = parse_origin(*origin_field);
    if (origin && (is_own_origin(*origin, host, https) || origin_listed(listen.allowed_origins, *origin)))
        return std::nullopt;
    return http::proxy_error::origin_not_allowed; // "null", another site, or garbage
}

} // namespace turnout::edge
