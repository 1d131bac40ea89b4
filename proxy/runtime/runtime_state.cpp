#include "turnout/runtime/runtime_state.hpp"

#include <algorithm>

namespace turnout::runtime {
namespace {

// Linear searches: an upstream has a handful of pools and a config a handful of upstreams, so
// a map would cost more than it saves and would lose the order that weights() and the status
// output follow.
template <class Range>
auto find_named(Range& range, std::string_view name) noexcept -> decltype(&*range.begin())
{
    const auto it =
        std::find_if(range.begin(), range.end(), [name](const auto& e) { return e.name == name; });
    return it == range.end() ? nullptr : &*it;
}

pool_runtime initial_pool(const config::pool_config& config)
{
    pool_runtime pool;
    pool.name = config.name;
    pool.weight = config.weight;
    return pool;
}

upstream_runtime initial_upstream(const config::upstream_config& config)
{
    upstream_runtime upstream;
    upstream.name = config.name;
    upstream.pools.reserve(config.pools.size());
    for (const auto& pool : config.pools)
        upstream.pools.push_back(initial_pool(pool));
    return upstream;
}

// A pool the configuration still has: what operators changed at run time wins over the file.
// The pool is the configuration's now, so it is no longer "created at run time": if a later
// configuration drops it, it goes (the operator put it under the config's control).
pool_runtime reconcile_pool(const pool_runtime& saved, const config::pool_config& config)
{
    pool_runtime pool = saved;
    pool.name = config.name;
    pool.created_at_runtime = false;
    // A drained backend the pool no longer lists (the file changed) has nothing left to drain.
    // With dns:/srv: names the pool lists what DNS says, which is not known here: those drains
    // stay, and DNS discovery ends each once its address has left the names.
    std::vector<std::string> listed;
    if (pool.backends)
        listed = *pool.backends;
    else if (!config.discovered.empty())
        return pool;
    else
        for (const auto& address : config.backends)
            listed.push_back(address.text);
    pool.keep_drains_of(listed);
    return pool;
}

// Rollback weights are a whole set of pools to return to; if one of them is gone, returning
// to "the rest of them" would be a different split from the one the operator saw, so the
// rollback point is dropped rather than half-applied.
bool names_existing_pools(const weight_list& weights, const upstream_runtime& upstream)
{
    return std::all_of(weights.begin(), weights.end(),
                       [&](const auto& entry) { return upstream.find(entry.first) != nullptr; });
}

upstream_runtime reconcile_upstream(const upstream_runtime& saved, const config::upstream_config& config)
{
    upstream_runtime upstream;
    upstream.name = config.name;
    upstream.pools.reserve(config.pools.size());
    for (const auto& pc : config.pools) {
        if (const auto* kept = saved.find(pc.name))
            upstream.pools.push_back(reconcile_pool(*kept, pc));
        else
            upstream.pools.push_back(initial_pool(pc));
    }
    // Pools created at run time (green environments given their backends at deploy time) are
    // not in any file but the state, so they outlive a reload; they follow the config's pools.
    for (const auto& pool : saved.pools) {
        if (pool.created_at_runtime && !upstream.find(pool.name))
            upstream.pools.push_back(pool);
    }
    if (saved.previous_weights && names_existing_pools(*saved.previous_weights, upstream))
        upstream.previous_weights = saved.previous_weights;
    // A rollout goes on while both its pools exist; one of them gone ends it (the record stays
    // out too: what it names is no longer there).
    if (saved.rollout && upstream.find(saved.rollout->pool) && upstream.find(saved.rollout->baseline))
        upstream.rollout = saved.rollout;
    return upstream;
}

} // namespace

backend_drain* pool_runtime::find_drain(std::string_view address) noexcept
{
    const auto it = std::find_if(drained_backends.begin(), drained_backends.end(),
                                 [address](const auto& d) { return d.address == address; });
    return it == drained_backends.end() ? nullptr : &*it;
}

const backend_drain* pool_runtime::find_drain(std::string_view address) const noexcept
{
    return const_cast<pool_runtime*>(this)->find_drain(address);
}

void pool_runtime::keep_drains_of(const std::vector<std::string>& listed)
{
    std::erase_if(drained_backends, [&](const auto& d) {
        return std::find(listed.begin(), listed.end(), d.address) == listed.end();
    });
}

pool_runtime* upstream_runtime::find(std::string_view pool) noexcept
{
    return find_named(pools, pool);
}

const pool_runtime* upstream_runtime::find(std::string_view pool) const noexcept
{
    return find_named(pools, pool);
}

weight_list upstream_runtime::weights() const
{
    weight_list list;
    list.reserve(pools.size());
    for (const auto& pool : pools)
        list.emplace_back(pool.name, pool.weight);
    return list;
}

upstream_runtime* runtime_state::find(std::string_view upstream) noexcept
{
    return find_named(upstreams, upstream);
}

const upstream_runtime* runtime_state::find(std::string_view upstream) const noexcept
{
    return find_named(upstreams, upstream);
}

runtime_state initial_state(const config::configuration& config)
{
    runtime_state state;
    state.upstreams.reserve(config.upstreams.size());
    for (const auto& upstream : config.upstreams)
        state.upstreams.push_back(initial_upstream(upstream));
    return state;
}

// The configuration decides which upstreams exist: an upstream it no longer has is gone with
// its routes, so nothing could reach its pools (runtime-created ones included).
runtime_state reconcile(const runtime_state& saved, const config::configuration& config)
{
    runtime_state state;
    state.upstreams.reserve(config.upstreams.size());
    for (const auto& uc : config.upstreams) {
        if (const auto* kept = saved.find(uc.name))
            state.upstreams.push_back(reconcile_upstream(*kept, uc));
        else
            state.upstreams.push_back(initial_upstream(uc));
    }
    return state;
}

} // namespace turnout::runtime
