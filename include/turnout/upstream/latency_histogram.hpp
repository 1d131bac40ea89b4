#pragma once
// Response-head latency of a backend, fine enough for a rollout to compare two pools' p99:
// 64 buckets growing by 2^(1/4) (about 19 % apart) from 100 µs, the last one open. Workers
// add with one relaxed increment; the control plane reads the cumulative counts and takes
// differences between two readings (an interval's figures).

#include <array>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>

namespace turnout::upstream {

class latency_histogram {
public:
    static constexpr std::size_t bucket_count = 64;
    using counts = std::array<std::uint64_t, bucket_count>;

    /// Upper bound of bucket i in microseconds (the last bucket has none).
    static std::uint64_t upper_bound_us(std::size_t i) noexcept;
    static std::size_t bucket_of(std::chrono::microseconds d) noexcept;

    void record(std::chrono::microseconds d) noexcept
    {
        buckets_[bucket_of(d)].fetch_add(1, std::memory_order_relaxed);
        sum_us_.fetch_add(static_cast<std::uint64_t>(d.count() > 0 ? d.count() : 0), std::memory_order_relaxed);
    }
    /// The sum of all durations recorded, in µs.
    std::uint64_t sum_us() const noexcept { return sum_us_.load(std::memory_order_relaxed); }
    /// Adds the current counts into out (so a pool's backends sum up).
    void add_to(counts& out) const noexcept;

    /// The q-quantile (0 < q ≤ 1) of the counts, as the upper bound of its bucket in ms;
    /// 0 when the counts are empty.
    static double quantile_ms(const counts& c, double q) noexcept;

private:
    std::atomic<std::uint64_t> buckets_[bucket_count]{};
    std::atomic<std::uint64_t> sum_us_{0};
};

} // namespace turnout::upstream
