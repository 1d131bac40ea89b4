#pragma once
// A backend or listen address as written ("host:port"), split and checked; no resolution
// (that is net::resolve's, on the control plane).

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace turnout::config {

/// "host:port" as written, split. host is an IPv4 literal, a bracketed IPv6 literal (stored
/// without brackets) or a name.
struct host_port {
    std::string host;
    std::uint16_t port = 0;
    std::string text; // as written in the config

    friend bool operator==(const host_port&, const host_port&) = default;
};

/// A DNS name: dot-separated labels of letters, digits, '-' and '_', at most 253 characters.
bool is_host_name(std::string_view text);

/// An IPv4 or IPv6 literal (without brackets).
bool is_ip_literal(std::string_view text);

/// Splits "127.0.0.1:8080", "[::1]:8080" or "localhost:8080". nullopt when malformed.
std::optional<host_port> parse_host_port(std::string_view text);

} // namespace turnout::config
