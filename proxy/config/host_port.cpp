#include "turnout/config/host_port.hpp"

#include <arpa/inet.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <string>

namespace turnout::config {

namespace {

bool all_digits(std::string_view s)
{
    return !s.empty() && std::all_of(s.begin(), s.end(), [](unsigned char c) { return std::isdigit(c); });
}

bool is_ipv4(std::string_view s)
{
    const std::string copy{s}; // inet_pton wants a terminated string
    in_addr addr{};
    return inet_pton(AF_INET, copy.c_str(), &addr) == 1;
}

// An IPv6 literal, optionally with a zone ("fe80::1%eth0").
bool is_ipv6(std::string_view s)
{
    const auto percent = s.find('%');
    if (percent != std::string_view::npos) {
        const std::string_view zone = s.substr(percent + 1);
        const bool zone_ok = !zone.empty() && std::all_of(zone.begin(), zone.end(), [](unsigned char c) {
            return std::isalnum(c) || c == '-' || c == '_' || c == '.';
        });
        if (!zone_ok)
            return false;
        s = s.substr(0, percent);
    }
    const std::string copy{s};
    in6_addr addr{};
    return inet_pton(AF_INET6, copy.c_str(), &addr) == 1;
}

// A DNS name: dot-separated labels of letters, digits, '-' and '_' (underscores show up in
// container and service names even though RFC 1123 forbids them).
bool host_name(std::string_view s)
{
    if (s.empty() || s.size() > 253)
        return false;
    std::size_t start = 0;
    while (true) {
        const auto dot = s.find('.', start);
        const std::string_view label = s.substr(start, dot == std::string_view::npos ? s.npos : dot - start);
        const bool label_ok = !label.empty() && label.size() <= 63 &&
                              std::all_of(label.begin(), label.end(), [](unsigned char c) {
                                  return std::isalnum(c) || c == '-' || c == '_';
                              });
        if (!label_ok)
            return false;
        if (dot == std::string_view::npos)
            return true;
        start = dot + 1;
    }
}

bool is_host(std::string_view host)
{
    // Something that looks like an IPv4 address must be one: "300.1.1.1" is a typo, not a name.
    if (host.find_first_not_of("0123456789.") == std::string_view::npos)
        return is_ipv4(host);
    return host_name(host);
}

std::optional<std::uint16_t> parse_port(std::string_view s)
{
    if (!all_digits(s) || s.size() > 5)
        return std::nullopt;
    unsigned value = 0;
    std::from_chars(s.data(), s.data() + s.size(), value);
    if (value > 65535)
        return std::nullopt;
    return static_cast<std::uint16_t>(value);
}

} // namespace

bool is_host_name(std::string_view text)
{
    return host_name(text);
}

bool is_ip_literal(std::string_view text)
{
    return is_ipv4(text) || is_ipv6(text);
}

std::optional<host_port> parse_host_port(std::string_view text)
{
    std::string_view host;
    std::string_view port;
    if (text.starts_with('[')) {
        const auto close = text.find(']');
        if (close == std::string_view::npos || text.substr(close + 1, 1) != ":")
            return std::nullopt;
        host = text.substr(1, close - 1);
        port = text.substr(close + 2);
        if (!is_ipv6(host))
            return std::nullopt;
    } else {
        const auto colon = text.rfind(':');
        if (colon == std::string_view::npos)
            return std::nullopt;
        host = text.substr(0, colon);
        port = text.substr(colon + 1);
        // A colon left in the host is an IPv6 address without brackets: ambiguous, refuse it.
        if (!is_host(host))
            return std::nullopt;
    }
    const auto port_number = parse_port(port);
    if (!port_number)
        return std::nullopt;
    return host_port{std::string{host}, *port_number, std::string{text}};
}

} // namespace turnout::config
