#pragma once
// Chooses where a new session goes: a pool by weight, then a backend in it by
// power-of-two-choices on requests in flight. One balancer per worker (its random state is
// not shared), reading only the snapshot and relaxed counters: no locks.

#include "turnout/runtime/snapshot.hpp"

#include <cstdint>
#include <optional>
#include <span>

namespace turnout::upstream {

struct pick {
    std::size_t pool = 0;
    std::shared_ptr<backend> target;
};

class balancer {
public:
    explicit balancer(std::uint64_t seed);

    /// A pool drawn by weight, then an available backend not in exclude. When the drawn pool
    /// has none, the other pools with weight > 0 are tried, heaviest first. nullopt when no
    /// pool with weight > 0 has an available backend.
    std::optional<pick> choose(const runtime::upstream_state& u,
                               std::span<const backend* const> exclude);

    /// Power of two choices among the available backends of p not in exclude.
    std::shared_ptr<backend> choose_backend(const runtime::pool& p,
                                            std::span<const backend* const> exclude);

private:
    std::uint64_t next() noexcept;
    std::optional<std::size_t> draw_pool(const runtime::upstream_state& u) noexcept;

    std::uint64_t state_;
};

} // namespace turnout::upstream
