// The admin operations of the process (admin::control), run on the control thread: each
// validates its request against the current runtime state, persists the new state, publishes
// a new snapshot, and only then answers — so an acknowledged change survives a crash, and the
// very next new session already follows it.

#include "turnout/server.hpp"

#include "turnout/net/endpoint.hpp"
#include "turnout/runtime/state_file.hpp"
#include "turnout/version.hpp"

#include <boost/json.hpp>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <map>

namespace turnout {
namespace {

namespace json = boost::json;

/// Streams of an expired drain end spread over this window, so their clients don't all
/// reconnect in the same instant.
constexpr auto drain_close_window = std::chrono::milliseconds(2000);
constexpr std::uint32_t max_weight = 1000000;

std::int64_t count(const std::atomic<std::int64_t>& c) { return c.load(std::memory_order_relaxed); }
std::uint64_t count(const std::atomic<std::uint64_t>& c) { return c.load(std::memory_order_relaxed); }

json::object backend_status(const upstream::backend& b, bool pool_draining)
{
    const auto& c = b.counters();
    return {{"address", b.address()},
            {"healthy", b.healthy()},
            {"draining", b.draining() || pool_draining},
            {"sessions", count(c.sessions)},
            {"connections", count(c.connections)},
            {"streams", count(c.streams)},
            {"in_flight", count(c.in_flight)},
            {"requests_total", count(c.requests_total)},
            {"errors_total", count(c.errors_total)}};
}

/// A Prometheus label value: backslash, quote and newline escaped.
std::string label(std::string_view value)
{
    std::string out;
    for (const char c : value) {
        if (c == '\\' || c == '"')
            out += '\\';
        if (c == '\n') {
            out += "\\n";
            continue;
        }
        out += c;
    }
    return out;
}

bool has_usable_backend(const runtime::pool& p)
{
    return std::any_of(p.backends.begin(), p.backends.end(),
                       [](const auto& b) { return b->healthy() && b->in_service(); });
}

} // namespace

// ---- status and metrics ---------------------------------------------------------------------

json::object server::upstream_status(const runtime::upstream_state& u) const
{
    json::array pools;
    std::int64_t sessions = 0;
    for (const auto& p : u.pools) {
        json::array backends;
        for (const auto& b : p.backends) {
            backends.push_back(backend_status(*b, p.draining));
            sessions += count(b->counters().sessions);
        }
        json::object pool{{"name", p.name},
                          {"weight", p.weight},
                          {"draining", p.draining},
                          {"version", p.version},
                          {"backends", std::move(backends)}};
        if (p.drain_deadline_ms)
            pool["drain_deadline_ms"] = *p.drain_deadline_ms;
        pool["drain_expired"] = p.drain_expired;
        pools.push_back(std::move(pool));
    }
    json::object out{{"name", u.config.name},
                     {"affinity", std::string(config::to_string(u.config.affinity))},
                     {"sessions", sessions},
                     {"pools", std::move(pools)}};
    if (const auto* runtime = state_.find(u.config.name); runtime && runtime->previous_weights) {
        json::object previous;
        for (const auto& [name, weight] : *runtime->previous_weights)
            previous[name] = weight;
        out["previous_weights"] = std::move(previous);
    }
    return out;
}

json::object server::status() const
{
    const auto snapshot = shared_->snapshots.load();
    json::array upstreams;
    for (const auto& u : snapshot->upstreams)
        upstreams.push_back(upstream_status(u));
    const auto uptime = std::chrono::duration_cast<std::chrono::seconds>(std::chrono::steady_clock::now() - started_);
    return {{"version", std::string(version())},
            {"uptime_s", uptime.count()},
            {"draining", draining_.load()},
            {"connections", workers_ ? workers_->connection_count() : 0},
            {"session_table", shared_->sessions.size()},
            {"upstreams", std::move(upstreams)}};
}

std::string server::metrics() const
{
    const auto snapshot = shared_->snapshots.load();
    std::string out;
    out.reserve(4096);
    const auto uptime = std::chrono::duration_cast<std::chrono::seconds>(std::chrono::steady_clock::now() - started_);
    out += "# HELP turnout_info turnout build information.\n# TYPE turnout_info gauge\n";
    out += "turnout_info{version=\"" + label(version()) + "\"} 1\n";
    out += "# HELP turnout_uptime_seconds Seconds since turnout started.\n# TYPE turnout_uptime_seconds gauge\n";
    out += "turnout_uptime_seconds " + std::to_string(uptime.count()) + "\n";
    out += "# HELP turnout_draining 1 while turnout drains for shutdown.\n# TYPE turnout_draining gauge\n";
    out += std::string("turnout_draining ") + (draining_.load() ? "1" : "0") + "\n";
    out += "# HELP turnout_client_connections Open client connections.\n# TYPE turnout_client_connections gauge\n";
    out += "turnout_client_connections " + std::to_string(workers_ ? workers_->connection_count() : 0) + "\n";
    out += "# HELP turnout_session_table_sessions Sessions in the session table.\n"
           "# TYPE turnout_session_table_sessions gauge\n";
    out += "turnout_session_table_sessions " + std::to_string(shared_->sessions.size()) + "\n";

    out += "# HELP turnout_pool_weight New-session weight of a pool.\n# TYPE turnout_pool_weight gauge\n";
    for (const auto& u : snapshot->upstreams)
        for (const auto& p : u.pools)
            out += "turnout_pool_weight{upstream=\"" + label(u.config.name) + "\",pool=\"" + label(p.name) +
                   "\",version=\"" + label(p.version) + "\"} " + std::to_string(p.weight) + "\n";
    out += "# HELP turnout_pool_draining 1 while a pool drains.\n# TYPE turnout_pool_draining gauge\n";
    for (const auto& u : snapshot->upstreams)
        for (const auto& p : u.pools)
            out += "turnout_pool_draining{upstream=\"" + label(u.config.name) + "\",pool=\"" + label(p.name) +
                   "\"} " + (p.draining ? "1" : "0") + "\n";

    struct family {
        const char* name;
        const char* type;
        const char* help;
        std::int64_t (*read)(const upstream::backend&);
    };
    static const family families[] = {
        {"turnout_backend_healthy", "gauge", "1 when the backend may take new sessions (health).",
         [](const upstream::backend& b) -> std::int64_t { return b.healthy(); }},
        {"turnout_backend_sessions", "gauge", "Sessions pinned to the backend.",
         [](const upstream::backend& b) { return count(b.counters().sessions); }},
        {"turnout_backend_connections", "gauge", "Open TCP connections to the backend.",
         [](const upstream::backend& b) { return count(b.counters().connections); }},
        {"turnout_backend_streams", "gauge", "Open SSE streams from the backend.",
         [](const upstream::backend& b) { return count(b.counters().streams); }},
        {"turnout_backend_in_flight", "gauge", "Requests sent to the backend and not finished.",
         [](const upstream::backend& b) { return count(b.counters().in_flight); }},
        {"turnout_backend_requests_total", "counter", "Requests sent to the backend.",
         [](const upstream::backend& b) { return static_cast<std::int64_t>(count(b.counters().requests_total)); }},
        {"turnout_backend_errors_total", "counter", "Failed exchanges with the backend (connect, reset, garbage, timeout).",
         [](const upstream::backend& b) { return static_cast<std::int64_t>(count(b.counters().errors_total)); }},
    };
    for (const auto& f : families) {
        out += std::string("# HELP ") + f.name + " " + f.help + "\n# TYPE " + f.name + " " + f.type + "\n";
        for (const auto& u : snapshot->upstreams)
            for (const auto& p : u.pools)
                for (const auto& b : p.backends)
                    out += std::string(f.name) + "{upstream=\"" + label(u.config.name) + "\",pool=\"" +
                           label(p.name) + "\",backend=\"" + label(b->address()) + "\",version=\"" +
                           label(p.version) + "\"} " + std::to_string(f.read(*b)) + "\n";
    }
    return out;
}

// ---- changes --------------------------------------------------------------------------------

admin::result server::commit(runtime::runtime_state next, std::string_view upstream)
{
    if (!config_->proxy.state_file.empty()) {
        try {
            runtime::save_state(config_->proxy.state_file, next);
        } catch (const std::exception& e) {
            return admin::result::fail(500, std::string("the change was not applied: cannot write the state file: ") +
                                                e.what());
        }
    }
    auto previous = std::move(state_);
    state_ = std::move(next);
    try {
        publish(config_);
        operator_state_ = true;
    } catch (const std::exception& e) {
        state_ = std::move(previous);
        if (!config_->proxy.state_file.empty())
            runtime::save_state(config_->proxy.state_file, state_);
        return admin::result::fail(400, e.what());
    }
    const auto snapshot = shared_->snapshots.load();
    for (const auto& u : snapshot->upstreams)
        if (u.config.name == upstream)
            return admin::result::ok(upstream_status(u));
    return admin::result::ok();
}

namespace {

admin::result unknown_upstream(std::string_view u)
{
    return admin::result::fail(404, "no upstream named '" + std::string(u) + "'");
}

admin::result unknown_pool(std::string_view u, std::string_view p)
{
    return admin::result::fail(404, "upstream '" + std::string(u) + "' has no pool named '" + std::string(p) + "'");
}

std::string describe(const runtime::weight_list& weights)
{
    std::string out;
    for (const auto& [name, weight] : weights)
        out += (out.empty() ? "" : " ") + name + "=" + std::to_string(weight);
    return out;
}

} // namespace

admin::result server::set_weights(std::string_view upstream,
                                  const std::vector<std::pair<std::string, std::int64_t>>& weights)
{
    auto next = state_;
    auto* u = next.find(upstream);
    if (!u)
        return unknown_upstream(upstream);
    if (weights.empty())
        return admin::result::fail(400, "give at least one pool=weight");
    auto proposed = u->weights();
    for (const auto& [pool, weight] : weights) {
        const auto it = std::find_if(proposed.begin(), proposed.end(), [&](const auto& w) { return w.first == pool; });
        if (it == proposed.end())
            return unknown_pool(upstream, pool);
        if (weight < 0 || weight > max_weight)
            return admin::result::fail(400, "weight of '" + pool + "' must be an integer from 0 to 1000000");
        it->second = static_cast<std::uint32_t>(weight);
    }
    if (std::all_of(proposed.begin(), proposed.end(), [](const auto& w) { return w.second == 0; }))
        return admin::result::fail(400, "weights cannot all be 0: no pool would take new sessions");

    const auto snapshot = shared_->snapshots.load();
    for (const auto& us : snapshot->upstreams) {
        if (us.config.name != upstream)
            continue;
        // A pool getting its first traffic must be able to take it (issue: guarded switch).
        for (const auto& [pool, weight] : proposed) {
            const auto* current = u->find(pool);
            const auto p = std::find_if(us.pools.begin(), us.pools.end(), [&](const auto& sp) { return sp.name == pool; });
            if (weight > 0 && current && current->weight == 0 && p != us.pools.end() && !has_usable_backend(*p))
                return admin::result::fail(409, "pool '" + pool + "' has no healthy backend to take new sessions");
        }
    }
    u->previous_weights = u->weights();
    for (const auto& [pool, weight] : proposed)
        u->find(pool)->weight = weight;
    spdlog::info("admin: {} weights {}", upstream, describe(proposed));
    return commit(std::move(next), upstream);
}

admin::result server::switch_to(std::string_view upstream, std::string_view pool, bool force)
{
    auto next = state_;
    auto* u = next.find(upstream);
    if (!u)
        return unknown_upstream(upstream);
    auto* target = u->find(pool);
    if (!target)
        return unknown_pool(upstream, pool);
    if (!force) {
        const auto snapshot = shared_->snapshots.load();
        for (const auto& us : snapshot->upstreams)
            for (const auto& p : us.pools)
                if (us.config.name == upstream && p.name == pool && !has_usable_backend(p))
                    return admin::result::fail(409, "pool '" + std::string(pool) +
                                                        "' has no healthy backend; use force to switch anyway");
    }
    u->previous_weights = u->weights();
    const auto weight = target->weight > 0 ? target->weight : 100;
    for (auto& p : u->pools)
        p.weight = p.name == pool ? weight : 0;
    spdlog::info("admin: {} switched to {}{}", upstream, pool, force ? " (forced)" : "");
    return commit(std::move(next), upstream);
}

admin::result server::rollback(std::string_view upstream)
{
    auto next = state_;
    auto* u = next.find(upstream);
    if (!u)
        return unknown_upstream(upstream);
    if (!u->previous_weights)
        return admin::result::fail(409, "nothing to roll back: no weights or switch change recorded");
    const auto restore = *u->previous_weights;
    u->previous_weights = u->weights(); // a second rollback undoes the first
    for (const auto& [pool, weight] : restore)
        if (auto* p = u->find(pool))
            p->weight = weight;
    spdlog::info("admin: {} rolled back to {}", upstream, describe(restore));
    return commit(std::move(next), upstream);
}

admin::result server::drain(std::string_view upstream, std::string_view pool, std::optional<config::duration> timeout)
{
    auto next = state_;
    auto* u = next.find(upstream);
    if (!u)
        return unknown_upstream(upstream);
    auto* p = u->find(pool);
    if (!p)
        return unknown_pool(upstream, pool);
    const auto grace = timeout.value_or(config_->proxy.drain_timeout);
    p->draining = true;
    p->drain_deadline_ms = unix_ms() + grace.count();
    expired_drains_.erase({std::string(upstream), std::string(pool)});
    spdlog::info("admin: draining {}/{} (grace {})", upstream, pool, config::format_duration(grace));
    return commit(std::move(next), upstream);
}

admin::result server::undrain(std::string_view upstream, std::string_view pool)
{
    auto next = state_;
    auto* u = next.find(upstream);
    if (!u)
        return unknown_upstream(upstream);
    auto* p = u->find(pool);
    if (!p)
        return unknown_pool(upstream, pool);
    p->draining = false;
    p->drain_deadline_ms.reset();
    expired_drains_.erase({std::string(upstream), std::string(pool)});
    spdlog::info("admin: undrained {}/{}", upstream, pool);
    return commit(std::move(next), upstream);
}

admin::result server::set_backends(std::string_view upstream, std::string_view pool,
                                   const std::vector<std::string>& addresses)
{
    auto next = state_;
    auto* u = next.find(upstream);
    if (!u)
        return unknown_upstream(upstream);
    for (const auto& text : addresses) {
        const auto address = config::parse_host_port(text);
        if (!address || address->port == 0)
            return admin::result::fail(400, "'" + text + "' is not a backend address (host:port)");
        boost::system::error_code ec;
        net::resolve(*address, ec);
        if (ec)
            return admin::result::fail(400, "cannot resolve backend " + text + ": " + ec.message());
    }
    auto* p = u->find(pool);
    if (!p) {
        // Green environments get their addresses at deploy time: a new pool, taking no new
        // sessions until weights or a switch say so.
        u->pools.push_back({std::string(pool), 0, false, std::nullopt, std::nullopt, true});
        p = &u->pools.back();
    }
    p->backends = addresses;
    spdlog::info("admin: {}/{} backends set to {} address(es)", upstream, pool, addresses.size());
    return commit(std::move(next), upstream);
}

// ---- drain deadlines ------------------------------------------------------------------------

void server::do_watch_drains()
{
    drain_watch_timer_.expires_after(std::chrono::milliseconds(100));
    drain_watch_timer_.async_wait([this](boost::system::error_code ec) {
        if (ec)
            return;
        const auto now = unix_ms();
        std::vector<std::pair<std::string, std::string>> expired;
        for (const auto& u : state_.upstreams)
            for (const auto& p : u.pools)
                if (p.draining && p.drain_deadline_ms && *p.drain_deadline_ms <= now &&
                    !expired_drains_.contains({u.name, p.name}))
                    expired.emplace_back(u.name, p.name);
        if (!expired.empty()) {
            // Republish: the snapshot now marks those pools expired (their sessions answer
            // 404), then close their streams.
            publish(config_);
            const auto snapshot = shared_->snapshots.load();
            std::vector<const upstream::backend*> targets;
            for (const auto& [un, pn] : expired) {
                expired_drains_.insert({un, pn});
                spdlog::info("drain of {}/{} reached its deadline: closing its streams", un, pn);
                for (const auto& u : snapshot->upstreams)
                    for (const auto& p : u.pools)
                        if (u.config.name == un && p.name == pn)
                            for (const auto& b : p.backends)
                                targets.push_back(b.get());
            }
            // Their sessions are over (they answer 404): forget them, so counts reach 0.
            for (const auto* b : targets)
                shared_->sessions.erase_owner(b->id());
            workers_->close_streams(targets, drain_close_window);
        }
        do_watch_drains();
    });
}

} // namespace turnout
