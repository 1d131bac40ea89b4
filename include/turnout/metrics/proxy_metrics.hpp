#pragma once
// turnout's own metrics (GET /metrics): process figures, pools and backends, rendered from a
// snapshot through metrics::exposition.

#include "turnout/edge/shared.hpp"
#include "turnout/runtime/runtime_state.hpp"
#include "turnout/runtime/snapshot.hpp"

#include <array>
#include <functional>
#include <map>
#include <vector>

#include <cstddef>
#include <cstdint>
#include <string>

namespace turnout::metrics {

/// One DNS discovery name (dns:/srv:) as the control plane last saw it.
struct discovery_figures {
    std::string name; // as written
    bool ok = true;   // the last resolution answered (else the last good set is kept)
    std::size_t addresses = 0;
    std::uint64_t queries = 0;
    std::uint64_t failures = 0;
};

/// What only the process knows, read by the caller at the moment of the scrape.
struct process_figures {
    std::int64_t uptime_s = 0;
    bool draining = false;
    std::size_t client_connections = 0;
    std::size_t client_buffers = 0;  // read buffers held, client side
    std::size_t backend_buffers = 0; // read buffers held, backend side
    std::size_t table_sessions = 0;
    const edge::counters* edge = nullptr; // requests refused at the edge; null: not rendered
    bool store_connected = true; // the runtime store ([runtime] store) answers
    const std::vector<discovery_figures>* discovery = nullptr; // null or empty: not rendered
};

/// What the control plane knows: rollouts and their verdicts, and which tools each pool
/// announced (only those names become `tool` labels; the rest count as `other`).
struct control_figures {
    const runtime::runtime_state* state = nullptr;
    const std::map<std::string, std::array<std::uint64_t, 3>, std::less<>>* verdicts = nullptr; // by runtime::verdict
    std::function<std::vector<std::string>(const runtime::pool&)> announced_tools;
};

/// The whole exposition for one scrape.
std::string render(const runtime::snapshot& s, const process_figures& process, const control_figures& control = {});

} // namespace turnout::metrics
