#pragma once
// Active health checks (SPEC.md [upstream.health]): each backend of an upstream with checks is
// probed every `interval` with a deadline of `timeout`, from the control thread with a Beast
// client — never on the request path. `kind = "http"`: GET path answers 2xx. `kind = "mcp"`:
// initialize (protocolVersion verified) → notifications/initialized → tools/list (non-empty,
// its tools hashed for drift) → DELETE of the probe session. `fall` failed probes in a row
// mark a backend unhealthy (no new sessions; its pinned sessions keep being forwarded),
// `rise` passed ones healthy again.

#include "turnout/config/config.hpp"
#include "turnout/runtime/shared_state.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>

namespace turnout::net {
class tls_client_context;
} // namespace turnout::net

namespace turnout::health {

struct probe_result {
    bool ok = false;
    std::string error;                      // why it failed (one short sentence)
    std::chrono::microseconds latency{0};   // whole probe
    std::optional<std::uint64_t> tools_hash; // mcp: hash of the sorted tool names + input schemas
};

/// Runs one probe of endpoint (host_header is sent as Host) and calls done exactly once, on io.
/// With tls, the probe speaks TLS, verified as the pool's connections are.
void probe(boost::asio::io_context& io, const boost::asio::ip::tcp::endpoint& endpoint, std::string host_header,
           const config::health_config& check, std::function<void(probe_result)> done,
           std::shared_ptr<net::tls_client_context> tls = nullptr);

/// Hash of a tools/list result's tools: names sorted, each with its inputSchema serialized
/// canonically (object keys sorted). Order of tools and of keys does not matter.
std::uint64_t hash_tools(std::string_view tools_list_result_json);

class health_checker {
public:
    health_checker(boost::asio::io_context& control, runtime::shared_state& shared);
    ~health_checker();

    /// Follows a newly published snapshot: starts probing backends of upstreams with
    /// [upstream.health], stops probing those no longer listed there. Call on the control
    /// thread after each publication.
    void update(const runtime::snapshot& s);

    /// Stops every probe loop (shutdown).
    void stop();

private:
    struct impl;
    std::shared_ptr<impl> impl_;
};

} // namespace turnout::health
