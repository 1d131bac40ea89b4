#pragma once
// The immutable picture of what turnout routes to: upstreams, pools with their weights, and
// backends, plus the proxy settings. Built on the control thread from a configuration and
// published by atomic swap; each exchange keeps the snapshot it started with, so a reload or
// an admin change never touches a request in flight (Envoy's thread-local config slots).

#include "turnout/config/config.hpp"
#include "turnout/routing/router.hpp"
#include "turnout/upstream/backend.hpp"

#include <spdlog/logger.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace turnout::runtime {

struct pool {
    std::string name;
    std::uint32_t weight = 0;
    std::string version;
    bool draining = false;
    std::vector<std::shared_ptr<upstream::backend>> backends;
};

struct upstream_state {
    config::upstream_config config;
    std::vector<pool> pools;

    std::uint64_t total_weight() const noexcept;
};

struct snapshot {
    std::shared_ptr<const config::configuration> config;
    std::vector<upstream_state> upstreams;
    routing::router router;
    std::shared_ptr<spdlog::logger> access_log; // null when access_log = "off"

    const config::proxy_config& proxy() const noexcept { return config->proxy; }
};

/// Builds a snapshot. Backends whose address already exists in previous are the same
/// objects (their counters and health carry over). Throws config::config_error when a
/// backend address cannot be resolved.
std::shared_ptr<snapshot> build_snapshot(std::shared_ptr<const config::configuration> config,
                                               const snapshot* previous);

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
