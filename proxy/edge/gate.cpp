#include "turnout/edge/gate.hpp"

#include "turnout/edge/client_key.hpp"
#include "turnout/edge/origin_policy.hpp"
#include "turnout/http/headers.hpp"

#include <chrono>

namespace turnout::edge {
namespace {

void count(std::atomic<std::uint64_t>& c) noexcept { c.fetch_add(1, std::memory_order_relaxed); }

// The limits' key: rate_limit's, else the address. A header key the request lacks falls back
// to the address, or leaving the header out would escape the limit.
std::uint64_t limit_key(const shared& edge, const config::listen_config& listen, std::size_t listen_index,
                        const http::message_head& head, std::string_view client_address) noexcept
{
    std::optional<std::string_view> key;
    if (listen.rate_limit)
        key = client_key_of(listen.rate_limit->key, head, client_address);
    return hash_client_key(key.value_or(client_address), edge.seed + listen_index);
}

} // namespace

bool opens_stream(const http::message_head& head) noexcept
{
    if (head.method() != "GET")
        return false;
    const auto accept = head.find("accept");
    if (!accept)
        return false;
    bool stream = false;
    http::for_each_token(*accept, [&](std::string_view item) {
        stream = stream || http::starts_with_lowercase(item, "text/event-stream");
    });
    return stream;
}

std::optional<rejection> admit(shared& edge, const config::listen_config& listen, std::size_t listen_index,
                               const http::message_head& head, bool https, std::string_view client_address,
                               std::int64_t now_ms, stream_slot& slot)
{
    if (const auto refused = check_origin(listen, head, https)) {
        count(*refused == http::proxy_error::host_not_allowed ? edge.counted.host_rejected : edge.counted.origin_rejected);
        return rejection{*refused};
    }
    const bool limit_streams = listen.max_streams_per_client > 0 && opens_stream(head);
    if (!listen.rate_limit && !limit_streams)
        return std::nullopt;

    const auto key = limit_key(edge, listen, listen_index, head, client_address);
    if (const auto& limit = listen.rate_limit) {
        const auto per_ms = std::chrono::duration_cast<std::chrono::milliseconds>(limit->per).count();
        const auto verdict = edge.rates.take(key, limit->requests, per_ms, limit->burst, now_ms);
        if (!verdict.allowed) {
            count(edge.counted.rate_limited);
            return rejection{http::proxy_error::rate_limited, verdict.retry_after_s};
        }
    }
    if (limit_streams) {
        slot = edge.streams.acquire(key, listen.max_streams_per_client);
        if (!slot) {
            count(edge.counted.streams_limited);
            return rejection{http::proxy_error::too_many_streams};
        }
    }
    return std::nullopt;
}

} // namespace turnout::edge
