#include "turnout/edge/stream_limiter.hpp"

namespace turnout::edge {

void stream_slot::release() noexcept
{
    if (auto* owner = std::exchange(owner_, nullptr))
        owner->release(key_);
}

stream_limiter::stream_limiter() : shards_(std::make_unique<shard[]>(shard_count)) {}

stream_limiter::~stream_limiter() = default;

stream_slot stream_limiter::acquire(std::uint64_t key, std::uint32_t limit)
{
    auto& s = shard_of(key);
    const std::lock_guard guard(s.lock);
    auto& count = s.open[key];
    if (count >= limit) {
        if (count == 0)
            s.open.erase(key);
        return {};
    }
    ++count;
    return {*this, key};
}

void stream_limiter::release(std::uint64_t key) noexcept
{
    auto& s = shard_of(key);
    const std::lock_guard guard(s.lock);
    const auto it = s.open.find(key);
    if (it == s.open.end())
        return;
    if (--it->second == 0)
        s.open.erase(it);
}

std::uint32_t stream_limiter::open(std::uint64_t key) const
{
    auto& s = shard_of(key);
    const std::lock_guard guard(s.lock);
    const auto it = s.open.find(key);
    return it == s.open.end() ? 0 : it->second;
}

std::size_t stream_limiter::clients() const
{
    std::size_t n = 0;
    for (std::size_t i = 0; i < shard_count; ++i) {
        const std::lock_guard guard(shards_[i].lock);
        n += shards_[i].open.size();
    }
    return n;
}

} // namespace turnout::edge
