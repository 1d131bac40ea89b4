// [[upstream]] and what it holds: pools, health checks, rollout defaults.
#include "turnout/config/rules.hpp"
#include "turnout/config/table_reader.hpp"

#include <set>

namespace turnout::config::detail {

namespace {

constexpr std::int64_t max_rise_fall = 1000;

pool_config read_pool(const context& ctx, const toml::table& table)
{
    const table_reader r{ctx, table, "[[upstream.pool]]",
                         {"name", "weight", "version", "backends", "backup", "tls", "tls_ca_file", "tls_server_name"}};
    pool_config pool;
    pool.name = r.require_string("name");
    if (!is_valid_name(pool.name))
        r.fail_at("name", std::string{name_rule});
    pool.weight = static_cast<std::uint32_t>(r.get_integer("weight", 0, max_weight).value_or(0));
    pool.version = r.get_string("version").value_or("");
    if (const auto* node = r.find("backup")) {
        if (!node->is_boolean())
            r.fail_type(*node, "backup", "true or false");
        pool.backup = node->as_boolean()->get();
    }
    if (const auto* node = r.find("tls")) {
        if (!node->is_boolean())
            r.fail_type(*node, "tls", "true or false");
        pool.tls = node->as_boolean()->get();
    }
    pool.tls_ca_file = r.get_path("tls_ca_file").value_or("");
    pool.tls_server_name = r.get_string("tls_server_name").value_or("");
    if (!pool.tls && (!pool.tls_ca_file.empty() || !pool.tls_server_name.empty()))
        r.fail_at(r.find("tls_ca_file") ? "tls_ca_file" : "tls_server_name", "needs tls = true in the same pool");

    // Empty is fine: a green pool may get its backends at run time through the admin socket.
    std::set<std::pair<std::string, std::uint16_t>> seen;
    std::set<std::string> seen_names;
    for (const auto& [text, node] : r.get_strings("backends")) {
        if (is_discovery_name(text)) {
            std::string why;
            auto name = parse_discovery_name(text, why);
            if (!name)
                r.fail_at(*node, "backends", why);
            if (!seen_names.insert(name->text).second)
                r.fail_at(*node, "backends", "duplicate backend \"" + text + "\" in pool '" + pool.name + "'");
            pool.discovered.push_back(std::move(*name));
            continue;
        }
        host_port backend = read_address(r, "backends", text, *node);
        if (backend.port == 0)
            r.fail_at(*node, "backends", "port must be between 1 and 65535 in \"" + text + "\"");
        if (!seen.insert(endpoint_key(backend)).second)
            r.fail_at(*node, "backends", "duplicate backend \"" + text + "\" in pool '" + pool.name + "'");
        pool.backends.push_back(std::move(backend));
    }
    return pool;
}

// Active checks land in upstream.health, left empty for kind = "none": the header's contract
// is that an absent health config means no active checks, and one test (has_value) is easier
// to get right than two. Passive settings are read whatever the kind.
void read_health(const context& ctx, const toml::table& table, upstream_config& upstream)
{
    const table_reader r{ctx, table, "[upstream.health]",
                         {"kind", "path", "interval", "timeout", "rise", "fall", "passive_failures", "passive_backoff",
                          "passive_backoff_max"}};
    health_config health;
    if (const auto kind = r.get_string("kind")) {
        if (*kind == "mcp")
            health.kind = health_kind::mcp;
        else if (*kind == "http")
            health.kind = health_kind::http;
        else if (*kind == "none")
            health.kind = health_kind::none;
        else
            r.fail_at("kind", "expected \"mcp\", \"http\" or \"none\", got \"" + *kind + "\"");
    }
    if (const auto path = r.get_string("path")) {
        if (!path->starts_with('/'))
            r.fail_at("path", "must start with '/', got \"" + *path + "\"");
        health.path = *path;
    }
    constexpr duration positive{1};
    health.interval = r.get_duration("interval", positive).value_or(health.interval);
    health.timeout = r.get_duration("timeout", positive).value_or(health.timeout);
    health.rise = static_cast<unsigned>(r.get_integer("rise", 1, max_rise_fall).value_or(health.rise));
    health.fall = static_cast<unsigned>(r.get_integer("fall", 1, max_rise_fall).value_or(health.fall));

    auto& passive = upstream.passive;
    passive.failures =
        static_cast<unsigned>(r.get_integer("passive_failures", 0, max_rise_fall).value_or(passive.failures));
    passive.backoff = r.get_duration("passive_backoff", positive).value_or(passive.backoff);
    // A long backoff given alone raises the default ceiling rather than contradicting it.
    passive.backoff_max =
        r.get_duration("passive_backoff_max", positive).value_or(std::max(passive.backoff_max, passive.backoff));
    if (passive.backoff_max < passive.backoff)
        r.fail_at("passive_backoff_max", "passive_backoff_max (" + format_duration(passive.backoff_max) +
                      ") must not be shorter than passive_backoff (" + format_duration(passive.backoff) + ")");

    if (health.kind != health_kind::none)
        upstream.health = health;
}

void read_rollout(const context& ctx, const toml::table& table, rollout_config& rollout)
{
    const table_reader r{ctx, table, "[upstream.rollout]",
                         {"steps", "interval", "failure_limit", "min_requests", "max_error_ratio", "error_rate_floor",
                          "max_p99_ratio", "latency_floor", "on_failure", "rollback_drain", "webhook"}};
    if (r.find("steps")) {
        std::vector<rollout_step> steps;
        for (const auto& [text, node] : r.get_strings("steps")) {
            std::string why;
            const auto step = parse_rollout_step(text, why);
            if (!step)
                r.fail_at(*node, "steps", why);
            steps.push_back(*step);
        }
        if (const auto problem = steps_problem(steps))
            r.fail_at("steps", *problem);
        rollout.steps = std::move(steps);
    }
    auto& rules = rollout.rules;
    constexpr duration positive{1};
    rules.interval_ms = r.get_duration("interval", positive).value_or(duration{rules.interval_ms}).count();
    rules.failure_limit =
        static_cast<unsigned>(r.get_integer("failure_limit", 1, 1000).value_or(rules.failure_limit));
    rules.min_requests = static_cast<std::uint64_t>(
        r.get_integer("min_requests", 0, std::numeric_limits<std::int64_t>::max()).value_or(
            static_cast<std::int64_t>(rules.min_requests)));
    rules.max_error_ratio = r.get_number("max_error_ratio", 1.0).value_or(rules.max_error_ratio);
    rules.error_rate_floor = r.get_number("error_rate_floor", 0.0).value_or(rules.error_rate_floor);
    if (rules.error_rate_floor > 1)
        r.fail_at("error_rate_floor", "is a share of requests: between 0 and 1");
    rules.max_p99_ratio = r.get_number("max_p99_ratio", 1.0).value_or(rules.max_p99_ratio);
    if (const auto floor = r.get_duration("latency_floor"))
        rules.latency_floor_ms = static_cast<double>(floor->count());
    if (const auto action = r.get_string("on_failure")) {
        const auto parsed = parse_failure_action(*action);
        if (!parsed)
            r.fail_at("on_failure", "expected \"rollback\" or \"pause\", got \"" + *action + "\"");
        rules.on_failure = *parsed;
    }
    rules.rollback_drain_ms = r.get_duration("rollback_drain").value_or(duration{rules.rollback_drain_ms}).count();
    if (const auto webhook = r.get_string("webhook")) {
        if (!webhook->empty() && !is_valid_webhook(*webhook))
            r.fail_at("webhook", "expected an http:// URL such as \"http://127.0.0.1:9000/hook\", got \"" +
                                     *webhook + "\"");
        rules.webhook = *webhook;
    }
}

upstream_config read_upstream(const context& ctx, const toml::table& table)
{
    const table_reader r{ctx, table, "[[upstream]]",
                         {"name", "affinity", "affinity_key_file", "session_idle_timeout", "pool", "health",
                          "rollout", "client_key"}};
    upstream_config upstream;
    upstream.name = r.require_string("name");
    if (!is_valid_name(upstream.name))
        r.fail_at("name", std::string{name_rule});

    if (const auto affinity = r.get_string("affinity")) {
        if (*affinity == "table")
            upstream.affinity = affinity_kind::table;
        else if (*affinity == "token")
            upstream.affinity = affinity_kind::token;
        else
            r.fail_at("affinity", "expected \"table\" or \"token\", got \"" + *affinity + "\"");
    }
    upstream.affinity_key_file = r.get_path("affinity_key_file").value_or("");
    if (upstream.affinity == affinity_kind::token && upstream.affinity_key_file.empty())
        r.fail_at("affinity", "\"token\" needs affinity_key_file (the key that signs session tokens)");
    upstream.session_idle_timeout =
        r.get_duration("session_idle_timeout", duration{1}).value_or(upstream.session_idle_timeout);
    if (r.find("client_key"))
        upstream.client_key = read_client_key(r, "client_key", true);

    const auto pools = r.get_tables("pool");
    if (pools.empty())
        ctx.fail(r.source(), "upstream '" + upstream.name + "' has no [[upstream.pool]]; it needs at least one");
    for (const toml::table* pool_table : pools) {
        pool_config pool = read_pool(ctx, *pool_table);
        const bool duplicate = std::any_of(upstream.pools.begin(), upstream.pools.end(),
                                           [&](const pool_config& p) { return p.name == pool.name; });
        if (duplicate)
            ctx.fail(pool_table->get("name")->source(),
                     "upstream.pool.name: duplicate pool '" + pool.name + "' in upstream '" + upstream.name + "'");
        upstream.pools.push_back(std::move(pool));
    }

    if (const toml::table* health = r.get_table("health"))
        read_health(ctx, *health, upstream);
    if (const toml::table* rollout = r.get_table("rollout"))
        read_rollout(ctx, *rollout, upstream.rollout);
    return upstream;
}

} // namespace

void read_upstreams(const context& ctx, const table_reader& root, configuration& config)
{
    for (const toml::table* table : root.get_tables("upstream")) {
        upstream_config upstream = read_upstream(ctx, *table);
        if (config.find_upstream(upstream.name))
            ctx.fail(table->get("name")->source(), "upstream.name: duplicate upstream '" + upstream.name + "'");
        config.upstreams.push_back(std::move(upstream));
    }
}

} // namespace turnout::config::detail
