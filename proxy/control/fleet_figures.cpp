#include "turnout/control/fleet_figures.hpp"

#include <boost/json/array.hpp>
#include <boost/json/object.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

namespace turnout::control {
namespace {

namespace json = boost::json;

std::uint64_t count_at(const json::object& o, std::string_view key)
{
    const auto* v = o.if_contains(key);
    if (!v)
        return 0;
    if (v->is_uint64())
        return v->get_uint64();
    if (v->is_int64() && v->get_int64() >= 0)
        return static_cast<std::uint64_t>(v->get_int64());
    throw std::invalid_argument("not a count");
}

json::object sample_json(const pool_sample& s)
{
    json::array latency;
    for (const auto n : s.latency)
        latency.push_back(n);
    return {{"requests", s.requests},
            {"failed", s.failed},
            {"connect_failures", s.connect_failures},
            {"latency", std::move(latency)}};
}

pool_sample sample_of(const json::object& o)
{
    pool_sample s;
    s.requests = count_at(o, "requests");
    s.failed = count_at(o, "failed");
    s.connect_failures = count_at(o, "connect_failures");
    const auto& latency = o.at("latency").as_array();
    if (latency.size() != s.latency.size())
        throw std::invalid_argument("another latency histogram");
    for (std::size_t i = 0; i < s.latency.size(); ++i) {
        const auto& n = latency[i];
        s.latency[i] = n.is_uint64() ? n.get_uint64() : static_cast<std::uint64_t>(n.as_int64());
    }
    return s;
}

// One instance's difference between two readings; zero where a count went back (a restart).
void add_difference(pool_sample& sum, const pool_sample& before, const pool_sample& after)
{
    const auto diff = [](std::uint64_t a, std::uint64_t b) { return a > b ? a - b : 0; };
    sum.requests += diff(after.requests, before.requests);
    sum.failed += diff(after.failed, before.failed);
    for (std::size_t i = 0; i < sum.latency.size(); ++i)
        sum.latency[i] += diff(after.latency[i], before.latency[i]);
}

} // namespace

std::string figures_to_json(const published_pools& pools)
{
    json::object out;
    for (const auto& [key, sample] : pools) {
        auto& upstream = out[key.first];
        if (!upstream.is_object())
            upstream = json::object{};
        upstream.as_object()[key.second] = sample_json(sample);
    }
    return json::serialize(out);
}

std::optional<published_pools> figures_from_json(std::string_view text)
{
    try {
        published_pools pools;
        const auto document = json::parse(text);
        for (const auto& [upstream, by_pool] : document.as_object())
            for (const auto& [pool, counts] : by_pool.as_object())
                pools.emplace(std::pair{std::string(upstream), std::string(pool)}, sample_of(counts.as_object()));
        return pools;
    } catch (const std::exception&) {
        return std::nullopt;
    }
}

fleet_sample sample_fleet(std::string_view own_name, const pool_sample& own,
                          const std::map<std::string, published_pools>& others, std::string_view upstream,
                          std::string_view pool)
{
    fleet_sample out;
    out.emplace(std::string(own_name), own);
    const std::pair<std::string, std::string> key{std::string(upstream), std::string(pool)};
    for (const auto& [instance, pools] : others)
        if (const auto it = pools.find(key); it != pools.end())
            out.emplace(instance, it->second);
    return out;
}

runtime::pool_figures figures_between(const fleet_sample& before, const fleet_sample& after)
{
    pool_sample sum;
    for (const auto& [instance, now] : after)
        if (const auto it = before.find(instance); it != before.end())
            add_difference(sum, it->second, now);
    return figures_between(pool_sample{}, sum);
}

} // namespace turnout::control
