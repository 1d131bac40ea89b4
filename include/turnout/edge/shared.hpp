#pragma once
// What the edge checks share across workers (held by runtime::shared_state): the rate
// limiter's buckets, the open-stream counts, and the refusal counters /metrics reports.

#include "turnout/edge/rate_limiter.hpp"
#include "turnout/edge/stream_limiter.hpp"

#include <atomic>
#include <cstdint>

namespace turnout::edge {

/// Requests refused at the edge, by reason (for /metrics).
struct counters {
    std::atomic<std::uint64_t> host_rejected{0};
    std::atomic<std::uint64_t> origin_rejected{0};
    std::atomic<std::uint64_t> rate_limited{0};
    std::atomic<std::uint64_t> streams_limited{0};
};

/// What all workers share: the buckets, the stream counts, the counters, and the seed under
/// which client keys are hashed (random per process: the tables hold no key in clear, and
/// nobody outside can aim keys at one shard). A binary upgrade hands the seed on with the
/// buckets (edge/rate_table.hpp): the only time it changes, before any worker runs.
struct shared {
    explicit shared(std::uint64_t key_seed) : seed(key_seed) {}

    rate_limiter rates;
    stream_limiter streams;
    counters counted;
    std::uint64_t seed;
};

} // namespace turnout::edge
