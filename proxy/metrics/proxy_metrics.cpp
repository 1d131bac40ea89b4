#include "turnout/metrics/proxy_metrics.hpp"

#include "turnout/metrics/exposition.hpp"
#include "turnout/net/io_backend.hpp"
#include "turnout/version.hpp"

#include <algorithm>
#include <cstdio>
#include <iterator>
#include <vector>

namespace turnout::metrics {
namespace {

std::int64_t read(const std::atomic<std::int64_t>& c)
{
    return c.load(std::memory_order_relaxed);
}
std::uint64_t read(const std::atomic<std::uint64_t>& c)
{
    return c.load(std::memory_order_relaxed);
}

void process_families(exposition& out, const process_figures& p)
{
    out.family("turnout_info", family_type::gauge, "turnout build information.");
    out.sample("turnout_info",
               labels{}.add("version", version()).add("io_backend", net::to_string(net::built_io_backend())),
               std::int64_t{1});
    out.family("turnout_uptime_seconds", family_type::gauge, "Seconds since turnout started.");
    out.sample("turnout_uptime_seconds", p.uptime_s);
    out.family("turnout_draining", family_type::gauge, "1 while turnout drains for shutdown.");
    out.sample("turnout_draining", std::int64_t{p.draining});
    out.family("turnout_store_connected", family_type::gauge,
               "1 while the runtime store answers (always 1 for a state file; etcd: 0 while unreachable).");
    out.sample("turnout_store_connected", std::int64_t{p.store_connected});
    out.family("turnout_client_connections", family_type::gauge, "Open client connections.");
    out.sample("turnout_client_connections", static_cast<std::int64_t>(p.client_connections));
    out.family(
        "turnout_read_buffers", family_type::gauge,
        "Read buffers held by connections (only while reading or forwarding, or waiting for an answer; "
        "idle connections and silent streams hold none).");
    out.sample("turnout_read_buffers", labels{}.add("side", "client"),
               static_cast<std::int64_t>(p.client_buffers));
    out.sample("turnout_read_buffers", labels{}.add("side", "backend"),
               static_cast<std::int64_t>(p.backend_buffers));
    out.family("turnout_session_table_sessions", family_type::gauge, "Sessions in the session table.");
    out.sample("turnout_session_table_sessions", static_cast<std::int64_t>(p.table_sessions));
    if (p.discovery && !p.discovery->empty()) {
        out.family("turnout_dns_resolution_ok", family_type::gauge,
                   "1 when the last resolution of a dns:/srv: backend name answered; 0 while it fails "
                   "(the last good set of addresses stays in force).");
        for (const auto& d : *p.discovery)
            out.sample("turnout_dns_resolution_ok", labels{}.add("name", d.name), std::int64_t{d.ok});
        out.family("turnout_dns_addresses", family_type::gauge, "Addresses a dns:/srv: backend name resolves to.");
        for (const auto& d : *p.discovery)
            out.sample("turnout_dns_addresses", labels{}.add("name", d.name), static_cast<std::int64_t>(d.addresses));
        out.family("turnout_dns_resolutions_total", family_type::counter, "Resolutions of a dns:/srv: backend name.");
        for (const auto& d : *p.discovery)
            out.sample("turnout_dns_resolutions_total", labels{}.add("name", d.name), d.queries);
        out.family("turnout_dns_failures_total", family_type::counter,
                   "Resolutions of a dns:/srv: backend name that failed.");
        for (const auto& d : *p.discovery)
            out.sample("turnout_dns_failures_total", labels{}.add("name", d.name), d.failures);
    }
    if (const auto* e = p.edge) {
        out.family("turnout_edge_refused_total", family_type::counter,
                   "Requests refused before routing: Host not allowed (421), Origin not allowed (403), "
                   "rate limit (429), open streams per client (429).");
        const std::pair<const char*, const std::atomic<std::uint64_t>*> reasons[] = {
            {"host", &e->host_rejected},
            {"origin", &e->origin_rejected},
            {"rate_limit", &e->rate_limited},
            {"streams", &e->streams_limited}};
        for (const auto& [reason, c] : reasons)
            out.sample("turnout_edge_refused_total", labels{}.add("reason", reason), read(*c));
    }
}

void pool_families(exposition& out, const runtime::snapshot& s)
{
    out.family("turnout_pool_weight", family_type::gauge, "New-session weight of a pool.");
    for (const auto& u : s.upstreams)
        for (const auto& p : u.pools)
            out.sample("turnout_pool_weight",
                       labels{}.add("upstream", u.config.name).add("pool", p.name).add("version", p.version),
                       std::int64_t{p.weight});
    out.family("turnout_pool_draining", family_type::gauge, "1 while a pool drains.");
    for (const auto& u : s.upstreams)
        for (const auto& p : u.pools)
            out.sample("turnout_pool_draining", labels{}.add("upstream", u.config.name).add("pool", p.name),
                       std::int64_t{p.draining});
}

using backend_writer = void (*)(exposition&, const char* name, const labels&, const upstream::backend&);

/// A family with one sample (or a histogram's series) per backend: either one value, read by
/// value, or what write says.
struct backend_family {
    const char* name;
    family_type type;
    const char* help;
    std::int64_t (*value)(const upstream::backend&) = nullptr;
    backend_writer write = nullptr;
};

std::int64_t counter(const std::atomic<std::uint64_t>& c)
{
    return static_cast<std::int64_t>(read(c));
}

void write_probe_latency(exposition& out, const char* name, const labels& l, const upstream::backend& b)
{
    if (const auto r = b.report(); r.probed)
        out.sample(name, l, r.last_latency_ms / 1000.0);
}

void write_responses(exposition& out, const char* name, const labels& l, const upstream::backend& b)
{
    for (int k = 0; k < 5; ++k)
        out.sample(name, l.with("code_class", std::to_string(k + 1) + "xx"),
                   read(b.counters().responses_by_class[k]));
}

void write_histogram(exposition& out, const char* name, const labels& l, const upstream::backend& b)
{
    const std::string base(name);
    const auto& c = b.counters();
    std::uint64_t cumulative = 0;
    for (std::size_t i = 0; i < std::size(upstream::latency_bounds); ++i) {
        cumulative += read(c.latency_buckets[i]);
        const bool last = i + 1 == std::size(upstream::latency_bounds);
        char le[32];
        std::snprintf(le, sizeof le, "%g", upstream::latency_bounds[i]);
        out.sample(base + "_bucket", l.with("le", last ? "+Inf" : le), cumulative);
    }
    out.sample(base + "_sum", l, read(c.latency_sum_us) / 1e6);
    out.sample(base + "_count", l, cumulative);
}

/// The response-head latency histogram with every fourth bound (doubling from 100 µs):
/// fine enough for a p99 in PromQL, a quarter of the series.
void write_head_latency(exposition& out, const char* name, const labels& l, const upstream::backend& b)
{
    using upstream::latency_histogram;
    const std::string base(name);
    latency_histogram::counts counts{};
    b.counters().head_latency.add_to(counts);
    std::uint64_t cumulative = 0;
    for (std::size_t i = 0; i < latency_histogram::bucket_count; ++i) {
        cumulative += counts[i];
        if (i % 4 == 0 && i + 1 < latency_histogram::bucket_count) {
            char le[32];
            std::snprintf(le, sizeof le, "%g", static_cast<double>(latency_histogram::upper_bound_us(i)) / 1e6);
            out.sample(base + "_bucket", l.with("le", le), cumulative);
        }
    }
    out.sample(base + "_bucket", l.with("le", "+Inf"), cumulative);
    out.sample(base + "_sum", l, static_cast<double>(b.counters().head_latency.sum_us()) / 1e6);
    out.sample(base + "_count", l, cumulative);
}

using backend = upstream::backend;

const backend_family backend_families[] = {
    {"turnout_backend_ejected", family_type::gauge,
     "1 while passive checks keep the backend from new sessions.",
     [](const backend& b) -> std::int64_t { return b.ejected(upstream::monotonic_ms(std::chrono::steady_clock::now())); }},
    {"turnout_backend_probe_latency_seconds", family_type::gauge, "Duration of the last active health probe.",
     nullptr, write_probe_latency},
    {"turnout_backend_responses_total", family_type::counter, "Answers forwarded, by status class.", nullptr,
     write_responses},
    {"turnout_backend_jsonrpc_errors_total", family_type::counter,
     "Answers (JSON, or the messages of an event stream) carrying a JSON-RPC error.",
     [](const backend& b) { return counter(b.counters().jsonrpc_errors_total); }},
    {"turnout_backend_tool_errors_total", family_type::counter,
     "tools/call results with isError: true.",
     [](const backend& b) { return counter(b.counters().tool_errors_total); }},
    {"turnout_backend_failed_requests_total", family_type::counter,
     "Requests that went wrong in any way a rollout counts (5xx, no answer, JSON-RPC or tool error).",
     [](const backend& b) { return counter(b.counters().failed_requests_total); }},
    {"turnout_backend_connect_failures_total", family_type::counter,
     "Connections to the backend refused or not accepted in time.",
     [](const backend& b) { return counter(b.counters().connect_failures_total); }},
    {"turnout_backend_request_duration_seconds", family_type::histogram,
     "Time from request to the end of the answer.", nullptr, write_histogram},
    {"turnout_backend_response_head_seconds", family_type::histogram,
     "Time from sending a request to the answer's head (for a POST answered with an event stream: to its JSON-RPC answer).", nullptr,
     write_head_latency},
    {"turnout_backend_healthy", family_type::gauge, "1 when the backend may take new sessions (health).",
     [](const backend& b) -> std::int64_t { return b.healthy(); }},
    {"turnout_backend_sessions", family_type::gauge, "Sessions pinned to the backend.",
     [](const backend& b) { return read(b.counters().sessions); }},
    {"turnout_backend_connections", family_type::gauge, "Open TCP connections to the backend.",
     [](const backend& b) { return read(b.counters().connections); }},
    {"turnout_backend_streams", family_type::gauge, "Open SSE streams from the backend.",
     [](const backend& b) { return read(b.counters().streams); }},
    {"turnout_backend_in_flight", family_type::gauge, "Requests sent to the backend and not finished.",
     [](const backend& b) { return read(b.counters().in_flight); }},
    {"turnout_backend_requests_total", family_type::counter, "Requests sent to the backend.",
     [](const backend& b) { return counter(b.counters().requests_total); }},
    {"turnout_backend_errors_total", family_type::counter,
     "Failed exchanges with the backend (connect, reset, garbage, timeout).",
     [](const backend& b) { return counter(b.counters().errors_total); }},
};

void rollout_families(exposition& out, const runtime::snapshot& s, const control_figures& control)
{
    if (!control.state)
        return;
    out.family("turnout_rollout_weight", family_type::gauge,
               "The canary's share of new sessions (percent) in the upstream's rollout.");
    for (const auto& u : control.state->upstreams)
        if (u.rollout)
            out.sample("turnout_rollout_weight", labels{}.add("upstream", u.name).add("pool", u.rollout->pool),
                       std::int64_t{u.rollout->weight()});
    out.family("turnout_rollout_state", family_type::gauge,
               "1 for the state the upstream's last rollout is in (running, paused, succeeded, rolled_back, aborted).");
    for (const auto& u : control.state->upstreams) {
        if (!u.rollout)
            continue;
        for (const auto phase : {runtime::rollout_phase::running, runtime::rollout_phase::paused,
                                 runtime::rollout_phase::succeeded, runtime::rollout_phase::rolled_back,
                                 runtime::rollout_phase::aborted})
            out.sample("turnout_rollout_state", labels{}.add("upstream", u.name).add("state", runtime::to_string(phase)),
                       std::int64_t{u.rollout->phase == phase});
    }
    out.family("turnout_rollout_interval_verdicts_total", family_type::counter,
               "Rollout analysis intervals judged, by verdict.");
    if (control.verdicts)
        for (const auto& [upstream, counts] : *control.verdicts)
            for (const auto v : {runtime::verdict::pass, runtime::verdict::fail, runtime::verdict::inconclusive})
                out.sample("turnout_rollout_interval_verdicts_total",
                           labels{}.add("upstream", upstream).add("verdict", runtime::to_string(v)),
                           counts[static_cast<std::size_t>(v)]);
    (void)s;
}

/// tools/call outcomes per pool, version and tool: the pool's backends summed, names the
/// pool did not announce folded into `other` (clients choose names; labels must stay few).
void tool_call_family(exposition& out, const runtime::snapshot& s, const control_figures& control)
{
    out.family("turnout_tool_calls_total", family_type::counter,
               "tools/call requests by pool, version, tool (announced by the pool, else other) and outcome.");
    for (const auto& u : s.upstreams) {
        for (const auto& p : u.pools) {
            const auto announced = control.announced_tools ? control.announced_tools(p) : std::vector<std::string>{};
            std::map<std::string, std::array<std::uint64_t, 3>> by_tool;
            for (const auto& b : p.backends)
                for (const auto& count : b->tool_calls().read()) {
                    const bool known = std::find(announced.begin(), announced.end(), count.name) != announced.end();
                    auto& sum = by_tool[known ? count.name : std::string("other")];
                    for (std::size_t i = 0; i < sum.size(); ++i)
                        sum[i] += count.by_outcome[i];
                }
            for (const auto& [tool, counts] : by_tool) {
                const auto l = labels{}.add("upstream", u.config.name).add("pool", p.name).add("version", p.version).add("tool", tool);
                for (std::size_t i = 0; i < counts.size(); ++i)
                    out.sample("turnout_tool_calls_total", l.with("outcome", upstream::tool_outcome_names[i]), counts[i]);
            }
        }
    }
}

} // namespace

std::string render(const runtime::snapshot& s, const process_figures& process, const control_figures& control)
{
    exposition out;
    process_families(out, process);
    pool_families(out, s);
    rollout_families(out, s, control);
    tool_call_family(out, s, control);

    // The one label set of a backend, shared by every backend family.
    struct labelled {
        labels l;
        const upstream::backend* b;
    };
    std::vector<labelled> backends;
    for (const auto& u : s.upstreams)
        for (const auto& p : u.pools)
            for (const auto& b : p.backends)
                backends.push_back({labels{}
                                        .add("upstream", u.config.name)
                                        .add("pool", p.name)
                                        .add("backend", b->address())
                                        .add("version", p.version),
                                    b.get()});
    // A family's samples are contiguous in the format: one pass over the backends per family.
    for (const auto& f : backend_families) {
        out.family(f.name, f.type, f.help);
        for (const auto& [l, b] : backends) {
            if (f.write)
                f.write(out, f.name, l, *b);
            else
                out.sample(f.name, l, f.value(*b));
        }
    }
    return out.take();
}

} // namespace turnout::metrics
