#pragma once
// Web origins (RFC 6454) as the Origin check compares them: scheme, host and port, with the
// scheme's default port made explicit. Header-only and allocation-free, so the configuration
// reader (which normalizes allowed_origins with the same rules) needs no other object file.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace turnout::edge {

/// An origin's parts, as views into the text they were read from (case as written).
struct origin_parts {
    std::string_view scheme; // "http" or "https"
    std::string_view host;   // a name, an IPv4 literal or a bracketed IPv6 literal
    std::uint16_t port = 0;  // explicit, or the scheme's default
};

namespace detail {

constexpr char lower(char c) noexcept { return (c >= 'A' && c <= 'Z') ? char(c + 32) : c; }

constexpr bool iequal(std::string_view a, std::string_view b) noexcept
{
    if (a.size() != b.size())
        return false;
    for (std::size_t i = 0; i < a.size(); ++i)
        if (lower(a[i]) != lower(b[i]))
            return false;
    return true;
}

/// Port digits (1 to 5 of them, at most 65535); nullopt otherwise.
constexpr std::optional<std::uint16_t> parse_port(std::string_view digits) noexcept
{
    if (digits.empty() || digits.size() > 5)
        return std::nullopt;
    std::uint32_t value = 0;
    for (const char c : digits) {
        if (c < '0' || c > '9')
            return std::nullopt;
        value = value * 10 + static_cast<std::uint32_t>(c - '0');
    }
    if (value == 0 || value > 65535)
        return std::nullopt;
    return static_cast<std::uint16_t>(value);
}

constexpr bool is_host_char(char c) noexcept
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '.' ||
           c == '_';
}

} // namespace detail

constexpr std::uint16_t default_port(std::string_view scheme) noexcept
{
    return detail::iequal(scheme, "https") ? 443 : 80;
}

/// Splits "host[:port]" (a Host field, or an origin's authority); nullopt when malformed.
/// default_port fills in a missing port.
constexpr std::optional<origin_parts> parse_authority(std::string_view authority, std::uint16_t default_port_value) noexcept
{
    origin_parts parts;
    std::string_view rest;
    if (authority.starts_with('[')) {
        const auto close = authority.find(']');
        if (close == std::string_view::npos || close < 2)
            return std::nullopt;
        for (const char c : authority.substr(1, close - 1))
            if (!(c == ':' || c == '.' || (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')))
                return std::nullopt;
        parts.host = authority.substr(0, close + 1);
        rest = authority.substr(close + 1);
    } else {
        const auto colon = authority.find(':');
        parts.host = authority.substr(0, colon);
        rest = colon == std::string_view::npos ? std::string_view{} : authority.substr(colon);
        if (parts.host.empty())
            return std::nullopt;
        for (const char c : parts.host)
            if (!detail::is_host_char(c))
                return std::nullopt;
    }
    if (rest.empty()) {
        parts.port = default_port_value;
        return parts;
    }
    if (rest.front() != ':')
        return std::nullopt;
    const auto port = detail::parse_port(rest.substr(1));
    if (!port)
        return std::nullopt;
    parts.port = *port;
    return parts;
}

/// Reads an Origin value ("https://example.com:8443"); nullopt for "null", other schemes,
/// paths, user info or anything malformed — none of which can be a request's own origin.
constexpr std::optional<origin_parts> parse_origin(std::string_view text) noexcept
{
    std::string_view scheme;
    if (text.size() > 7 && detail::iequal(text.substr(0, 7), "http://"))
        scheme = text.substr(0, 4);
    else if (text.size() > 8 && detail::iequal(text.substr(0, 8), "https://"))
        scheme = text.substr(0, 5);
    else
        return std::nullopt;
    auto parts = parse_authority(text.substr(scheme.size() + 3), default_port(scheme));
    if (parts)
        parts->scheme = scheme;
    return parts;
}

/// The one spelling of an origin that allowed_origins entries and request Origins are
/// compared in: lowercase, default port left out. Empty when text is not an origin.
inline std::string normalize_origin(std::string_view text)
{
    const auto parts = parse_origin(text);
    if (!parts)
        return {};
    std::string out;
    out.reserve(text.size());
    for (const char c : parts->scheme)
        out += detail::lower(c);
    out += "://";
    for (const char c : parts->host)
        out += detail::lower(c);
    if (parts->port != default_port(parts->scheme)) {
        out += ':';
        out += std::to_string(parts->port);
    }
    return out;
}

} // namespace turnout::edge
