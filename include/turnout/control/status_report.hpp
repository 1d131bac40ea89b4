#pragma once
// SPEC.md's status document (GET /v1/status, `turnoutctl status`), read off the live snapshot,
// the runtime state in force and what only the process knows.

#include "turnout/runtime/runtime_state.hpp"
#include "turnout/runtime/snapshot.hpp"

#include <boost/json/object.hpp>

#include <cstddef>
#include <cstdint>

namespace turnout::control {

struct process_facts {
    std::int64_t uptime_s = 0;
    std::int64_t pid = 0;
    bool draining = false;
    std::size_t connections = 0;
    std::size_t table_sessions = 0;
};

/// One upstream: its pools, backends, health, counts and drift (the body of a change's answer).
boost::json::object upstream_status(const runtime::upstream_state& u, const runtime::runtime_state& state);

/// The whole document.
boost::json::object status_report(const runtime::snapshot& s, const runtime::runtime_state& state,
                                  const process_facts& process);

} // namespace turnout::control
