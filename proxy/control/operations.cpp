#include "turnout/control/operations.hpp"

#include "turnout/config/rules.hpp"
#include "turnout/control/pool_facts.hpp"
#include "turnout/control/tool_compatibility.hpp"

#include <algorithm>

namespace turnout::control {
decision decision::unknown_upstream(std::string_view u)
{
    return refuse(404, "no upstream named '" + std::string(u) + "'");
}

decision decision::unknown_pool(std::string_view u, std::string_view p)
{
    return refuse(404, "upstream '" + std::string(u) + "' has no pool named '" + std::string(p) + "'");
}

namespace {

std::string describe(const runtime::weight_list& weights)
{
    std::string out;
    for (const auto& [name, weight] : weights)
        out += (out.empty() ? "" : " ") + name + "=" + std::to_string(weight);
    return out;
}

/// A copy of current, and in it the upstream (and pool) a change is about; a refusal naming
/// what is unknown otherwise.
struct target {
    decision d;
    runtime::upstream_runtime* upstream = nullptr;
    runtime::pool_runtime* pool = nullptr;
};

target find(const runtime::runtime_state& current, std::string_view upstream,
            std::optional<std::string_view> pool)
{
    target t;
    t.d.next = current;
    t.upstream = t.d.next.find(upstream);
    if (!t.upstream) {
        t.d = decision::unknown_upstream(upstream);
        return t;
    }
    if (pool) {
        t.pool = t.upstream->find(*pool);
        if (!t.pool)
            t.d = decision::unknown_pool(upstream, *pool);
    }
    return t;
}

} // namespace

std::optional<std::string> operations::refusal(const runtime::upstream_state& u, const runtime::pool& target,
                                               const runtime::pool* baseline)
{
    if (!has_usable_backend(target))
        return "pool '" + target.name + "' has no healthy backend";
    if (std::none_of(target.backends.begin(), target.backends.end(),
                     [](const auto& b) { return b->healthy() && b->in_service() && !b->draining(); }))
        return "every healthy backend of pool '" + target.name + "' is draining";
    return breaking_change(u, target, baseline);
}

decision operations::set_weights(std::string_view upstream,
                                 const std::vector<std::pair<std::string, std::int64_t>>& weights, bool force) const
{
    auto [d, u, unused] = find(current_, upstream, std::nullopt);
    if (!u)
        return d;
    if (weights.empty())
        return decision::refuse(400, "give at least one pool=weight");
    auto proposed = u->weights();
    for (const auto& [pool, weight] : weights) {
        const auto it =
            std::find_if(proposed.begin(), proposed.end(), [&](const auto& w) { return w.first == pool; });
        if (it == proposed.end())
            return decision::unknown_pool(upstream, pool);
        if (!config::is_valid_weight(weight))
            return decision::refuse(400,
                                    "weight of '" + pool + "' must be " + std::string(config::weight_rule));
        it->second = static_cast<std::uint32_t>(weight);
    }
    if (std::all_of(proposed.begin(), proposed.end(), [](const auto& w) { return w.second == 0; }))
        return decision::refuse(400, "weights cannot all be 0: no pool would take new sessions");

    // A pool getting its first traffic must be able to take it (guarded, like switch).
    if (const auto* live = force ? nullptr : live_.find(upstream)) {
        for (const auto& [pool, weight] : proposed) {
            const auto* now = u->find(pool);
            const auto* p = live->find(pool);
            if (weight > 0 && now && now->weight == 0 && p)
                if (const auto why = refusal(*live, *p))
                    return decision::refuse(409, *why + "; use force to send it sessions anyway");
        }
    }
    u->previous_weights = u->weights();
    for (const auto& [pool, weight] : proposed)
        u->find(pool)->weight = weight;
    d.summary = std::string(upstream) + " weights " + describe(proposed) + (force ? " (forced)" : "");
    return d;
}

decision operations::switch_to(std::string_view upstream, std::string_view pool, bool force) const
{
    auto [d, u, target] = find(current_, upstream, pool);
    if (!target)
        return d;
    if (!force) {
        if (const auto* live = live_.find(upstream))
            if (const auto* p = live->find(pool))
                if (const auto why = refusal(*live, *p))
                    return decision::refuse(409, *why + "; use force to switch anyway");
    }
    u->previous_weights = u->weights();
    const auto weight = target->weight > 0 ? target->weight : 100;
    for (auto& p : u->pools)
        p.weight = p.name == pool ? weight : 0;
    d.summary = std::string(upstream) + " switched to " + std::string(pool) + (force ? " (forced)" : "");
    return d;
}

decision operations::rollback(std::string_view upstream) const
{
    auto [d, u, unused] = find(current_, upstream, std::nullopt);
    if (!u)
        return d;
    if (!u->previous_weights)
        return decision::refuse(409, "nothing to roll back: no weights or switch change recorded");
    const auto restore = *u->previous_weights;
    u->previous_weights = u->weights(); // a second rollback undoes the first
    for (const auto& [pool, weight] : restore)
        if (auto* p = u->find(pool))
            p->weight = weight;
    d.summary = std::string(upstream) + " rolled back to " + describe(restore);
    return d;
}

decision operations::drain(std::string_view upstream, std::string_view pool,
                           std::optional<config::duration> timeout, std::int64_t now_ms) const
{
    auto [d, u, p] = find(current_, upstream, pool);
    if (!p)
        return d;
    const auto grace = timeout.value_or(config_.proxy.drain_timeout);
    p->draining = true;
    p->drain_deadline_ms = now_ms + grace.count();
    d.summary = "draining " + std::string(upstream) + "/" + std::string(pool) + " (grace " +
                config::format_duration(grace) + ")";
    return d;
}

decision operations::undrain(std::string_view upstream, std::string_view pool) const
{
    auto [d, u, p] = find(current_, upstream, pool);
    if (!p)
        return d;
    p->draining = false;
    p->drain_deadline_ms.reset();
    d.summary = "undrained " + std::string(upstream) + "/" + std::string(pool);
    return d;
}

std::vector<std::string> operations::listed_backends(std::string_view upstream,
                                                     const runtime::pool_runtime& pool) const
{
    if (pool.backends)
        return *pool.backends;
    std::vector<std::string> listed;
    for (const auto& u : config_.upstreams)
        if (u.name == upstream)
            for (const auto& p : u.pools)
                if (p.name == pool.name)
                    for (const auto& address : p.backends)
                        listed.push_back(address.text);
    // And what its dns:/srv: names resolve to now (leaving addresses too: they still serve
    // their sessions), as the live snapshot lists them: discovery is this process's.
    if (const auto* u = live_.find(upstream))
        if (const auto* p = u->find(pool.name))
            for (const auto& b : p->backends)
                if (std::find(listed.begin(), listed.end(), b->address()) == listed.end())
                    listed.push_back(b->address());
    return listed;
}

std::optional<decision> operations::check_listed(std::string_view upstream, const runtime::pool_runtime& pool,
                                                 std::string_view address) const
{
    const auto parsed = config::parse_host_port(address);
    if (!parsed || parsed->port == 0)
        return decision::refuse(400, "'" + std::string(address) + "' is not a backend address (host:port)");
    const auto listed = listed_backends(upstream, pool);
    if (std::find(listed.begin(), listed.end(), address) == listed.end())
        return decision::refuse(404, "pool '" + pool.name + "' of upstream '" + std::string(upstream) +
                                         "' has no backend '" + std::string(address) + "'");
    return std::nullopt;
}

decision operations::drain_backend(std::string_view upstream, std::string_view pool, std::string_view address,
                                   std::optional<config::duration> timeout, std::int64_t now_ms) const
{
    auto [d, u, p] = find(current_, upstream, pool);
    if (!p)
        return d;
    if (auto refused = check_listed(upstream, *p, address))
        return *refused;
    const auto grace = timeout.value_or(config_.proxy.drain_timeout);
    const auto deadline = now_ms + grace.count();
    // Drained again: the new grace counts from now, as for a pool.
    if (auto* drain = p->find_drain(address))
        drain->deadline_ms = deadline;
    else
        p->drained_backends.push_back({std::string(address), deadline});
    d.summary = "draining backend " + std::string(address) + " of " + std::string(upstream) + "/" +
                std::string(pool) + " (grace " + config::format_duration(grace) + ")";
    return d;
}

decision operations::undrain_backend(std::string_view upstream, std::string_view pool,
                                     std::string_view address) const
{
    auto [d, u, p] = find(current_, upstream, pool);
    if (!p)
        return d;
    // A drain stays undrainable even when its address is gone from the pool's names.
    if (auto refused = check_listed(upstream, *p, address); refused && !p->find_drain(address))
        return *refused;
    std::erase_if(p->drained_backends, [&](const auto& drain) { return drain.address == address; });
    d.summary = "undrained backend " + std::string(address) + " of " + std::string(upstream) + "/" + std::string(pool);
    return d;
}

decision operations::set_backends(std::string_view upstream, std::string_view pool,
                                  const std::vector<std::string>& addresses) const
{
    auto [d, u, unused] = find(current_, upstream, std::nullopt);
    if (!u)
        return d;
    for (const auto& text : addresses) {
        const auto address = config::parse_host_port(text);
        if (!address || address->port == 0)
            return decision::refuse(400, "'" + text + "' is not a backend address (host:port)");
    }
    auto* p = u->find(pool);
    if (!p) {
        // Green environments get their addresses at deploy time: a new pool, taking no new
        // sessions until weights or a switch say so.
        u->pools.push_back({std::string(pool), 0, false, std::nullopt, std::nullopt, true, {}});
        p = &u->pools.back();
    }
    p->backends = addresses;
    p->keep_drains_of(addresses); // a backend that left the pool has nothing left to drain
    d.summary = std::string(upstream) + "/" + std::string(pool) + " backends set to " +
                std::to_string(addresses.size()) + " address(es)";
    return d;
}

} // namespace turnout::control
