#include "turnout/upstream/balancer.hpp"

#include <xxhash.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <numeric>
#include <vector>

namespace turnout::upstream {
namespace {

bool excluded(const backend* b, std::span<const backend* const> exclude) noexcept
{
    return std::find(exclude.begin(), exclude.end(), b) != exclude.end();
}

bool eligible(const backend& b, std::span<const backend* const> exclude, std::int64_t now) noexcept
{
    return b.available(now) && !excluded(&b, exclude);
}

std::int64_t load_of(const backend& b) noexcept
{
    return b.counters().in_flight.load(std::memory_order_relaxed);
}

} // namespace

balancer::balancer(std::uint64_t seed) : state_(seed ? seed : 0x9E3779B97F4A7C15ull) {}

std::uint64_t balancer::next() noexcept
{
    // xorshift64*: fast, good enough to spread sessions, and per worker.
    state_ ^= state_ >> 12;
    state_ ^= state_ << 25;
    state_ ^= state_ >> 27;
    return state_ * 0x2545F4914F6CDD1Dull;
}

std::optional<std::size_t> balancer::draw_pool(const runtime::upstream_state& u) noexcept
{
    std::uint64_t total = 0;
    for (const auto& p : u.pools)
        total += p.backup ? 0 : p.weight;
    if (total == 0)
        return std::nullopt;
    auto ticket = next() % total;
    for (std::size_t i = 0; i < u.pools.size(); ++i) {
        if (u.pools[i].backup)
            continue;
        if (ticket < u.pools[i].weight)
            return i;
        ticket -= u.pools[i].weight;
    }
    return std::nullopt;
}

std::optional<pick> balancer::choose_backup(const runtime::upstream_state& u,
                                            std::span<const backend* const> exclude, std::int64_t now)
{
    // Heaviest first, then in configuration order: a handful of pools, no allocation.
    std::optional<pick> best;
    std::uint32_t best_weight = 0;
    for (std::size_t i = 0; i < u.pools.size(); ++i) {
        const auto& p = u.pools[i];
        if (!p.backup || (best && p.weight <= best_weight))
            continue;
        if (auto b = choose_backend(p, exclude, now)) {
            best = pick{i, std::move(b)};
            best_weight = p.weight;
        }
    }
    return best;
}

std::shared_ptr<backend> balancer::choose_backend(const runtime::pool& p,
                                                  std::span<const backend* const> exclude, std::int64_t now)
{
    if (p.draining)
        return nullptr;
    std::size_t candidates = 0;
    for (const auto& b : p.backends)
        candidates += eligible(*b, exclude, now);
    if (candidates == 0)
        return nullptr;

    auto nth_eligible = [&](std::size_t n) -> const std::shared_ptr<backend>& {
        for (const auto& b : p.backends)
            if (eligible(*b, exclude, now) && n-- == 0)
                return b;
        return p.backends.front(); // unreachable: n < candidates
    };
    const auto& first = nth_eligible(next() % candidates);
    if (candidates == 1)
        return first;
    // A second, distinct candidate; the less loaded of the two wins.
    const auto offset = 1 + next() % (candidates - 1);
    std::size_t first_index = 0;
    for (const auto& b : p.backends) {
        if (&b == &first)
            break;
        first_index += eligible(*b, exclude, now);
    }
    const auto& second = nth_eligible((first_index + offset) % candidates);
    return load_of(*second) < load_of(*first) ? second : first;
}

std::optional<pick> balancer::choose(const runtime::upstream_state& u,
                                     std::span<const backend* const> exclude, std::int64_t now)
{
    if (const auto drawn = draw_pool(u)) {
        if (auto b = choose_backend(u.pools[*drawn], exclude, now))
            return pick{*drawn, std::move(b)};
    }
    // The drawn pool cannot take it: fall back to the other weighted pools, heaviest first.
    std::vector<std::size_t> order(u.pools.size());
    std::iota(order.begin(), order.end(), std::size_t{0});
    std::stable_sort(order.begin(), order.end(),
                     [&](auto a, auto b) { return u.pools[a].weight > u.pools[b].weight; });
    for (const auto i : order) {
        if (u.pools[i].weight == 0)
            break;
        if (u.pools[i].backup)
            continue;
        if (auto b = choose_backend(u.pools[i], exclude, now))
            return pick{i, std::move(b)};
    }
    return choose_backup(u, exclude, now); // no primary can take it
}

std::size_t sticky_pool_order(const runtime::upstream_state& u, std::uint64_t client_hash,
                              std::span<std::size_t, max_sticky_pools> order) noexcept
{
    std::array<double, max_sticky_pools> score{};
    std::size_t n = 0;
    for (std::size_t i = 0; i < u.pools.size() && n < max_sticky_pools; ++i) {
        const auto& p = u.pools[i];
        if (p.weight == 0 || p.backup)
            continue;
        const auto h = XXH3_64bits_withSeed(p.name.data(), p.name.size(), client_hash);
        const double unit = (static_cast<double>(h >> 11) + 0.5) * 0x1.0p-53; // in (0, 1)
        score[n] = static_cast<double>(p.weight) / -std::log(unit);
        order[n++] = i;
    }
    // Insertion sort, highest score first: a handful of pools.
    for (std::size_t i = 1; i < n; ++i)
        for (std::size_t j = i; j > 0 && score[j] > score[j - 1]; --j) {
            std::swap(score[j], score[j - 1]);
            std::swap(order[j], order[j - 1]);
        }
    return n;
}

std::optional<pick> balancer::choose_sticky(const runtime::upstream_state& u, std::uint64_t client_hash,
                                            std::span<const backend* const> exclude, std::int64_t now)
{
    std::array<std::size_t, max_sticky_pools> order;
    const auto n = sticky_pool_order(u, client_hash, order);
    for (std::size_t k = 0; k < n; ++k)
        if (auto b = choose_backend(u.pools[order[k]], exclude, now))
            return pick{order[k], std::move(b)};
    return choose_backup(u, exclude, now);
}

std::optional<pick> rendezvous_pick(const runtime::upstream_state& u, std::string_view session_id)
{
    // Backup pools take part only when no other pool has a healthy backend, as for new sessions.
    if (auto primary = rendezvous_pick(u, session_id, false))
        return primary;
    return rendezvous_pick(u, session_id, true);
}

std::optional<pick> rendezvous_pick(const runtime::upstream_state& u, std::string_view session_id, bool backup)
{
    std::optional<pick> best;
    std::uint64_t best_score = 0;
    for (std::size_t i = 0; i < u.pools.size(); ++i)
        for (const auto& b : u.pools[i].backends) {
            if (u.pools[i].backup != backup)
                continue;
            // Draining (with grace left) stays in: every instance must agree, and draining
            // is an operator's per-instance action. An expired drain (of its pool, or of the
            // backend itself: retired) is gone for everyone.
            if (!b->healthy() || u.pools[i].drain_expired || b->retired())
                continue;
            const auto& address = b->address();
            const auto score = XXH3_64bits_withSeed(session_id.data(), session_id.size(),
                                                    XXH3_64bits(address.data(), address.size()));
            if (!best || score > best_score) {
                best = pick{i, b};
                best_score = score;
            }
        }
    return best;
}

std::optional<pick> locate(const runtime::upstream_state& u, const backend* target)
{
    for (std::size_t i = 0; i < u.pools.size(); ++i)
        for (const auto& b : u.pools[i].backends)
            if (b.get() == target)
                return pick{i, b};
    return std::nullopt;
}

std::optional<pick> locate(const runtime::upstream_state& u, std::string_view address)
{
    for (std::size_t i = 0; i < u.pools.size(); ++i)
        for (const auto& b : u.pools[i].backends)
            if (b->address() == address)
                return pick{i, b};
    return std::nullopt;
}

} // namespace turnout::upstream
