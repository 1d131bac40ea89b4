#pragma once
// What the control plane reads off a pool of the live snapshot to judge it: whether any of
// its backends can take a session, and which tools its backends announced. Shared by the
// operations (may this pool get traffic?) and the status report (drift).

#include "turnout/runtime/snapshot.hpp"

#include <cstdint>
#include <optional>

namespace turnout::control {

/// A backend of p is healthy and in service.
bool has_usable_backend(const runtime::pool& p);

/// The tools hash every probed backend of p agrees on; nullopt when none was probed or they
/// disagree (then disagree is set: drift inside the pool is reported apart).
std::optional<std::uint64_t> pool_tools_hash(const runtime::pool& p, bool& disagree);

} // namespace turnout::control
