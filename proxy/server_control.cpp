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
#include <cstdio>
#include <iterator>
#include <map>

#include <unistd.h>

namespace turnout {
namespace {

namespace json = boost::json;

/// Streams of an expired drain end spread over this window, so their clients don't all
/// reconnect in the same instant.
constexpr auto drain_close_window = std::chrono::milliseconds(2000);
constexpr std::uint32_t max_weight = 1000000;

std::int64_t count(const std::atomic<std::int64_t>& c) { return c.load(std::memory_order_relaxed); }
std::uint64_t count(const std::atomic<std::uint64_t>& c) { return c.load(std::memory_order_relaxed); }

std::string hex(std::uint64_t v)
{
    char text[17];
    std::snprintf(text, sizeof text, "%016llx", static_cast<unsigned long long>(v));
    return text;
}

json::object health_status(const upstream::backend& b)
{
    const auto r = b.report();
    json::object h{{"probed", r.probed}, {"ejected", b.ejected(upstream::monotonic_ms(std::chrono::steady_clock::now()))}, {"ejections", b.ejections()}};
    if (r.probed) {
        h["last_ok"] = r.last_ok;
        h["last_probe_unix_ms"] = r.last_probe_unix_ms;
        h["latency_ms"] = r.last_latency_ms;
        if (!r.last_error.empty())
            h["last_error"] = r.last_error;
        if (r.tools_hash)
            h["tools_hash"] = hex(*r.tools_hash);
    }
    return h;
}

/// The tools hash every probed backend of p agrees on; nullopt when none was probed or they
/// disagree (drift inside the pool is reported apart).
std::optional<std::uint64_t> pool_tools_hash(const runtime::pool& p, bool& disagree)
{
    std::optional<std::uint64_t> agreed;
    disagree = false;
    for (const auto& b : p.backends) {
        const auto r = b->report();
        if (!r.tools_hash)
            continue;
        if (agreed && *agreed != *r.tools_hash)
            disagree = true;
        agreed = agreed.value_or(*r.tools_hash);
    }
    return disagree ? std::nullopt : agreed;
}

json::object backend_status(const upstream::backend& b, bool pool_draining)
{
    const auto& c = b.counters();
    return {{"address", b.address()},
            {"health", health_status(b)},
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

/// Whether hash differs from the primary pool's (nothing to compare with: no drift). Out of
/// line, which also keeps GCC 12 from a false maybe-uninitialized on the optional.
[[gnu::noinline]] bool drifts_from(std::uint64_t hash, const std::optional<std::uint64_t>& primary)
{
    return primary.has_value() && hash != primary.value();
}

bool has_usable_backend(const runtime::pool& p)
{
    return std::any_of(p.backends.begin(), p.backends.end(),
                       [](const auto& b) { return b->healthy() && b->in_service(); });
}

/// Why pool (in u) should not start taking new sessions, or nullopt: it has no healthy
/// backend, or its tools differ from those of the pool taking most traffic now.
std::optional<std::string> refusal(const runtime::upstream_state& u, const runtime::pool& target)
{
    if (!has_usable_backend(target))
        return "pool '" + target.name + "' has no healthy backend";
    const runtime::pool* primary = nullptr;
    for (const auto& p : u.pools)
        if (&p != &target && p.weight > 0 && (!primary || p.weight > primary->weight))
            primary = &p;
    if (!primary)
        return std::nullopt;
    bool disagree_target = false, disagree_primary = false;
    const auto target_hash = pool_tools_hash(target, disagree_target);
    const auto primary_hash = pool_tools_hash(*primary, disagree_primary);
    if (disagree_target)
        return "the backends of pool '" + target.name + "' disagree on their tools";
    if (target_hash && primary_hash && *target_hash != *primary_hash)
        return "the tools of pool '" + target.name + "' differ from those of pool '" + primary->name + "'";
    return std::nullopt;
}

} // namespace

// ---- status and metrics ---------------------------------------------------------------------

json::object server::upstream_status(const runtime::upstream_state& u) const
{
    // Tool-schema drift is judged against the pool taking most new sessions.
    const runtime::pool* primary = nullptr;
    for (const auto& p : u.pools)
        if (!primary || p.weight > primary->weight)
            primary = &p;
    bool ignored = false;
    const auto primary_hash = primary ? pool_tools_hash(*primary, ignored) : std::nullopt;

    json::array pools;
    std::int64_t sessions = 0;
    for (const auto& p : u.pools) {
        json::array backends;
        for (const auto& b : p.backends) {
            auto entry = backend_status(*b, p.draining);
            // Per backend too: which ones would change the tools clients see.
            const auto report = b->report();
            entry["health"].as_object()["drift_from_primary"] =
                report.tools_hash.has_value() && drifts_from(*report.tools_hash, primary_hash);
            backends.push_back(std::move(entry));
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
        bool disagree = false;
        const auto hash = pool_tools_hash(p, disagree);
        if (hash)
            pool["tools_hash"] = hex(*hash);
        pool["tools_drift"] = disagree; // its own backends disagree
        pool["drift_from_primary"] = hash.has_value() && drifts_from(*hash, primary_hash);
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
            {"pid", static_cast<std::int64_t>(::getpid())},
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
    const auto [client_buffers, response_buffers] = workers_ ? workers_->buffers_held() : std::pair<std::size_t, std::size_t>{};
    out += "# HELP turnout_read_buffers Read buffers held by connections (only while reading or forwarding, or waiting for an answer; idle connections and silent streams hold none).\n"
           "# TYPE turnout_read_buffers gauge\n";
    out += "turnout_read_buffers{side=\"client\"} " + std::to_string(client_buffers) + "\n";
    out += "turnout_read_buffers{side=\"backend\"} " + std::to_string(response_buffers) + "\n";
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
    const auto for_each_backend = [&](const auto& visit) {
        for (const auto& u : snapshot->upstreams)
            for (const auto& p : u.pools)
                for (const auto& b : p.backends)
                    visit("upstream=\"" + label(u.config.name) + "\",pool=\"" + label(p.name) + "\",backend=\"" +
                              label(b->address()) + "\",version=\"" + label(p.version) + "\"",
                          *b);
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
    out += "# HELP turnout_backend_ejected 1 while passive checks keep the backend from new sessions.\n"
           "# TYPE turnout_backend_ejected gauge\n";
    for_each_backend([&](const std::string& labels, const upstream::backend& b) {
        out += "turnout_backend_ejected{" + labels + "} " + (b.ejected(upstream::monotonic_ms(std::chrono::steady_clock::now())) ? "1" : "0") + "\n";
    });
    out += "# HELP turnout_backend_probe_latency_seconds Duration of the last active health probe.\n"
           "# TYPE turnout_backend_probe_latency_seconds gauge\n";
    for_each_backend([&](const std::string& labels, const upstream::backend& b) {
        const auto r = b.report();
        if (r.probed)
            out += "turnout_backend_probe_latency_seconds{" + labels + "} " + std::to_string(r.last_latency_ms / 1000.0) + "\n";
    });
    out += "# HELP turnout_backend_responses_total Answers forwarded, by status class.\n"
           "# TYPE turnout_backend_responses_total counter\n";
    for_each_backend([&](const std::string& labels, const upstream::backend& b) {
        for (int k = 0; k < 5; ++k)
            out += "turnout_backend_responses_total{" + labels + ",code_class=\"" + std::to_string(k + 1) + "xx\"} " +
                   std::to_string(count(b.counters().responses_by_class[k])) + "\n";
    });
    out += "# HELP turnout_backend_jsonrpc_errors_total application/json answers carrying a JSON-RPC error.\n"
           "# TYPE turnout_backend_jsonrpc_errors_total counter\n";
    for_each_backend([&](const std::string& labels, const upstream::backend& b) {
        out += "turnout_backend_jsonrpc_errors_total{" + labels + "} " +
               std::to_string(count(b.counters().jsonrpc_errors_total)) + "\n";
    });
    out += "# HELP turnout_backend_request_duration_seconds Time from request to the end of the answer.\n"
           "# TYPE turnout_backend_request_duration_seconds histogram\n";
    for_each_backend([&](const std::string& labels, const upstream::backend& b) {
        std::uint64_t cumulative = 0;
        for (std::size_t i = 0; i < std::size(upstream::latency_bounds); ++i) {
            cumulative += count(b.counters().latency_buckets[i]);
            const bool last = i + 1 == std::size(upstream::latency_bounds);
            char le[32];
            std::snprintf(le, sizeof le, "%g", upstream::latency_bounds[i]);
            out += "turnout_backend_request_duration_seconds_bucket{" + labels + ",le=\"" + (last ? "+Inf" : le) + "\"} " +
                   std::to_string(cumulative) + "\n";
        }
        out += "turnout_backend_request_duration_seconds_sum{" + labels + "} " +
               std::to_string(count(b.counters().latency_sum_us) / 1e6) + "\n";
        out += "turnout_backend_request_duration_seconds_count{" + labels + "} " + std::to_string(cumulative) + "\n";
    });

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

/// The pool `pool` of upstream `upstream` in state, or the 404 that names what is unknown.
struct pool_lookup {
    runtime::upstream_runtime* upstream = nullptr;
    runtime::pool_runtime* pool = nullptr;
    admin::result error;
};

pool_lookup find_pool(runtime::runtime_state& state, std::string_view upstream, std::string_view pool)
{
    pool_lookup found;
    found.upstream = state.find(upstream);
    if (!found.upstream) {
        found.error = unknown_upstream(upstream);
        return found;
    }
    found.pool = found.upstream->find(pool);
    if (!found.pool)
        found.error = unknown_pool(upstream, pool);
    return found;
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
        // A pool getting its first traffic must be able to take it (guarded, like switch).
        for (const auto& [pool, weight] : proposed) {
            const auto* current = u->find(pool);
            const auto p = std::find_if(us.pools.begin(), us.pools.end(), [&](const auto& sp) { return sp.name == pool; });
            if (weight > 0 && current && current->weight == 0 && p != us.pools.end())
                if (const auto why = refusal(us, *p))
                    return admin::result::fail(409, *why + "; use switch --force to send it sessions anyway");
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
    auto [u, target, missing] = find_pool(next, upstream, pool);
    if (!target)
        return missing;
    if (!force) {
        const auto snapshot = shared_->snapshots.load();
        for (const auto& us : snapshot->upstreams)
            for (const auto& p : us.pools)
                if (us.config.name == upstream && p.name == pool)
                    if (const auto why = refusal(us, p))
                        return admin::result::fail(409, *why + "; use force to switch anyway");
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
    auto [u, p, missing] = find_pool(next, upstream, pool);
    if (!p)
        return missing;
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
    auto [u, p, missing] = find_pool(next, upstream, pool);
    if (!p)
        return missing;
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
    std::vector<std::pair<std::string, boost::asio::ip::tcp::endpoint>> unseen;
    for (const auto& text : addresses) {
        const auto address = config::parse_host_port(text);
        if (!address || address->port == 0)
            return admin::result::fail(400, "'" + text + "' is not a backend address (host:port)");
        boost::system::error_code ec;
        const auto endpoint = net::resolve(*address, ec);
        if (ec)
            return admin::result::fail(400, "cannot resolve backend " + text + ": " + ec.message());
        if (!shared_->backends.find(text))
            unseen.emplace_back(text, endpoint);
    }
    // With active checks on, a backend never seen before takes nothing until a probe passed:
    // nothing goes to an environment that was never verified.
    const auto* configured = config_->find_upstream(upstream);
    if (configured && configured->health && configured->health->kind != config::health_kind::none)
        for (const auto& [text, endpoint] : unseen)
            shared_->backends.obtain(text, endpoint)->set_healthy(false);
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
