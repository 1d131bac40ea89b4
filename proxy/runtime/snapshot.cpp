#include "turnout/runtime/snapshot.hpp"

#include <algorithm>
#include <unordered_map>

namespace turnout::runtime {
namespace {

std::string lower(std::string text)
{
    std::transform(text.begin(), text.end(), text.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    return text;
}

std::shared_ptr<upstream::backend> obtain_backend(const config::configuration& config,
                                                  const config::host_port& address,
                                                  upstream::backend_registry& registry,
                                                  const resolver& resolve)
{
    if (auto known = registry.find(address.text))
        return known;
    boost::system::error_code ec;
    const auto endpoint = resolve(address, ec);
    if (ec)
        throw config::config_error(config.path, 0, 0,
                                   "cannot resolve backend " + address.text + ": " + ec.message());
    return registry.obtain(address.text, endpoint);
}

std::shared_ptr<const session::token_codec> load_tokens(const config::configuration& config,
                                                        const config::upstream_config& upstream)
{
    if (upstream.affinity != config::affinity_kind::token)
        return nullptr;
    try {
        return std::make_shared<const session::token_codec>(
            session::token_codec::from_file(upstream.affinity_key_file));
    } catch (const std::exception& e) {
        throw config::config_error(config.path, 0, 0,
                                   "upstream " + upstream.name + ": affinity_key_file " + e.what());
    }
}

bool lists(const pool& p, std::string_view address)
{
    return std::any_of(p.backends.begin(), p.backends.end(), [&](const auto& b) { return b->address() == address; });
}

// A name's addresses join the pool after its written ones (an address listed twice is one
// backend); those leaving it stay, drained, until their deadline.
void add_discovered(pool& p, const discovered_set& set, std::int64_t now_ms, upstream::backend_registry& registry)
{
    for (const auto& found : set.current)
        if (!lists(p, found.address))
            p.backends.push_back(registry.obtain(found.address, found.endpoint));
    for (const auto& gone : set.leaving) {
        if (lists(p, gone.where.address))
            continue; // still listed by another name or the configuration: not leaving this pool
        p.backends.push_back(registry.obtain(gone.where.address, gone.where.endpoint));
        p.drained_backends.push_back({gone.where.address, gone.deadline_ms, gone.deadline_ms <= now_ms});
    }
}

// An operator's drain of an address that is also leaving its DNS name: one drain, ending at
// the earlier deadline (a drain already over must not come back to life when DNS drops the
// address, nor an operator's longer grace outlast the name's).
void add_drain(pool& p, const std::string& address, std::int64_t deadline_ms, std::int64_t now_ms)
{
    const auto it = std::find_if(p.drained_backends.begin(), p.drained_backends.end(),
                                 [&](const auto& d) { return d.address == address; });
    if (it == p.drained_backends.end()) {
        p.drained_backends.push_back({address, deadline_ms, deadline_ms <= now_ms});
        return;
    }
    it->deadline_ms = std::min(it->deadline_ms, deadline_ms);
    it->expired = it->deadline_ms <= now_ms;
}

} // namespace

const drained_backend* pool::drain_of(const upstream::backend& b) const noexcept
{
    for (const auto& d : drained_backends)
        if (d.address == b.address())
            return &d;
    return nullptr;
}

const pool* upstream_state::find(std::string_view name) const noexcept
{
    for (const auto& p : pools)
        if (p.name == name)
            return &p;
    return nullptr;
}

const upstream_state* snapshot::find(std::string_view name) const noexcept
{
    for (const auto& u : upstreams)
        if (u.config.name == name)
            return &u;
    return nullptr;
}

std::uint64_t upstream_state::total_weight() const noexcept
{
    std::uint64_t total = 0;
    for (const auto& p : pools)
        total += p.weight;
    return total;
}

std::shared_ptr<snapshot> build_snapshot(std::shared_ptr<const config::configuration> config,
                                         upstream::backend_registry& registry, const resolver& resolve)
{
    const auto state = initial_state(*config);
    return build_snapshot(std::move(config), state, 0, registry, resolve);
}

std::shared_ptr<snapshot> build_snapshot(std::shared_ptr<const config::configuration> config,
                                         const runtime_state& state, std::int64_t now_ms,
                                         upstream::backend_registry& registry, const resolver& resolve,
                                         const discovered_sets* found)
{
    auto next = std::make_shared<snapshot>();
    for (const auto& uc : config->upstreams) {
        upstream_state u{uc, {}, load_tokens(*config, uc)};
        const auto* runtime = state.find(uc.name);
        if (!runtime)
            throw config::config_error(config->path, 0, 0, "no runtime state for upstream " + uc.name);
        for (const auto& pr : runtime->pools) {
            const auto configured = std::find_if(uc.pools.begin(), uc.pools.end(),
                                                 [&](const auto& pc) { return pc.name == pr.name; });
            pool p;
            p.name = pr.name;
            p.weight = pr.weight;
            p.version = configured != uc.pools.end() ? configured->version : std::string();
            p.backup = configured != uc.pools.end() && configured->backup;
            p.draining = pr.draining;
            p.drain_deadline_ms = pr.drain_deadline_ms;
            p.drain_expired = pr.draining && pr.drain_deadline_ms && *pr.drain_deadline_ms <= now_ms;
            if (pr.backends) {
                for (const auto& text : *pr.backends) {
                    const auto address = config::parse_host_port(text);
                    if (!address)
                        throw config::config_error(config->path, 0, 0, "bad backend address " + text);
                    p.backends.push_back(obtain_backend(*config, *address, registry, resolve));
                }
            } else if (configured != uc.pools.end()) {
                for (const auto& address : configured->backends)
                    p.backends.push_back(obtain_backend(*config, address, registry, resolve));
                for (const auto& name : configured->discovered) {
                    if (!found)
                        break;
                    if (const auto set = found->find(name.text); set != found->end())
                        add_discovered(p, set->second, now_ms, registry);
                }
            }
            for (const auto& d : pr.drained_backends)
                if (lists(p, d.address))
                    add_drain(p, d.address, d.deadline_ms, now_ms);
            u.pools.push_back(std::move(p));
        }
        next->upstreams.push_back(std::move(u));
    }

    std::vector<routing::route> routes;
    for (const auto& rc : config->routes) {
        const auto it = std::find_if(config->upstreams.begin(), config->upstreams.end(),
                                     [&](const auto& u) { return u.name == rc.upstream; });
        routing::route r{lower(rc.host), rc.path_prefix,
                         static_cast<std::size_t>(it - config->upstreams.begin()), rc.mcp_method, rc.mcp_name};
        r.exact = rc.exact;
        r.listeners = rc.listeners;
        r.answer = rc.answer ? &*rc.answer : nullptr; // the snapshot keeps config alive
        routes.push_back(std::move(r));
    }
    next->router = routing::router(std::move(routes));
    next->config = std::move(config);
    return next;
}

void mark_in_service(const snapshot& s, upstream::backend_registry& registry)
{
    // Each backend gets its final value in one store: a live backend must never be seen out
    // of service, even for an instant (its sessions would answer 404).
    std::unordered_map<const upstream::backend*, std::uint32_t> listed; // → idle timeout (s)
    std::unordered_map<const upstream::backend*, bool> live_pool;      // in a pool not drained out
    std::unordered_map<const upstream::backend*, bool> drained;        // drained alone in some pool
    // Passive checks: the first upstream listing a backend decides (as for active checks).
    std::unordered_map<const upstream::backend*, const config::passive_health_config*> passive;
    for (const auto& u : s.upstreams) {
        const auto idle_s = static_cast<std::uint32_t>(
            std::chrono::duration_cast<std::chrono::seconds>(u.config.session_idle_timeout).count());
        for (const auto& p : u.pools)
            for (const auto& b : p.backends) {
                listed[b.get()] = std::max(listed[b.get()], idle_s);
                const auto* own = p.drain_of(*b);
                live_pool[b.get()] = live_pool[b.get()] || !(p.drain_expired || (own && own->expired));
                drained[b.get()] = drained[b.get()] || own;
                passive.try_emplace(b.get(), &u.config.passive);
            }
    }
    registry.for_each([&](upstream::backend& b) {
        const auto it = listed.find(&b);
        if (it != listed.end()) {
            b.set_session_idle_timeout_s(it->second);
            const auto& pc = *passive.at(&b);
            b.set_passive(pc.failures, pc.backoff, pc.backoff_max);
        }
        b.set_retired(it != listed.end() && !live_pool[&b]);
        b.set_draining(it != listed.end() && drained[&b]);
        b.set_in_service(it != listed.end());
    });
}

void snapshot_source::publish(std::shared_ptr<const snapshot> s)
{
    current_.store(std::move(s), std::memory_order_release);
    version_.fetch_add(1, std::memory_order_acq_rel);
}

} // namespace turnout::runtime
