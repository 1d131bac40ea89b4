#pragma once
// A route's fixed answer (nginx's `return CODE [TEXT|URL]`), written as a complete response:
// the status, a Location for redirects, a text body, with $scheme, $host and $request_uri
// expanded from the request as nginx expands them.

#include "turnout/config/config.hpp"
#include "turnout/http/message_parser.hpp"

#include <string>
#include <string_view>

namespace turnout::routing {

/// text with $scheme ("http"/"https"), $host (the Host field without its port, lower case)
/// and $request_uri (the request target as sent) replaced; other text is kept as it is.
std::string expand_answer_variables(std::string_view text, const http::message_head& request, bool tls);

/// The complete HTTP/1.1 response (always with Connection: close: the exchange ends there).
/// A relative location ("/new") is made absolute with the request's scheme and Host, as
/// nginx's absolute_redirect does. An empty body of a 4xx/5xx is turnout's JSON error body;
/// a HEAD request gets the head alone.
std::string render_answer(const config::fixed_answer& answer, const http::message_head& request, bool tls);

} // namespace turnout::routing
