#include "turnout/edge/rate_limiter.hpp"

#include <algorithm>
#include <array>
#include <cmath>
#include <iterator>

namespace turnout::edge {

struct alignas(64) rate_limiter::shard {
    mutable std::mutex lock;
    std::unique_ptr<std::array<bucket, slots_per_shard>> buckets; // allocated on first use
};

rate_limiter::rate_limiter() : shards_(std::make_unique<shard[]>(shard_count)) {}

rate_limiter::~rate_limiter() = default;

rate_limiter::verdict rate_limiter::take(std::uint64_t key, std::uint32_t requests, std::int64_t per_ms,
                                         std::uint32_t burst, std::int64_t now_ms)
{
    key |= 1; // 0 marks a free slot
    const double rate = static_cast<double>(requests) / static_cast<double>(std::max<std::int64_t>(per_ms, 1));
    const double capacity = burst;
    const auto refilled = [&](const bucket& b) {
        return std::min(capacity, b.tokens + static_cast<double>(std::max<std::int64_t>(now_ms - b.last_ms, 0)) * rate);
    };

    auto& s = shards_[(key >> 58) % shard_count];
    const std::lock_guard guard(s.lock);
    if (!s.buckets)
        s.buckets = std::make_unique<std::array<bucket, slots_per_shard>>();
    auto& slots = *s.buckets;

    // The key's bucket in its probe window; else a free slot; else the most rested bucket.
    bucket* found = nullptr;
    bucket* victim = nullptr;
    double victim_tokens = -1;
    for (std::size_t i = 0; i < probe_window; ++i) {
        auto& b = slots[(key + i) % slots_per_shard];
        if (b.key == key) {
            found = &b;
            break;
        }
        const double rested = b.key == 0 ? capacity + 1 : refilled(b);
        if (rested > victim_tokens) {
            victim = &b;
            victim_tokens = rested;
        }
    }
    if (!found) {
        found = victim;
        *found = bucket{key, capacity, now_ms};
    } else {
        found->tokens = refilled(*found);
        found->last_ms = std::max(found->last_ms, now_ms);
    }
    if (found->tokens >= 1) {
        found->tokens -= 1;
        return {};
    }
    const double wait_ms = (1 - found->tokens) / rate;
    return {false, static_cast<std::uint32_t>(std::max(1.0, std::ceil(wait_ms / 1000)))};
}

std::vector<rate_limiter::bucket> rate_limiter::save() const
{
    std::vector<bucket> saved;
    for (std::size_t i = 0; i < shard_count; ++i) {
        const std::lock_guard guard(shards_[i].lock);
        if (shards_[i].buckets)
            std::copy_if(shards_[i].buckets->begin(), shards_[i].buckets->end(), std::back_inserter(saved),
                         [](const bucket& b) { return b.key != 0; });
    }
    return saved;
}

bool rate_limiter::restore(const bucket& b)
{
    if ((b.key & 1) == 0 || !std::isfinite(b.tokens) || b.tokens < 0)
        return false; // take() marks every key it stores with its low bit
    auto& s = shards_[(b.key >> 58) % shard_count];
    const std::lock_guard guard(s.lock);
    if (!s.buckets)
        s.buckets = std::make_unique<std::array<bucket, slots_per_shard>>();
    for (std::size_t i = 0; i < probe_window; ++i) {
        auto& slot = (*s.buckets)[(b.key + i) % slots_per_shard];
        if (slot.key == 0 || slot.key == b.key) {
            slot = b;
            return true;
        }
    }
    return false;
}

std::size_t rate_limiter::tracked() const
{
    std::size_t n = 0;
    for (std::size_t i = 0; i < shard_count; ++i) {
        const std::lock_guard guard(shards_[i].lock);
        if (shards_[i].buckets)
            n += std::count_if(shards_[i].buckets->begin(), shards_[i].buckets->end(),
                               [](const bucket& b) { return b.key != 0; });
    }
    return n;
}

} // namespace turnout::edge
