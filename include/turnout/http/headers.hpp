#pragma once
// Header-field helpers: case-insensitive names, comma-separated token lists, and the
// hop-by-hop fields (RFC 9110 §7.6.1) that a proxy must not forward.

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

/// The fields that describe one connection rather than the message (RFC 9110 §7.6.1):
/// Connection, Keep-Alive, Proxy-Connection, TE, Trailer, Transfer-Encoding, Upgrade.
/// Transfer-Encoding is included because turnout frames each hop itself.
bool is_hop_by_hop(std::string_view name) noexcept;

} // namespace turnout::http
