#pragma once
// The MCP session of one exchange, as the routing stage sees it: which id the request carried
// and where (header or legacy query parameter), how it maps to its backend, and what the
// answer taught. Part of the exchange: reset with it by one assignment, so the common case
// (table mode, no legacy stream) holds only views, keys and flags; what token mode and the
// legacy transport's endpoint event need lives apart, allocated only for them.

#include "turnout/session/session_id.hpp"
#include "turnout/session/session_table.hpp"

#include <memory>
#include <optional>
#include <string>
#include <string_view>

namespace turnout::routing {

enum class session_source { none, header, query };

/// Token mode and the 2024-11-05 transport's stream: ids to restore or hand out, and the
/// endpoint event being watched or rewritten.
struct session_rewrite {
    std::string backend_id; // token mode: the id the backend knows (from the token)
    std::string to_client;  // token mode: the token that replaces the backend's Mcp-Session-Id
    /// 2024-11-05 transport: the stream announces its session in its `endpoint` event.
    std::optional<session::endpoint_scanner> endpoint_scanner;
    /// Token mode, legacy transport: the endpoint event's URL must carry a token instead of
    /// the backend's id, so the stream's first bytes are held (at most the scanner's limit)
    /// until that event is complete, then released rewritten.
    bool rewrite_endpoint = false;
    std::string held;
};

struct session_binding {
    session_source source = session_source::none;
    std::string_view param;     // the query parameter naming it (legacy transport)
    std::string_view client_id; // as the client sent it (token mode: the token); a view into the request head
    session::session_key key;   // table mode: the table's key of client_id
    bool known = false;         // the table knew it
    bool stream_counted = false; // an open stream of stream_key is counted in the table
    session::session_key stream_key;
    std::unique_ptr<session_rewrite> rewrite; // null unless token mode or a legacy stream needs it

    bool present() const noexcept { return source != session_source::none; }
    session_rewrite& rewriting()
    {
        if (!rewrite)
            rewrite = std::make_unique<session_rewrite>();
        return *rewrite;
    }
    /// The id toward the backend differs from the client's (token mode).
    bool restores_id() const noexcept
    {
        return rewrite && !rewrite->backend_id.empty() && rewrite->backend_id != client_id;
    }
    std::string_view id_for_backend() const noexcept
    {
        return rewrite && !rewrite->backend_id.empty() ? std::string_view(rewrite->backend_id) : client_id;
    }
    /// Token mode: the token for the client's Mcp-Session-Id; empty: the backend's id as it is.
    std::string_view to_client() const noexcept { return rewrite ? std::string_view(rewrite->to_client) : std::string_view{}; }
    bool scanning_endpoint() const noexcept { return rewrite && rewrite->endpoint_scanner.has_value(); }
    bool rewriting_endpoint() const noexcept { return rewrite && rewrite->rewrite_endpoint; }
};

} // namespace turnout::routing
