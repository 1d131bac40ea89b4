#pragma once
// The immutable picture of what turnout routes to: upstreams, pools with their weights, and
// backends, plus the proxy settings. Built on the control thread from a configuration and
// published by atomic swap; each exchange keeps the snapshot it started with, so a reload or
// an admin change never touches a request in flight (Envoy's thread-local config slots).

#include "turnout/config/config.hpp"
#include "turnout/log/access_line.hpp"
#include "turnout/runtime/discovered.hpp"
#include "turnout/runtime/runtime_state.hpp"
#include "turnout/routing/router.hpp"
#include "turnout/session/token_codec.hpp"
#include "turnout/upstream/backend_registry.hpp"

#include <spdlog/logger.h>

#include <boost/asio/ip/tcp.hpp>
#include <boost/system/error_code.hpp>

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace turnout::net {
class tls_server_context;
class tls_client_context;
} // namespace turnout::net

namespace turnout::runtime {

/// A backend of a pool drained by an operator (runtime::backend_drain, for a backend the pool
/// lists). The data plane reads it off the backend (draining, retired: mark_in_service).
struct drained_backend {
    std::string address;
    std::int64_t deadline_ms = 0;
    bool expired = false; // the grace is over: its sessions answer 404
};

struct pool {
    std::string name;
    std::uint32_t weight = 0;
    std::string version;
    bool backup = false; // takes new sessions only when no other weighted pool can
    bool draining = false;
    bool drain_expired = false; // the drain's grace is over: its sessions answer 404
    std::optional<std::int64_t> drain_deadline_ms;
    std::vector<std::shared_ptr<upstream::backend>> backends;
    std::shared_ptr<net::tls_client_context> tls; // null: plain TCP to the backends
    std::vector<drained_backend> drained_backends;

    /// b's drain in this pool, or null.
    const drained_backend* drain_of(const upstream::backend& b) const noexcept;
};

struct upstream_state {
    config::upstream_config config;
    std::vector<pool> pools;
    std::shared_ptr<const session::token_codec> tokens; // affinity = "token" only

    std::uint64_t total_weight() const noexcept;
    /// The pool named name, or null.
    const pool* find(std::string_view name) const noexcept;
};

struct snapshot {
    std::shared_ptr<const config::configuration> config;
    std::vector<upstream_state> upstreams;
    routing::router router;
    std::shared_ptr<spdlog::logger> access_log; // null when access_log = "off"
    log::access_format access_format = log::access_format::turnout;
    /// Per [[listen]] (same order as the configuration's): its TLS context, null for plain.
    /// A reload swaps them; a connection keeps the one it was accepted with.
    std::vector<std::shared_ptr<net::tls_server_context>> listen_tls;

    const config::proxy_config& proxy() const noexcept { return config->proxy; }
    /// The upstream named name, or null.
    const upstream_state* find(std::string_view name) const noexcept;
};

/// Turns a backend address the registry does not know yet into an endpoint; sets ec when it
/// cannot. The caller's (net::resolve on the control plane): a snapshot is built from what
/// the caller resolved, and the state knows no sockets.
using resolver =
    std::function<boost::asio::ip::tcp::endpoint(const config::host_port&, boost::system::error_code&)>;

/// Builds a snapshot. Backends come from the registry, so an address keeps the same object
/// (counters, health, sessions) across snapshots; an address seen for the first time is
/// resolved by resolve. Throws config::config_error when a backend address cannot be resolved
/// or a key file cannot be read.
std::shared_ptr<snapshot> build_snapshot(std::shared_ptr<const config::configuration> config,
                                         upstream::backend_registry& registry, const resolver& resolve);

/// The same, with the runtime state (weights, drains, backend sets) applied over the
/// configuration; now_ms (Unix time) decides which drains have expired. found: what DNS
/// discovery resolved for the pools' dns:/srv: names (null or absent name: none yet); an
/// address that left its name is listed drained until its deadline.
std::shared_ptr<snapshot> build_snapshot(std::shared_ptr<const config::configuration> config,
                                         const runtime_state& state, std::int64_t now_ms,
                                         upstream::backend_registry& registry, const resolver& resolve,
                                         const discovered_sets* found = nullptr);

/// Marks every registered backend in or out of service according to s, and draining or
/// retired by the drains of its pools (control thread, before publishing s). A backend drained
/// in one pool is draining everywhere: a drain takes a process out for maintenance.
void mark_in_service(const snapshot& s, upstream::backend_registry& registry);

/// Where workers find the current snapshot. publish() is for the control thread; workers
/// compare version() with the one they cached and load() only when it changed, so the
/// request path costs one relaxed atomic load.
class snapshot_source {
public:
    void publish(std::shared_ptr<const snapshot> s);
    std::shared_ptr<const snapshot> load() const { return current_.load(std::memory_order_acquire); }
    std::uint64_t version() const noexcept { return version_.load(std::memory_order_acquire); }

private:
    std::atomic<std::shared_ptr<const snapshot>> current_;
    std::atomic<std::uint64_t> version_{0};
};

} // namespace turnout::runtime
