#pragma once
// turnout's own metrics (GET /metrics): process figures, pools and backends, rendered from a
// snapshot through metrics::exposition.

#include "turnout/runtime/snapshot.hpp"

#include <cstddef>
#include <cstdint>
#include <string>

namespace turnout::metrics {

/// What only the process knows, read by the caller at the moment of the scrape.
struct process_figures {
    std::int64_t uptime_s = 0;
    bool draining = false;
    std::size_t client_connections = 0;
    std::size_t client_buffers = 0;  // read buffers held, client side
    std::size_t backend_buffers = 0; // read buffers held, backend side
    std::size_t table_sessions = 0;
};

/// The whole exposition for one scrape.
std::string render(const runtime::snapshot& s, const process_figures& process);

} // namespace turnout::metrics
