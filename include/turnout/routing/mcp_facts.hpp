#pragma once
// The MCP facts a request is routed on: its JSON-RPC method and the tool/prompt name or
// resource URI, from the 2026-07-28 routing headers (Mcp-Method, Mcp-Name) or, where a
// request has none (2025 clients), from its JSON-RPC body, read whole before routing when it
// is at most max_inspect_bytes long (a chunked body: its payload, read in place between the
// framing). Where both are present they must agree (SEP-2243: an
// intermediary routes on the headers while the server executes the body, so a disagreement
// is refused): 400 with a JSON-RPC error -32001 "Header mismatch: ...".
//
// Batches and notifications (MCP removed JSON-RPC batching in 2025-06-18; the headers describe
// one message): a batch has no facts of its own and routes on path and host, and one that
// comes with Mcp-Method is a mismatch. A notification (no id) is routed like a request, and a
// mismatch in one is answered with "id": null.

#include "turnout/http/message_parser.hpp"
#include "turnout/mcp/jsonrpc_inspector.hpp"
#include "turnout/mcp/rpc_watch.hpp"
#include "turnout/routing/router.hpp"

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace turnout::routing {

struct mcp_facts {
    std::string_view method;
    std::string_view name;
};

/// The body length to read before routing this request, or nullopt to route on headers and
/// path alone: nothing routes on MCP facts; the request belongs to a session (pinned sessions
/// go to their owner whatever the route says); not a POST with a Content-Length from 1 to
/// max_inspect_bytes or a chunked body (larger ones are not held back). For a chunked body it
/// is the most its framed bytes are held to (chunked_hold_limit).
std::optional<std::size_t> body_to_inspect(const router& r, const http::message_head& head,
                                           std::optional<std::uint64_t> content_length, bool chunked,
                                           std::size_t max_inspect_bytes) noexcept;

/// The facts of the routing headers alone.
mcp_facts header_facts(const http::message_head& head) noexcept;

/// What a request's body says, checked against its headers.
struct body_facts {
    mcp_facts facts;        // views into the head or into the inspector's facts
    std::string mismatch;   // empty when headers and body agree; else the complete 400 answer
};

/// Reads body (whole) with inspector (which must outlive the returned views).
body_facts inspect_body(const http::message_head& head, std::string_view body, mcp::request_inspector& inspector);

/// The most a chunked body's framed bytes are held before routing: its payload may be
/// max_inspect_bytes, and its framing (sizes, extensions, trailers) takes room of its own.
std::size_t chunked_hold_limit(std::size_t max_inspect_bytes) noexcept;

/// Where the inspection of a chunked body stands, given the bytes after the head so far.
struct chunked_inspection {
    bool route = false;   // route now: on result.facts (empty facts: on host and path alone)
    std::size_t hold = 0; // !route: the bytes (from the body's start) to be able to hold
    body_facts result;
};

/// Reads the payload of a chunked body in place when it is whole and at most max_inspect_bytes
/// (its framing held to chunked_hold_limit); one that is longer, malformed, or framed past the
/// hold limit routes on host and path, and the message parser then judges its framing. The
/// payload goes to watch's request inspector when it fits that one's limit (it is then not
/// read again on its way out), else to longer, which must outlive the returned views.
chunked_inspection inspect_chunked_body(const http::message_head& head, std::string_view framed,
                                        std::size_t max_inspect_bytes, mcp::rpc_watch& watch,
                                        std::optional<mcp::request_inspector>& longer);

} // namespace turnout::routing
