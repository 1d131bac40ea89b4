#pragma once
// Read buffers of one side of the proxy (client or backend), recycled by one worker (its
// thread only). Two size classes: a message starts in a small buffer, which is enough for
// a head and a JSON-RPC body; a body that keeps filling it continues in a large one. So an
// exchange waiting for its answer holds the small size, not the large one.

#include "turnout/net/io_buffer.hpp"

#include <atomic>
#include <cstddef>
#include <memory>
#include <vector>

namespace turnout::net {

class buffer_cache {
public:
    /// Free buffers kept per size class for the next burst; beyond that, memory goes back to
    /// the allocator.
    static constexpr std::size_t keep = 64;

    buffer_cache(std::size_t small_size, std::size_t large_size) noexcept
        : small_{small_size, {}}, large_{large_size, {}}
    {}

    std::size_t small_size() const noexcept { return small_.size; }
    std::size_t large_size() const noexcept { return large_.size; }

    /// Gives b (which holds no storage) a buffer of the given class.
    void lend_small(io_buffer& b) { lend(b, small_); }
    void lend_large(io_buffer& b) { lend(b, large_); }
    /// Gives b (which holds no storage) a buffer of its own of capacity bytes (a request body
    /// held whole before routing); counted as held, and freed, not kept, when taken back.
    void lend_sized(io_buffer& b, std::size_t capacity);

    /// Takes back b's storage if nothing unread is in it; whether it did.
    bool reclaim(io_buffer& b);
    /// Takes back b's storage whatever it holds (its connection is going away).
    void reclaim_all(io_buffer& b);

    /// Free buffers waiting in the cache (the worker's thread only).
    std::size_t kept() const noexcept { return small_.free.size() + large_.free.size(); }

    /// Buffers lent and not taken back: held by connections. Readable from any thread.
    std::size_t held() const noexcept { return held_.load(std::memory_order_relaxed); }

private:
    struct size_class {
        std::size_t size;
        std::vector<std::unique_ptr<char[]>> free;
    };

    void lend(io_buffer& b, size_class& c);
    void give(std::unique_ptr<char[]> storage, std::size_t capacity);

    size_class small_;
    size_class large_;
    std::atomic<std::size_t> held_{0};
};

} // namespace turnout::net
