#pragma once
// The rate limiter's state as a binary upgrade hands it to the new process (upgrade's
// rate_limits message), so that a client cannot start over with a full bucket by timing an
// upgrade. It carries the key seed (the buckets are keyed by hashes under it) and every bucket
// in use; bucket times are CLOCK_MONOTONIC readings, which both processes share.
//
// Encoding, little-endian: u32 format (1), u64 seed, u32 count, then count buckets of
// {u64 key, f64 tokens, i64 last_ms}. At most shard_count × slots_per_shard buckets (~390 KiB):
// anything longer, shorter, of another format, or with an impossible bucket is refused whole,
// and the new process starts with full buckets, as before this existed.

#include "turnout/edge/shared.hpp"

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace turnout::edge {

constexpr std::uint32_t rate_table_format = 1;

struct rate_table {
    std::uint64_t seed = 0;
    std::vector<rate_limiter::bucket> buckets;
};

/// edge's seed and buckets, encoded.
std::string encode_rate_table(const shared& edge);

/// The table in bytes, or nullopt with why set when they are not one.
std::optional<rate_table> decode_rate_table(std::string_view bytes, std::string& why);

/// Takes table's seed and buckets into edge, which must not serve yet (before the workers
/// start: the seed changes). now_ms: monotonic; a bucket stamped later (another clock) is
/// stamped now. Returns the buckets restored: all of them unless the table is (nearly) full,
/// where a few find their probe window taken by buckets restored before them and start over
/// full, as an evicted bucket does (the unit test measures under 0.5 % of a full table).
std::size_t adopt_rate_table(shared& edge, const rate_table& table, std::int64_t now_ms);

} // namespace turnout::edge
