#include "turnout/nginx/upstream_translation.hpp"

#include "turnout/config/duration.hpp"
#include "turnout/nginx/values.hpp"

#include <algorithm>
#include <set>
#include <utility>

namespace turnout::nginx {

void upstream_translation::upstream_block(const directive& d)
{
    if (d.args.size() != 1 || !d.has_block)
        return st_.unknown(d);
    const auto& def = st_.upstreams.at(d.args[0]);
    const bool direct = st_.referenced.count("http://" + d.args[0]) || st_.referenced.count("https://" + d.args[0]);
    const bool split = std::any_of(st_.splits.begin(), st_.splits.end(), [&](const auto& s) {
        return std::any_of(s.second.shares.begin(), s.second.shares.end(),
                           [&](const auto& v) { return v.first == d.args[0]; });
    });
    if (direct || !split)
        ensure_upstream(d.args[0], false);
    st_.add(d, verdict::translated,
           std::string(direct || !split ? "[[upstream]] " + safe_name(d.args[0]) : "") +
               (split ? std::string(direct ? " and " : "") + "a pool of the split_clients upstream" : ""));
    std::set<std::string> weights;
    for (const auto& s : d.block)
        if (s.name == "server")
            for (const auto& a : s.args)
                if (a.starts_with("weight="))
                    weights.insert(a.substr(7));
    for (const auto& s : d.block)
        upstream_member(s, def, weights.size() > 1, split);
}

void upstream_translation::upstream_member(const directive& s, const upstream_def& def, bool uneven_weights,
                                           bool in_split)
{
    const std::string_view n = s.name;
    if (n == "server") {
        if (s.args.empty() || !backend_address(s.args[0], 80))
            return (void)st_.add(s, verdict::untranslated,
                                "turnout's backends are host:port over TCP (no unix: sockets)");
        // Each parameter that does not carry over adds its why; the backup note comes first.
        constexpr std::string_view weight_note = "weight: turnout spreads new sessions evenly inside a pool";
        constexpr std::string_view passive_note = "passive checks: max_fails failures in a row (connect errors and "
                                                  "5xx answers) eject the backend for fail_timeout";
        constexpr std::string_view backup_note = "backup: a backup pool (backup = true), which takes new sessions "
                                                 "when the primary pool has no available backend";
        constexpr std::string_view split_backup_note =
            "; in a split_clients upstream the backup pools take new sessions only when no share's pool has an "
            "available backend (nginx would keep each share's backup to that share)";
        std::string notes;
        const auto note = [&notes](std::string_view text) {
            notes.append("; ").append(text);
        };
        verdict v = verdict::translated;
        bool down = false, backup = false, passive = false;
        for (std::size_t i = 1; i < s.args.size(); ++i) {
            const std::string_view a = s.args[i];
            if (a == "down") {
                down = true;
            } else if (a == "backup") {
                backup = true;
            } else if (a.starts_with("weight=") && uneven_weights) {
                v = verdict::approximated;
                note(weight_note);
            } else if (a.starts_with("max_fails=") || a.starts_with("fail_timeout=")) {
                v = verdict::approximated;
                if (!std::exchange(passive, true))
                    note(passive_note);
            } else if (!a.starts_with("weight=")) {
                v = verdict::approximated;
                note(std::string(a) + " is not kept");
            }
        }
        if (down)
            return (void)st_.add(s, verdict::translated, "down: left out, as nginx sends it nothing");
        std::string why = backup ? std::string(backup_note) : std::string("a backend of the pool");
        if (backup && in_split) {
            v = verdict::approximated;
            why += split_backup_note;
        }
        why += notes;
        st_.add(s, v, why);
        return;
    }
    if (n == "hash") {
        if (def.by_session)
            return (void)st_.add(s, verdict::translated,
                                "turnout's session table: each session stays on the backend that created it, "
                                "and an unknown id goes by a consistent hash over the healthy backends");
        return (void)st_.add(s, verdict::approximated,
                            "turnout keeps MCP sessions on their backend; requests without a session are "
                            "spread by weight, not by a hash of " +
                                (s.args.empty() ? std::string("the key") : s.args[0]));
    }
    if (n == "ip_hash" || n == "sticky")
        return (void)st_.add(s, verdict::approximated,
                            "turnout keeps MCP sessions on their backend; requests without a session are "
                            "spread by weight, not by client address");
    if (n == "least_conn" || n == "random" || n == "least_time")
        return (void)st_.add(s, verdict::approximated,
                            "turnout picks the less busy of two random backends (power of two choices)");
    if (n == "keepalive")
        return (void)st_.add(s, verdict::translated,
                            "nothing to set: turnout keeps idle backend connections per worker, as many as "
                            "the peak needed");
    if (n == "keepalive_timeout" || n == "keepalive_requests" || n == "keepalive_time")
        return (void)st_.add(s, verdict::ignored, "turnout closes idle backend connections after a minute");
    if (n == "zone")
        return (void)st_.add(s, verdict::ignored, "turnout's workers share their backends' state already");
    if (!common_(s))
        st_.unknown(s);
}

// The turnout upstream for an nginx upstream named name (or a host:port) behind proxy_pass.
std::string upstream_translation::ensure_upstream(const std::string& name, bool tls)
{
    const auto it = st_.upstreams.find(name);
    const std::string turnout_name = safe_name(name);
    auto* u = st_.model.find_upstream(turnout_name);
    if (!u) {
        toml_model::upstream made;
        made.name = turnout_name;
        if (it != st_.upstreams.end()) {
            made.comment = "upstream " + name + " (" + it->second.block->file + ":" +
                           std::to_string(it->second.block->line) + ")";
            add_pools(made, it->second, "main", 100);
        } else {
            made.comment = "proxy_pass to " + name;
            made.pools.push_back({"main", 100, {*backend_address(name, tls ? 443 : 80)}, tls, ""});
        }
        st_.model.upstreams.push_back(std::move(made));
        u = &st_.model.upstreams.back();
    }
    if (tls)
        for (auto& p : u->pools)
            p.tls = true;
    return turnout_name;
}

void upstream_translation::add_pools(toml_model::upstream& u, const upstream_def& def, const std::string& pool, std::uint32_t weight)
{
    u.pools.push_back({pool, weight, def.primary, false, ""});
    if (!def.backup.empty())
        u.pools.push_back({pool + "-backup", 0, def.backup, false,
                           "nginx's backup servers: new sessions come here when no primary has an available backend",
                           true});
    if (def.max_fails && !u.passive_failures)
        u.passive_failures = *def.max_fails;
    if (def.fail_timeout && !u.passive_backoff && def.fail_timeout->count() > 0)
        u.passive_backoff = config::format_duration(*def.fail_timeout);
    if (def.max_fails && !def.fail_timeout && !u.passive_backoff)
        u.passive_backoff = "10s"; // nginx's default fail_timeout
}

void upstream_translation::split_block(const directive& d)
{
    const auto it = st_.splits.find(d.args.size() == 2 ? d.args[1] : "");
    if (it == st_.splits.end() || !d.has_block)
        return st_.unknown(d);
    const auto& s = it->second;
    if (!s.problem.empty())
        return (void)st_.add(d, verdict::untranslated, s.problem);
    for (const auto& [value, bp] : s.shares)
        if (!st_.upstreams.count(value))
            return (void)st_.add(d, verdict::untranslated,
                                "value \"" + value + "\" is not an upstream: turnout splits between pools only");
    std::string shares;
    for (const auto& [value, bp] : s.shares)
        shares += (shares.empty() ? "" : ", ") + value + " " + percent_text(bp);
    if (s.key == "$http_mcp_session_id")
        return (void)st_.add(d, verdict::translated,
                            "pools by weight (" + shares +
                                ") for new sessions; and now each session is pinned to the backend that "
                                "created it, which nginx's split (keyed on an id the first request lacks) "
                                "did not do");
    st_.add(d, verdict::approximated,
           "pools by weight (" + shares + ") for new sessions, not by a hash of " + s.key +
               "; each session is then pinned to the backend that created it (session pinning, which nginx's "
               "split lacked, is added)");
}

std::string upstream_translation::ensure_split(const std::string& var, bool tls)
{
    const auto& s = st_.splits.at(var);
    std::string name = safe_name(var.substr(1));
    if (st_.upstreams.count(name) && !st_.model.find_upstream(name))
        name += "_split";
    if (!st_.model.find_upstream(name)) {
        toml_model::upstream made;
        made.name = name;
        made.comment = "split_clients " + s.key + " " + var + " (" + s.block->file + ":" +
                       std::to_string(s.block->line) + "): one pool per upstream, weights in " +
                       (std::all_of(s.shares.begin(), s.shares.end(), [](const auto& v) { return v.second % 100 == 0; })
                            ? "percent"
                            : "hundredths of a percent");
        const bool whole = std::all_of(s.shares.begin(), s.shares.end(),
                                       [](const auto& v) { return v.second % 100 == 0; });
        for (const auto& [value, bp] : s.shares) {
            const auto w = static_cast<std::uint32_t>(whole ? bp / 100 : bp);
            const auto pool_name = safe_name(value);
            const auto existing = std::find_if(made.pools.begin(), made.pools.end(),
                                               [&](const auto& p) { return p.name == pool_name; });
            if (existing != made.pools.end())
                existing->weight += w;
            else
                add_pools(made, st_.upstreams.at(value), safe_name(value), w);
        }
        st_.model.upstreams.push_back(std::move(made));
    }
    if (tls)
        for (auto& p : st_.model.find_upstream(name)->pools)
            p.tls = true;
    return name;
}

void upstream_translation::map_block(const directive& d)
{
    const auto it = st_.maps.find(d.args.size() == 2 ? d.args[1] : "");
    if (it == st_.maps.end() || !d.has_block)
        return st_.unknown(d);
    const auto& m = it->second;
    if (!st_.referenced.count("http://" + d.args[1]) && !st_.referenced.count("https://" + d.args[1]))
        return (void)st_.add(d, verdict::ignored, "no proxy_pass uses " + d.args[1]);
    if (!m.problem.empty())
        return (void)st_.add(d, verdict::untranslated, m.problem);
    st_.add(d, verdict::translated, "one route per host name, to the upstream it names");
}

void upstream_translation::finish()
{
    for (const auto& entry : st_.upstreams) {
        const std::string& name = entry.first;
        const bool in_split = std::any_of(st_.splits.begin(), st_.splits.end(), [&](const auto& s) {
            return std::any_of(s.second.shares.begin(), s.second.shares.end(),
                               [&](const auto& v) { return v.first == name; });
        });
        if (!in_split && !st_.model.find_upstream(safe_name(name)))
            ensure_upstream(name, false);
    }
    for (auto& u : st_.model.upstreams)
        std::stable_partition(u.pools.begin(), u.pools.end(), [](const auto& p) { return p.weight > 0; });
}

} // namespace turnout::nginx
