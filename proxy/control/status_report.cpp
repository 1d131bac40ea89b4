#include "turnout/control/status_report.hpp"

#include "turnout/control/rollout_status.hpp"

#include "turnout/control/pool_facts.hpp"
#include "turnout/control/tool_compatibility.hpp"
#include "turnout/net/io_backend.hpp"
#include "turnout/version.hpp"

#include <boost/json.hpp>

#include <cstdio>

namespace turnout::control {
namespace {

namespace json = boost::json;

std::int64_t count(const std::atomic<std::int64_t>& c)
{
    return c.load(std::memory_order_relaxed);
}
std::uint64_t count(const std::atomic<std::uint64_t>& c)
{
    return c.load(std::memory_order_relaxed);
}

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

json::object backend_status(const upstream::backend& b, const runtime::pool& p)
{
    const auto& c = b.counters();
    const auto* drain = p.drain_of(b);
    json::object out{{"address", b.address()},
                     {"health", health_status(b)},
                     {"healthy", b.healthy()},
                     // Takes no new sessions: its pool drains, or it does (here or in
                     // another pool listing it too).
                     {"draining", p.draining || drain != nullptr || b.draining()},
                     {"sessions", count(c.sessions)},
                     {"connections", count(c.connections)},
                     {"streams", count(c.streams)},
                     {"in_flight", count(c.in_flight)},
                     {"requests_total", count(c.requests_total)},
                     {"errors_total", count(c.errors_total)}};
    if (drain) {
        // Drained alone (`drain UPSTREAM POOL ADDR`), apart from its pool.
        out["drain_deadline_ms"] = drain->deadline_ms;
        out["drain_expired"] = drain->expired;
    }
    return out;
}

json::array names(const std::vector<std::string>& list)
{
    json::array out;
    for (const auto& name : list)
        out.emplace_back(name);
    return out;
}

/// SPEC.md's "tools" of a pool, against baseline (its name is added, for readers).
json::object tools_status(const tool_compatibility& c, const runtime::pool* baseline)
{
    return {{"hash", c.tools.hash ? json::value(hex(*c.tools.hash)) : json::value(nullptr)},
            {"baseline", baseline ? json::value(baseline->name) : json::value(nullptr)},
            {"added", names(c.changes.added)},
            {"removed", names(c.changes.removed)},
            {"changed", names(c.changes.changed)},
            {"consistent", c.tools.consistent}};
}

/// Whether hash differs from the baseline's (nothing to compare with: no drift). Out of
/// line, which also keeps GCC 12 from a false maybe-uninitialized on the optional.
[[gnu::noinline]] bool drifts_from(std::uint64_t hash, const std::optional<std::uint64_t>& baseline)
{
    return baseline.has_value() && hash != baseline.value();
}

} // namespace

json::object upstream_status(const runtime::upstream_state& u, const runtime::runtime_state& state)
{
    // Tools are judged against a running rollout's baseline, else the pool taking most new
    // sessions.
    const runtime::pool* baseline = default_baseline(u);
    if (const auto* runtime = state.find(u.config.name); runtime && runtime->rollout && runtime->rollout->active())
        for (const auto& p : u.pools)
            if (p.name == runtime->rollout->baseline)
                baseline = &p;
    const auto baseline_hash = baseline ? tools_of(*baseline).hash : std::nullopt;

    json::array pools;
    std::int64_t sessions = 0;
    for (const auto& p : u.pools) {
        json::array backends;
        for (const auto& b : p.backends) {
            auto entry = backend_status(*b, p);
            // Per backend too: which ones would change the tools clients see.
            const auto report = b->report();
            entry["health"].as_object()["drift_from_primary"] =
                report.tools_hash.has_value() && drifts_from(*report.tools_hash, baseline_hash);
            backends.push_back(std::move(entry));
            sessions += count(b->counters().sessions);
        }
        json::object pool{{"name", p.name},
                          {"weight", p.weight},
                          {"draining", p.draining},
                          {"backup", p.backup},
                          {"version", p.version},
                          {"backends", std::move(backends)}};
        if (p.drain_deadline_ms)
            pool["drain_deadline_ms"] = *p.drain_deadline_ms;
        pool["drain_expired"] = p.drain_expired;
        const auto compatible = compatibility(p, baseline);
        pool["tools"] = tools_status(compatible, baseline);
        // The single drift bit of before, kept for the scripts that read it.
        const auto& hash = compatible.tools.hash;
        if (hash)
            pool["tools_hash"] = hex(*hash);
        pool["tools_drift"] = !compatible.tools.consistent; // its own backends disagree
        pool["drift_from_primary"] = hash.has_value() && drifts_from(*hash, baseline_hash);
        pools.push_back(std::move(pool));
    }
    json::object out{{"name", u.config.name},
                     {"affinity", std::string(config::to_string(u.config.affinity))},
                     {"sessions", sessions},
                     {"pools", std::move(pools)}};
    if (const auto* runtime = state.find(u.config.name); runtime && runtime->previous_weights) {
        json::object previous;
        for (const auto& [name, weight] : *runtime->previous_weights)
            previous[name] = weight;
        out["previous_weights"] = std::move(previous);
    }
    const auto* runtime = state.find(u.config.name);
    out["rollout"] = rollout_status(runtime ? runtime->rollout : std::nullopt);
    return out;
}

json::object status_report(const runtime::snapshot& s, const runtime::runtime_state& state,
                           const process_facts& process)
{
    json::array upstreams;
    for (const auto& u : s.upstreams)
        upstreams.push_back(upstream_status(u, state));
    return {{"version", std::string(version())},
            {"uptime_s", process.uptime_s},
            {"pid", process.pid},
            {"io_backend", net::to_string(net::built_io_backend())},
            {"io_backend_note", net::io_backend_note()},
            {"draining", process.draining},
            {"connections", process.connections},
            {"session_table", process.table_sessions},
            {"upstreams", std::move(upstreams)}};
}

} // namespace turnout::control
