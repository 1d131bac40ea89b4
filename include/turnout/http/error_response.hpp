#pragma once
// The complete responses turnout writes itself: short JSON bodies a client can show as is.

#include "turnout/http/proxy_error.hpp"

#include <string>
#include <string_view>

namespace turnout::http {

/// A complete HTTP/1.1 response with a `{"error":"..."}` body. keep_alive false adds
/// `Connection: close`.
std::string make_error_response(unsigned status, std::string_view message, bool keep_alive);

/// The same for a proxy_error, with its standard message. retry_after_s > 0 adds
/// `Retry-After` (429 answers).
std::string make_error_response(proxy_error e, bool keep_alive, unsigned retry_after_s = 0);

/// A complete response with the given JSON body (e.g. the JSON-RPC "Session not found" error).
std::string make_json_response(unsigned status, std::string_view json_body, bool keep_alive,
                               unsigned retry_after_s = 0);

/// Escapes text for a JSON string literal (quotes, backslashes, control characters).
std::string json_escape(std::string_view text);

} // namespace turnout::http
