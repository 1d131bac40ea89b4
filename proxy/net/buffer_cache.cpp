#include "turnout/net/buffer_cache.hpp"

namespace turnout::net {

void buffer_cache::lend(io_buffer& b, size_class& c)
{
    held_.fetch_add(1, std::memory_order_relaxed);
    if (c.free.empty()) {
        b.attach(std::make_unique_for_overwrite<char[]>(c.size), c.size);
        return;
    }
    b.attach(std::move(c.free.back()), c.size);
    c.free.pop_back();
}

void buffer_cache::lend_sized(io_buffer& b, std::size_t capacity)
{
    held_.fetch_add(1, std::memory_order_relaxed);
    b.attach(std::make_unique_for_overwrite<char[]>(capacity), capacity);
}

bool buffer_cache::reclaim(io_buffer& b)
{
    const auto capacity = b.capacity();
    auto storage = b.detach();
    if (!storage)
        return false;
    give(std::move(storage), capacity);
    return true;
}

void buffer_cache::reclaim_all(io_buffer& b)
{
    const auto capacity = b.capacity();
    if (auto storage = b.release())
        give(std::move(storage), capacity);
}

void buffer_cache::give(std::unique_ptr<char[]> storage, std::size_t capacity)
{
    held_.fetch_sub(1, std::memory_order_relaxed);
    // The small class first: with equal sizes (a side that never grows) it is the one used.
    // A buffer of another size (lend_sized) goes back to the allocator.
    if (capacity != small_.size && capacity != large_.size)
        return;
    auto& c = capacity == small_.size ? small_ : large_;
    if (c.free.size() < keep)
        c.free.push_back(std::move(storage));
}

} // namespace turnout::net
