#pragma once
// The edge checks a request passes before it is routed, in order: Host (421) and Origin (403)
// against the listener's lists, its client's rate limit (429 with Retry-After), and for a
// request that opens an event stream, its client's open streams (429). State shared by all
// workers lives in one `edge::shared` (edge/shared.hpp); the checks are functions of it.

#include "turnout/config/config.hpp"
#include "turnout/edge/shared.hpp"
#include "turnout/http/message_parser.hpp"
#include "turnout/http/proxy_error.hpp"

#include <cstdint>
#include <optional>
#include <string_view>

namespace turnout::edge {

struct rejection {
    http::proxy_error error;
    std::uint32_t retry_after_s = 0; // rate_limited: the Retry-After value
};

/// Whether a request asks for an event stream to stay open (GET accepting text/event-stream:
/// Streamable HTTP's listening stream and the 2024-11-05 transport's stream).
bool opens_stream(const http::message_head& head) noexcept;

/// The checks, in order. listen_index separates the listeners' buckets; now_ms: monotonic.
/// A request that opens a stream under max_streams_per_client gets its slot in slot (held by
/// the exchange until it ends).
std::optional<rejection> admit(shared& edge, const config::listen_config& listen, std::size_t listen_index,
                               const http::message_head& head, bool https, std::string_view client_address,
                               std::int64_t now_ms, stream_slot& slot);

} // namespace turnout::edge
