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
/// Backup pools take part only when no other pool has a healthy backend.
std::optional<pick> rendezvous_pick(const runtime::upstream_state& u, std::string_view session_id);
/// The same over the backup pools only (backup) or the others only.
std::optional<pick> rendezvous_pick(const runtime::upstream_state& u, std::string_view session_id, bool backup);

/// Where backend b sits in u (pool index), for a backend chosen by other means than choose().
std::optional<pick> locate(const runtime::upstream_state& u, const backend* b);

/// The backend of u listed under address, or nullopt.
std::optional<pick> locate(const runtime::upstream_state& u, std::string_view address);

/// The pools of u with weight > 0 (backup pools left out) in a client's order of preference: weighted rendezvous
/// hashing (each pool scores w / -ln(h), h a hash of the client and the pool's name in (0,1),
/// the highest score first). A pool's first-place share is its weight over the total, and a
/// weight change moves only the clients it must: raising one pool's weight raises only its
/// scores, so its clients stay and the others move to it alone, about in proportion to the
/// share it gained (no other client changes pool). Pools are keyed by name, not position, and
/// the hash is fixed, so every turnout instance (and a restarted one) agrees.
/// At most max_sticky_pools pools take part.
constexpr std::size_t max_sticky_pools = 32;
std::size_t sticky_pool_order(const runtime::upstream_state& u, std::uint64_t client_hash,
                              std::span<std::size_t, max_sticky_pools> order) noexcept;

class balancer {
public:
    explicit balancer(std::uint64_t seed);

    /// A pool drawn by weight, then an available backend not in exclude. When the drawn pool
    /// has none, the other pools with weight > 0 are tried, heaviest first; when none of them
    /// has one either, the backup pools (whatever their weight; heaviest first). Backup pools
    /// are never drawn by weight. nullopt when no pool can take it. now: monotonic_ms of the
    /// caller's step (passive ejections end by it).
    std::optional<pick> choose(const runtime::upstream_state& u,
                               std::span<const backend* const> exclude, std::int64_t now);

    /// The same for a client known by client_key (its hash): the pool is the one
    /// sticky_pool_order puts first that has an available backend, so a client stays on one
    /// pool (one version) while the weights let it, then a backend in it as above; the backup
    /// pools when no weighted pool has one.
    std::optional<pick> choose_sticky(const runtime::upstream_state& u, std::uint64_t client_hash,
                                      std::span<const backend* const> exclude, std::int64_t now);

    /// Power of two choices among the backends of p not in exclude available at now.
    std::shared_ptr<backend> choose_backend(const runtime::pool& p,
                                            std::span<const backend* const> exclude, std::int64_t now);

private:
    std::uint64_t next() noexcept;
    std::optional<pick> choose_backup(const runtime::upstream_state& u, std::span<const backend* const> exclude,
                                      std::int64_t now);
    std::optional<std::size_t> draw_pool(const runtime::upstream_state& u) noexcept;

    std::uint64_t state_;
};

} // namespace turnout::upstream
