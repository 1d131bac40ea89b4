#pragma once
// One health probe of one backend, with a Beast client on the control thread.
// `kind = "http"`: GET path answers 2xx. `kind = "mcp"`: initialize (protocolVersion
// verified) → notifications/initialized → tools/list (non-empty, its tools hashed for drift)
// → DELETE of the probe session.

#include "turnout/config/config.hpp"
#include "turnout/upstream/tool_signature.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace turnout::net {
class tls_client_context;
} // namespace turnout::net

namespace turnout::health {

struct probe_result {
    bool ok = false;
    std::string error;                      // why it failed (one short sentence)
    std::chrono::microseconds latency{0};   // whole probe
    std::optional<std::uint64_t> tools_hash; // mcp: hash of the sorted tool names + input schemas
    std::vector<upstream::tool_signature> tools; // mcp: each tool, sorted by name (see tool_signatures)
};

/// Runs one probe of endpoint (host_header is sent as Host) and calls done exactly once, on io.
/// With tls, the probe speaks TLS, verified as the pool's connections are.
void probe(boost::asio::io_context& io, const boost::asio::ip::tcp::endpoint& endpoint, std::string host_header,
           const config::health_config& check, std::function<void(probe_result)> done,
           std::shared_ptr<net::tls_client_context> tls = nullptr);

/// Hash of a tools/list result's tools: names sorted, each with its inputSchema serialized
/// canonically (object keys sorted). Order of tools and of keys does not matter.
std::uint64_t hash_tools(std::string_view tools_list_result_json);

/// Each tool of a tools/list result with the hash of its canonical input schema, sorted by
/// name; a tool without a string name cannot be called and is left out, and of two tools with
/// one name the first in sorted order stands. Empty when the text holds no tools array.
std::vector<upstream::tool_signature> tool_signatures(std::string_view tools_list_result_json);

} // namespace turnout::health
