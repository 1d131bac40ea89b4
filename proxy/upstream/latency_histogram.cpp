#include "turnout/upstream/latency_histogram.hpp"

#include <algorithm>
#include <cmath>

namespace turnout::upstream {
namespace {

constexpr double first_bound_us = 100.0;

/// Bounds computed once: bucket i ends at 100 µs × 2^(i/4).
struct bounds_table {
    std::array<std::uint64_t, latency_histogram::bucket_count> us{};
    bounds_table()
    {
        for (std::size_t i = 0; i < us.size(); ++i)
            us[i] = static_cast<std::uint64_t>(std::llround(first_bound_us * std::exp2(static_cast<double>(i) / 4)));
    }
};

const bounds_table& bounds()
{
    static const bounds_table table;
    return table;
}

} // namespace

std::uint64_t latency_histogram::upper_bound_us(std::size_t i) noexcept
{
    return bounds().us[std::min(i, bucket_count - 1)];
}

std::size_t latency_histogram::bucket_of(std::chrono::microseconds d) noexcept
{
    const auto& us = bounds().us;
    const auto value = static_cast<std::uint64_t>(std::max<std::int64_t>(d.count(), 0));
    const auto it = std::lower_bound(us.begin(), us.end() - 1, value);
    return static_cast<std::size_t>(it - us.begin());
}

void latency_histogram::add_to(counts& out) const noexcept
{
    for (std::size_t i = 0; i < bucket_count; ++i)
        out[i] += buckets_[i].load(std::memory_order_relaxed);
}

double latency_histogram::quantile_ms(const counts& c, double q) noexcept
{
    std::uint64_t total = 0;
    for (const auto n : c)
        total += n;
    if (total == 0)
        return 0;
    const auto rank = static_cast<std::uint64_t>(std::ceil(q * static_cast<double>(total)));
    std::uint64_t seen = 0;
    for (std::size_t i = 0; i < bucket_count; ++i) {
        seen += c[i];
        if (seen >= std::max<std::uint64_t>(rank, 1))
            return static_cast<double>(upper_bound_us(i)) / 1000.0;
    }
    return static_cast<double>(upper_bound_us(bucket_count - 1)) / 1000.0;
}

} // namespace turnout::upstream
