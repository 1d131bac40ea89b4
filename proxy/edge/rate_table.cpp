#include "turnout/edge/rate_table.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>

namespace turnout::edge {
namespace {

constexpr std::size_t header_bytes = 4 + 8 + 4;
constexpr std::size_t bucket_bytes = 8 + 8 + 8;
constexpr std::size_t max_buckets = rate_limiter::shard_count * rate_limiter::slots_per_shard;

template <class T> void put(std::string& out, T value)
{
    char bytes[sizeof(T)];
    std::memcpy(bytes, &value, sizeof(T)); // little-endian, as the hand-over's frames
    out.append(bytes, sizeof(T));
}

template <class T> T get(std::string_view bytes, std::size_t& pos)
{
    T value{};
    std::memcpy(&value, bytes.data() + pos, sizeof(T));
    pos += sizeof(T);
    return value;
}

} // namespace

std::string encode_rate_table(const shared& edge)
{
    const auto buckets = edge.rates.save();
    std::string out;
    out.reserve(header_bytes + buckets.size() * bucket_bytes);
    put(out, rate_table_format);
    put(out, edge.seed);
    put(out, static_cast<std::uint32_t>(buckets.size()));
    for (const auto& b : buckets) {
        put(out, b.key);
        put(out, b.tokens);
        put(out, b.last_ms);
    }
    return out;
}

std::optional<rate_table> decode_rate_table(std::string_view bytes, std::string& why)
{
    if (bytes.size() < header_bytes) {
        why = "the rate limit table is cut short (" + std::to_string(bytes.size()) + " bytes)";
        return std::nullopt;
    }
    std::size_t pos = 0;
    const auto format = get<std::uint32_t>(bytes, pos);
    if (format != rate_table_format) {
        why = "the rate limit table is in format " + std::to_string(format) + ", this process reads " +
              std::to_string(rate_table_format);
        return std::nullopt;
    }
    rate_table table;
    table.seed = get<std::uint64_t>(bytes, pos);
    const auto count = get<std::uint32_t>(bytes, pos);
    // The count is checked against the bytes before anything is reserved.
    if (count > max_buckets || bytes.size() != header_bytes + std::size_t{count} * bucket_bytes) {
        why = "the rate limit table announces " + std::to_string(count) + " buckets in " +
              std::to_string(bytes.size()) + " bytes";
        return std::nullopt;
    }
    table.buckets.reserve(count);
    for (std::uint32_t i = 0; i < count; ++i) {
        rate_limiter::bucket b;
        b.key = get<std::uint64_t>(bytes, pos);
        b.tokens = get<double>(bytes, pos);
        b.last_ms = get<std::int64_t>(bytes, pos);
        if ((b.key & 1) == 0 || !std::isfinite(b.tokens) || b.tokens < 0) {
            why = "the rate limit table holds an impossible bucket (#" + std::to_string(i) + ")";
            return std::nullopt;
        }
        table.buckets.push_back(b);
    }
    return table;
}

std::size_t adopt_rate_table(shared& edge, const rate_table& table, std::int64_t now_ms)
{
    edge.seed = table.seed;
    std::size_t restored = 0;
    for (auto b : table.buckets) {
        b.last_ms = std::min(b.last_ms, now_ms);
        restored += edge.rates.restore(b) ? 1 : 0;
    }
    return restored;
}

} // namespace turnout::edge
