#pragma once
// Everything that can go wrong with one proxied exchange, as values: each maps to the status
// turnout answers with and a one-sentence message for the client's JSON body.

#include <boost/system/error_code.hpp>

#include <string_view>
#include <type_traits>

namespace turnout::http {

enum class proxy_error {
    bad_request = 1,      // 400: malformed request or framing (smuggling attempts included)
    bad_session_id,       // 400: session id outside visible ASCII or too long
    method_not_allowed,   // 405: CONNECT and other methods a reverse proxy doesn't tunnel
    header_timeout,       // 408: request head not complete within header_timeout
    body_too_large,       // 413: body over max_body_bytes
    uri_too_long,         // 414: request target over max_uri_bytes
    header_too_large,     // 431: head over max_header_bytes
    no_route,             // 404: no route matches the request
    session_not_found,    // 404: the session's backend is gone (JSON-RPC body, as MCP servers answer)
    bad_gateway,          // 502: backend refused, reset, or answered garbage
    no_backend,           // 503: no healthy backend for a new session
    gateway_timeout,      // 504: backend response head not within response_timeout
    shutting_down,        // 503: turnout is draining and takes no new exchanges
    // edge protection (edge/)
    origin_not_allowed,   // 403: an Origin that is neither the request's own nor allowed (DNS rebinding)
    host_not_allowed,     // 421: a Host outside [[listen]] allowed_hosts
    rate_limited,         // 429: the client's rate_limit bucket is empty (with Retry-After)
    too_many_streams,     // 429: the client has max_streams_per_client streams open
    header_mismatch,      // 400: Mcp-Method/Mcp-Name disagree with the JSON-RPC body (JSON-RPC body)
};

const boost::system::error_category& proxy_error_category() noexcept;

inline boost::system::error_code make_error_code(proxy_error e) noexcept
{
    return {static_cast<int>(e), proxy_error_category()};
}

/// The HTTP status turnout answers with for e.
unsigned status_of(proxy_error e) noexcept;

/// The standard reason phrase of an HTTP status ("Bad Gateway"); "Unknown" if none.
std::string_view reason_phrase(unsigned status) noexcept;

} // namespace turnout::http

template <>
struct boost::system::is_error_code_enum<turnout::http::proxy_error> : std::true_type {};
