#pragma once
// What the control plane reads off a pool of the live snapshot to judge it: whether any of
// its backends can take a session, and which tools its backends announced. Shared by the
// operations (may this pool get traffic?), the status report (tool compatibility) and the
// metrics (which tool names are a pool's own).

#include "turnout/runtime/snapshot.hpp"
#include "turnout/upstream/tool_signature.hpp"

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace turnout::control {

/// A backend of p is healthy and in service.
bool has_usable_backend(const runtime::pool& p);

/// The tools of a pool, as the last successful MCP probe of each of its backends listed them.
struct pool_tools {
    bool probed = false;    // at least one backend listed its tools
    bool consistent = true; // every backend that listed tools listed the same ones
    /// The tools hash they agree on: set when probed and consistent.
    std::optional<std::uint64_t> hash;
    /// Every tool any of them announced, sorted by name, one per name (the first backend's
    /// signature where they differ): what clients of the pool may call.
    std::vector<upstream::tool_signature> tools;
};

pool_tools tools_of(const runtime::pool& p);

/// The names of the tools p's backends announced, sorted (empty before any MCP probe): the
/// values a per-tool label of the pool may take.
std::vector<std::string> pool_tool_names(const runtime::pool& p);

} // namespace turnout::control
