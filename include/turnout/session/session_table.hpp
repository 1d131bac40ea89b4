#pragma once
// Which backend owns each live MCP session. The only shared mutable structure on the request
// path: keyed by the 128-bit XXH3 hash (seeded per process) of the session id, so entries are
// fixed-size (24 bytes, no heap allocation per session whatever the id's length) and the id
// itself is never stored; sharded, one lock per shard for writers. Lookups take no lock: they
// read optimistically under a per-shard sequence counter (a seqlock) and write nothing but a
// session's coarse last use, at most once per second (see session_table.cpp).

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string_view>
#include <vector>

namespace turnout::session {

/// Index of a backend in the process's backend registry (stable for the process lifetime).
using backend_id = std::uint16_t;

/// XXH3-128 of a session id.
struct session_key {
    std::uint64_t low = 0;
    std::uint64_t high = 0;
    friend bool operator==(const session_key&, const session_key&) = default;
};

struct session_entry {
    session_key key;
    std::uint32_t last_use = 0; // seconds, on the caller's clock
    backend_id owner = 0;
    std::uint16_t streams = 0; // open SSE streams of this session
};

/// Told of every session pinned (insert) or forgotten (erase) one by one, after the table
/// released its lock; bulk removals (expiry, erase_owner) are not reported. Used to forward
/// sessions between the two processes of an upgrade.
class session_observer {
public:
    virtual void learned(const session_key& key, backend_id owner) = 0;
    virtual void forgot(const session_key& key) = 0;
    /// find() knows no such key. The observer may have news of it that the table was not
    /// told yet (the other process of an upgrade pinned it, and its message waits unread):
    /// true when it changed the table since, and find() looks once more.
    virtual bool missed(const session_key& key) noexcept
    {
        (void)key;
        return false;
    }

protected:
    ~session_observer() = default;
};

class session_table {
public:
    /// Called with +1 / -1 whenever a session of a backend is added or removed (for the
    /// per-backend `sessions` counter). May be empty.
    using count_hook = std::function<void(backend_id, int delta)>;

    explicit session_table(std::uint64_t seed, count_hook on_count = {}, unsigned shard_count = 64);
    ~session_table();
    session_table(const session_table&) = delete;
    session_table& operator=(const session_table&) = delete;

    std::uint64_t seed() const noexcept { return seed_; }
    session_key key_of(std::string_view session_id) const noexcept;

    /// The owner of key, touching its last use. nullopt when unknown (after asking the
    /// observer, if any: see session_observer::missed). Lock-free unless a writer keeps the
    /// key's shard busy across a few attempts; then it waits for the shard's lock.
    std::optional<backend_id> find(const session_key& key, std::uint32_t now) noexcept;

    /// Pins key to owner (a new session, or a re-pin of a known one).
    void insert(const session_key& key, backend_id owner, std::uint32_t now);

    /// Forgets key. Returns whether it was there.
    bool erase(const session_key& key) noexcept;

    /// A stream of this session opened / closed. Unknown keys are ignored (returns false).
    bool open_stream(const session_key& key, std::uint32_t now) noexcept;
    bool close_stream(const session_key& key, std::uint32_t now) noexcept;

    /// Sets key's last use to now, as a request would; an unknown key stays unknown (returns
    /// false). For uses seen elsewhere: a binary upgrade's predecessor still serving a session.
    bool touch(const session_key& key, std::uint32_t now) noexcept;

    /// Forgets sessions with no open stream whose last use is older than the idle timeout of
    /// their owner (idle_timeout(owner) in seconds; 0 = never). Returns how many.
    std::size_t expire(std::uint32_t now, const std::function<std::uint32_t(backend_id)>& idle_timeout);

    /// Forgets every session of owner. Returns how many.
    std::size_t erase_owner(backend_id owner);

    std::size_t size() const noexcept;
    /// Bytes held by the table's slots and shards (for the bytes-per-session figure).
    std::size_t memory_bytes() const noexcept;

    /// Visits every entry (shard by shard, each under its lock).
    void for_each(const std::function<void(const session_entry&)>& visit) const;
    /// Adds entries as they are (loading a saved table); keys must come from the same seed.
    void restore(const session_entry& entry);

    /// Starts (or, with nullptr, stops) reporting inserts and erases to o, which must outlive
    /// every call in progress (in practice: the process).
    void observe(session_observer* o) noexcept { observer_.store(o, std::memory_order_seq_cst); }

private:
    struct shard;
    shard& shard_of(const session_key& key) noexcept;
    std::optional<backend_id> find_here(const session_key& key, std::uint32_t now) noexcept;

    std::uint64_t seed_;
    count_hook on_count_;
    std::atomic<session_observer*> observer_{nullptr};
    std::vector<std::unique_ptr<shard>> shards_;
    unsigned shard_mask_;
};

} // namespace turnout::session
