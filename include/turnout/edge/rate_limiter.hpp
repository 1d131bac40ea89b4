#pragma once
// [[listen]] rate_limit: a token bucket per client key, shared by all workers.
//
// Why one shared table rather than per-worker buckets with a split budget: the kernel spreads
// connections over the workers' SO_REUSEPORT acceptors by a hash of the 4-tuple, so one
// keep-alive client lives on one worker and a split budget would give it 1/N of its rate,
// while a client with N connections would get N times the share of one — a limit that
// depends on the worker count and on how the client opens connections is not the one
// configured. The table is exact instead: 64 shards, each a fixed array of buckets behind its
// own mutex, held for a few dozen nanoseconds per request (two workers rarely meet on a
// shard). Memory is fixed (64 × 256 buckets of 24 bytes, allocated on first use): a client not
// in the table takes the slot of the most rested bucket in its probe window, which loses
// nothing when that bucket was full. An attacker with more addresses than slots can only make
// other clients' buckets start over full (the limit fails open for them, never closed), and
// cannot grow memory. Keys arrive hashed (XXH3 with a per-process random seed): the table
// never holds a client's address or header value.

#include <cstdint>
#include <memory>
#include <mutex>
#include <vector>

namespace turnout::edge {

class rate_limiter {
public:
    static constexpr std::size_t shard_count = 64;
    static constexpr std::size_t slots_per_shard = 256;
    static constexpr std::size_t probe_window = 8;

    struct verdict {
        bool allowed = true;
        std::uint32_t retry_after_s = 0; // when refused: seconds until a token is there (>= 1)
    };

    rate_limiter();
    ~rate_limiter();
    rate_limiter(const rate_limiter&) = delete;
    rate_limiter& operator=(const rate_limiter&) = delete;

    /// Takes one token from key's bucket, refilled at requests per per_ms and holding at most
    /// burst. now_ms: a monotonic reading of the caller's.
    verdict take(std::uint64_t key, std::uint32_t requests, std::int64_t per_ms, std::uint32_t burst,
                 std::int64_t now_ms);

    /// Buckets in use (for tests and bounds checks).
    std::size_t tracked() const;

    struct bucket {
        std::uint64_t key = 0; // 0: free
        double tokens = 0;
        std::int64_t last_ms = 0;
    };

    /// Every bucket in use, for a binary upgrade to hand over (edge/rate_table.hpp): a client
    /// must not get a full bucket back by timing an upgrade.
    std::vector<bucket> save() const;
    /// Puts a handed-over bucket where take() will look for its key: its own slot, or a free one
    /// of its probe window. False (and dropped) when there is none, or the bucket is not one.
    bool restore(const bucket& b);

private:
    struct shard;

    std::unique_ptr<shard[]> shards_;
};

} // namespace turnout::edge
