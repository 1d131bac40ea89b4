#pragma once
// [[listen]] max_streams_per_client: open event streams per client key, counted exactly
// across workers. Streams open and close far less often than requests arrive, so a sharded
// map under a mutex per shard costs nothing that matters; an entry exists only while its
// client has a stream open, so memory follows the open streams (bounded by connections), not
// the number of clients ever seen. Keys arrive hashed, as for the rate limiter.

#include <cstdint>
#include <memory>
#include <mutex>
#include <unordered_map>
#include <utility>

namespace turnout::edge {

class stream_limiter;

/// One open stream's place in its client's count; given back when destroyed or reset (the
/// exchange that holds it ends).
class stream_slot {
public:
    stream_slot() = default;
    stream_slot(stream_limiter& owner, std::uint64_t key) noexcept : owner_(&owner), key_(key) {}
    stream_slot(stream_slot&& other) noexcept : owner_(std::exchange(other.owner_, nullptr)), key_(other.key_) {}
    stream_slot& operator=(stream_slot&& other) noexcept
    {
        if (this != &other) {
            release();
            owner_ = std::exchange(other.owner_, nullptr);
            key_ = other.key_;
        }
        return *this;
    }
    ~stream_slot() { release(); }

    explicit operator bool() const noexcept { return owner_ != nullptr; }
    void release() noexcept;

private:
    stream_limiter* owner_ = nullptr;
    std::uint64_t key_ = 0;
};

class stream_limiter {
public:
    static constexpr std::size_t shard_count = 16;

    stream_limiter();
    ~stream_limiter();

    /// A slot for one more stream of key, or an empty one when key has limit streams open.
    stream_slot acquire(std::uint64_t key, std::uint32_t limit);

    /// Streams counted for key (for tests and status).
    std::uint32_t open(std::uint64_t key) const;
    /// Clients with a stream open.
    std::size_t clients() const;

private:
    friend class stream_slot;
    void release(std::uint64_t key) noexcept;

    struct shard {
        mutable std::mutex lock;
        std::unordered_map<std::uint64_t, std::uint32_t> open;
    };
    shard& shard_of(std::uint64_t key) const noexcept { return shards_[(key >> 60) % shard_count]; }

    std::unique_ptr<shard[]> shards_;
};

} // namespace turnout::edge
