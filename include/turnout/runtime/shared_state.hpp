#pragma once
// What the workers share with the control thread: the published snapshot, the registry of
// backends, and the session table.

#include "turnout/edge/shared.hpp"
#include "turnout/runtime/snapshot.hpp"
#include "turnout/session/session_table.hpp"
#include "turnout/upstream/backend_registry.hpp"

#include <chrono>
#include <cstdint>
#include <random>

namespace turnout::runtime {

class shared_state {
public:
    explicit shared_state(std::uint64_t session_seed)
        : sessions(session_seed, [this](session::backend_id id, int delta) {
              if (auto* b = backends.get(id))
                  b->counters().sessions.fetch_add(delta, std::memory_order_relaxed);
          })
    {}
    shared_state(const shared_state&) = delete;
    shared_state& operator=(const shared_state&) = delete;

    /// The session table's clock: seconds since this process started, offset so that a
    /// restored session's age (up to ~190 days) can be subtracted without wrapping.
    std::uint32_t now_s() const noexcept
    {
        const auto up = std::chrono::steady_clock::now() - started_;
        return clock_offset + static_cast<std::uint32_t>(std::chrono::duration_cast<std::chrono::seconds>(up).count());
    }
    static constexpr std::uint32_t clock_offset = 1u << 24;

    snapshot_source snapshots;
    upstream::backend_registry backends;
    session::session_table sessions; // after backends: its hook reads them
    /// Rate limits, stream counts and refusal counters of the edge checks; client keys are
    /// hashed under a seed of this process alone (they are never saved).
    edge::shared edge{(std::uint64_t{std::random_device{}()} << 32) ^ std::random_device{}()};

private:
    std::chrono::steady_clock::time_point started_ = std::chrono::steady_clock::now();
};

} // namespace turnout::runtime
