#pragma once
// nginx's value syntax, as the translator needs it: sizes ("10m"), times ("1m30s", "60"),
// listen and server addresses (a port alone, "*:80", "[::1]:443", a name without port), and
// names made safe for turnout (upstream and pool names have a narrower alphabet).

#include "turnout/config/duration.hpp"

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace turnout::nginx {

/// "1024", "512k", "10m", "1g" (either case) in bytes; nullopt when malformed or too large.
std::optional<std::uint64_t> parse_size(std::string_view text);

/// nginx's time: units ms s m h d w M y, combined ("1m30s"), a bare number is seconds.
std::optional<config::duration> parse_time(std::string_view text);

/// A `listen` address as turnout's host:port: "8080" and "*:8080" → "0.0.0.0:8080",
/// "127.0.0.1" → "127.0.0.1:80", "[::]:443" as it is. nullopt for unix: sockets and garbage.
std::optional<std::string> listen_address(std::string_view text);

/// An upstream `server` or a proxy_pass host as host:port, default_port when none is written.
/// nullopt for unix: sockets and garbage.
std::optional<std::string> backend_address(std::string_view text, std::uint16_t default_port);

/// text with every character turnout's names refuse replaced by '_', cut to 64 characters
/// ("backend_10.0.0.1_3000" from "backend:10.0.0.1:3000"); "_" for an empty text.
std::string safe_name(std::string_view text);

/// text as a TOML basic string, quotes included (bytes that are not UTF-8 become '?').
std::string toml_string(std::string_view text);

/// text fit for a TOML comment: one line, UTF-8 (bytes that are not become '?').
std::string toml_text(std::string_view text);

} // namespace turnout::nginx
