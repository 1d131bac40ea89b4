#pragma once
// MCP's DNS-rebinding rule at the edge: a browser page on another site must not reach an MCP
// server through turnout. A request whose Origin is present must come from the request's own
// origin (the scheme of the listener, the Host it was sent to, and that Host's port) or from
// one of [[listen]] allowed_origins; with allowed_hosts set, the Host itself must be one of
// them (a rebound name arrives with the attacker's Host).

#include "turnout/config/config.hpp"
#include "turnout/http/message_parser.hpp"
#include "turnout/http/proxy_error.hpp"

#include <optional>

namespace turnout::edge {

/// host_not_allowed (421), origin_not_allowed (403), or nothing when the request may pass.
/// https: the request came over a TLS listener (its own origin's scheme).
std::optional<http::proxy_error> check_origin(const config::listen_config& listen, const http::message_head& head,
                                              bool https) noexcept;

} // namespace turnout::edge
