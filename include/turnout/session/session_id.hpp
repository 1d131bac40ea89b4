#pragma once
// Finding, checking and rewriting MCP session ids in requests and SSE streams.

#include "turnout/http/event_stream.hpp"

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace turnout::session {

/// SPEC: visible ASCII (0x21–0x7E), 1 to 256 bytes.
bool is_valid_session_id(std::string_view id) noexcept;

/// The legacy HTTP+SSE session id of a target: `sessionId` (TypeScript SDK) or `session_id`
/// (Python SDK). Returns the parameter's name and value.
struct located_id {
    std::string_view name;
    std::string_view value;
};
std::optional<located_id> legacy_session_id(std::string_view target) noexcept;


/// Watches the beginning of a text/event-stream body for the 2024-11-05 `endpoint` event and
/// reports its data (the POST URL). Bytes are only observed, never held back: feed() takes
/// each piece as it is forwarded. Gives up after max_scan bytes or once found.
class endpoint_scanner {
public:
    explicit endpoint_scanner(std::size_t max_scan = 4096) : max_scan_(max_scan), lines_(max_scan) {}

    /// Feeds the next bytes of the stream. Returns the endpoint event's data the first time
    /// it is complete (a line ending after `data:` within an `event: endpoint` event).
    std::optional<std::string> feed(std::string_view bytes);

    bool done() const noexcept { return done_; }

private:
    std::optional<std::string> on_line(std::string_view line);

    std::size_t max_scan_;
    http::event_stream_lines lines_;
    bool done_ = false;
    bool in_endpoint_event_ = false;
    std::string data_;
};

} // namespace turnout::session
