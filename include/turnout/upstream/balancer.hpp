#pragma once
// Chooses where a new session goes: a pool by weight, then a backend in it by
// power-of-two-choices on requests in flight. One balancer per worker (its random state is
// not shared), reading only the snapshot and relaxed counters: no locks.

#include "turnout/runtime/snapshot.hpp"

#include <cstdint>
#include <optional>
#include <span>
#include <string_view>

namespace turnout::upstream {

struct pick {
    std::size_t pool = 0;
    std::shared_ptr<backend> target;
};

/// The backend an unknown session id maps to: rendezvous (highest random weight) hashing of
/// the id over the upstream's healthy backends, with a fixed hash (XXH3, unseeded), so every
/// turnout instance with the same backends makes the same choice, and removing one backend
/// moves only the ids that mapped to it.
std::optional<pick> rendezvous_pick(const runtime::upstream_state& u, std::string_view session_id);

/// Where backend b sits in u (pool index), for a backend chosen by other means than choose().
std::optional<pick> locate(const runtime::upstream_state& u, const backend* b);

/// The backend of u listed under address, or nullopt.
std::optional<pick> locate(const runtime::upstream_state& u, std::string_view address);

class balancer {
public:
    explicit balancer(std::uint64_t seed);

    /// A pool drawn by weight, then an available backend not in exclude. When the drawn pool
    /// has none, the other pools with weight > 0 are tried, heaviest first. nullopt when no
    /// pool with weight > 0 has an available backend. now: monotonic_ms of the caller's step
    /// (passive ejections end by it).
    std::optional<pick> choose(const runtime::upstream_state& u,
                               std::span<const backend* const> exclude, std::int64_t now);

    /// Power of two choices among the backends of p not in exclude available at now.
    std::shared_ptr<backend> choose_backend(const runtime::pool& p,
                                            std::span<const backend* const> exclude, std::int64_t now);

private:
    std::uint64_t next() noexcept;
    std::optional<std::size_t> draw_pool(const runtime::upstream_state& u) noexcept;

    std::uint64_t state_;
};

} // namespace turnout::upstream
