#pragma once
// Header-field helpers: case-insensitive names, comma-separated token lists, and the
// hop-by-hop fields (RFC 9110 §7.6.1) that a proxy must not forward.

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace turnout::http {

constexpr char ascii_lower(char c) noexcept { return (c >= 'A' && c <= 'Z') ? char(c + 32) : c; }

/// ASCII case-insensitive equality, as header names and most tokens compare. Inline: it runs
/// a dozen times per forwarded field, and most calls end at the length check.
constexpr bool iequals(std::string_view a, std::string_view b) noexcept
{
    if (a.size() != b.size())
        return false;
    for (std::size_t i = 0; i < a.size(); ++i)
        if (ascii_lower(a[i]) != ascii_lower(b[i]))
            return false;
    return true;
}

/// Whether text starts with prefix, which is lowercase, in any case (one case fold per byte
/// where iequals makes two).
constexpr bool starts_with_lowercase(std::string_view text, std::string_view prefix) noexcept
{
    if (text.size() < prefix.size())
        return false;
    for (std::size_t i = 0; i < prefix.size(); ++i)
        if (ascii_lower(text[i]) != prefix[i])
            return false;
    return true;
}

/// Whether a comma-separated field value (e.g. Connection, Transfer-Encoding) holds token,
/// compared case-insensitively and ignoring optional whitespace.
bool has_token(std::string_view list, std::string_view token) noexcept;

/// Calls f(token) for each non-empty element of a comma-separated list, whitespace trimmed.
template <class F>
void for_each_token(std::string_view list, F&& f)
{
    while (!list.empty()) {
        const auto comma = list.find(',');
        auto item = list.substr(0, comma);
        while (!item.empty() && (item.front() == ' ' || item.front() == '\t'))
            item.remove_prefix(1);
        while (!item.empty() && (item.back() == ' ' || item.back() == '\t'))
            item.remove_suffix(1);
        if (!item.empty())
            f(item);
        if (comma == std::string_view::npos)
            break;
        list.remove_prefix(comma + 1);
    }
}

/// The field names the data path acts on. A parsed head records which one each field is, so
/// that forwarding a head and finding a field compare no names.
enum class field_name : std::uint8_t {
    other,
    // hop-by-hop: they describe one connection rather than the message (RFC 9110 §7.6.1);
    // Transfer-Encoding is among them because turnout frames each hop itself
    connection,
    keep_alive,
    proxy_connection,
    te,
    trailer,
    transfer_encoding,
    upgrade,
    // read or rewritten by turnout
    host,
    expect,
    content_type,
    content_length,
    mcp_session_id,
    x_forwarded_for,
    x_forwarded_proto,
    x_forwarded_host,
    // read by the edge checks and the MCP routing facts
    origin,
    mcp_method,
    mcp_name,
};
inline constexpr std::size_t field_name_count = static_cast<std::size_t>(field_name::mcp_name) + 1;

/// Which of the names above name is, in any case; field_name::other for every other name.
field_name classify_field(std::string_view name) noexcept;

constexpr bool is_hop_by_hop(field_name f) noexcept
{
    return f >= field_name::connection && f <= field_name::upgrade;
}
/// X-Forwarded-For, -Proto and -Host: turnout states them itself.
constexpr bool is_forwarded(field_name f) noexcept
{
    return f >= field_name::x_forwarded_for && f <= field_name::x_forwarded_host;
}

/// Connection, Keep-Alive, Proxy-Connection, TE, Trailer, Transfer-Encoding, Upgrade.
inline bool is_hop_by_hop(std::string_view name) noexcept { return is_hop_by_hop(classify_field(name)); }

} // namespace turnout::http
