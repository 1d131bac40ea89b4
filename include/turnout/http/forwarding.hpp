#pragma once
// The heads turnout forwards: the request toward a backend, the response (and interim ones)
// toward a client. Hop-by-hop fields (and those a Connection field names) are dropped and
// turnout states the framing and X-Forwarded-* itself. Knows no sessions: what must be
// replaced (a session id restored from a token, a token for the client) is said by value.

#include "turnout/http/message_parser.hpp"

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace turnout::http {

struct request_forwarding {
    std::string_view client_address; // appended to X-Forwarded-For
    bool https = false;              // X-Forwarded-Proto
    bool chunked = false;            // the body goes on chunked
    /// Replaces the session id the client sent (token mode); empty: nothing replaced. In the
    /// query parameter session_param when set, otherwise in Mcp-Session-Id.
    std::string_view session_id;
    std::string_view session_param;
    /// The request's body, when it is already whole in hand (it is copied after the head, so
    /// room is reserved for it too).
    std::size_t whole_body = 0;
};

/// Writes head as forwarded to a backend into out (replacing what out held).
void write_request_head(std::string& out, const message_head& head, const request_forwarding& f);

struct response_forwarding {
    std::string_view session_id; // replaces Mcp-Session-Id (token mode); empty: as sent
    bool drop_content_length = false; // the body is rewritten: its length changes
    bool chunked = false;             // turnout frames the body chunked
    bool close = false;               // Connection: close
    bool keep_alive_http10 = false;   // an HTTP/1.0 client kept: Connection: keep-alive
    std::size_t whole_body = 0;       // as for requests
};

/// Writes a final response head as forwarded to a client (always HTTP/1.1) into out.
void write_response_head(std::string& out, const message_head& head, const response_forwarding& f);

/// Writes an interim (1xx) response head as forwarded to a client into out.
void write_interim_head(std::string& out, const message_head& head);

} // namespace turnout::http
