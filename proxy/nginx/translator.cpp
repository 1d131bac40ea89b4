#include "turnout/nginx/translator.hpp"

#include "turnout/config/duration.hpp"
#include "turnout/nginx/definitions.hpp"
#include "turnout/nginx/directive_kinds.hpp"
#include "turnout/nginx/toml_model.hpp"
#include "turnout/nginx/values.hpp"

#include <algorithm>
#include <filesystem>
#include <limits>
#include <map>
#include <optional>
#include <set>
#include <utility>

namespace turnout::nginx {

namespace {

constexpr std::size_t max_directive_text = 72;

std::string shorten(std::string text)
{
    for (char& c : text)
        if (c == '\n' || c == '\r' || c == '\t')
            c = ' ';
    if (text.size() > max_directive_text)
        text = text.substr(0, max_directive_text - 3) + "...";
    return text;
}

bool is_variable_only(std::string_view s)
{
    return s.size() > 1 && s.front() == '$' && s.find_first_of("/:$", 1) == std::string_view::npos;
}

// A [proxy] value some directive set, and every directive that set it (to report together).
struct setting_uses {
    std::vector<std::pair<std::uint64_t, std::size_t>> uses; // value, report line index
};

struct listen_info {
    const directive* d = nullptr;
    std::string address;
    bool ssl = false;
    bool default_server = false;
};

struct server_info {
    const directive* d = nullptr;
    std::vector<listen_info> listens;
    bool catch_all = false;
};

struct scope {
    std::vector<std::string> certs, keys;
};

class translator {
public:
    explicit translator(const std::string& main_file) { model_.source = main_file; }

    translation run(const std::vector<directive>& conf)
    {
        gather(conf);
        for (const auto& d : conf)
            main_directive(d);
        finish();
        translation t;
        for (const auto& line : report_)
            if (line.what == verdict::untranslated)
                model_.gaps.push_back(line.text());
        t.toml = model_.text();
        t.report = std::move(report_);
        return t;
    }

private:
    std::size_t report(const directive& d, verdict v, std::string why)
    {
        report_.push_back({d.file, d.line, v, shorten(d.text()), std::move(why)});
        return report_.size() - 1;
    }

    // ---- pass 1: what proxy_pass may name --------------------------------------------------

    void gather(const std::vector<directive>& list)
    {
        for (const auto& d : list) {
            if (d.name == "upstream" && d.has_block && d.args.size() == 1)
                upstreams_.emplace(d.args[0], read_upstream(d));
            else if (d.name == "split_clients" && d.has_block && d.args.size() == 2)
                splits_.emplace(d.args[1], read_split(d));
            else if (d.name == "map" && d.has_block && d.args.size() == 2)
                maps_.emplace(d.args[1], read_map(d));
            else if (d.name == "proxy_pass" && !d.args.empty())
                referenced_.insert(d.args[0]);
            if (d.has_block && d.name != "upstream" && d.name != "split_clients" && d.name != "map")
                gather(d.block);
        }
    }

    // ---- contexts ---------------------------------------------------------------------------

    bool common_directive(const directive& d)
    {
        if (d.name == "include") {
            report(d, verdict::translated,
                   d.included.empty() ? "matches no file (as in nginx, no error)"
                                      : "read " + std::to_string(d.included.size()) + " file(s)");
            return true;
        }
        if (harmless_value(d.name, d.args)) {
            report(d, verdict::ignored, "nginx's default; nothing to do");
            return true;
        }
        if (const auto why = impossible_reason(d.name)) {
            report(d, verdict::untranslated, std::string(*why));
            return true;
        }
        if (const auto why = no_effect_reason(d.name)) {
            report(d, verdict::ignored, std::string(*why));
            return true;
        }
        if (d.name.starts_with("gzip_") || d.name.starts_with("ssl_session") || d.name.starts_with("proxy_cache_") ||
            d.name.starts_with("open_file_cache")) {
            report(d, verdict::ignored, "a setting of a feature turnout does not use");
            return true;
        }
        if (d.name == "error_log") {
            error_log(d);
            return true;
        }
        if (d.name == "access_log") {
            access_log(d);
            return true;
        }
        return false;
    }

    void main_directive(const directive& d)
    {
        if (common_directive(d))
            return;
        if (d.name == "worker_processes" && d.args.size() == 1) {
            const auto n = parse_size(d.args[0]);
            if (d.args[0] == "auto" || (n && *n <= 1024)) {
                model_.set("workers", d.args[0] == "auto" ? "0" : std::to_string(*n),
                           d.args[0] == "auto" ? "worker_processes auto: one per core" : "worker_processes");
                report(d, verdict::translated, "workers (threads in one process)");
                return;
            }
        }
        if (d.name == "worker_shutdown_timeout" && d.args.size() == 1)
            if (const auto t = parse_time(d.args[0])) {
                model_.set("drain_timeout", toml_string(config::format_duration(*t)), "worker_shutdown_timeout");
                report(d, verdict::translated, "drain_timeout");
                return;
            }
        if (d.name == "pid" && d.args.size() == 1) {
            model_.set("pid_file", toml_string(resolve(d, d.args[0])), "pid");
            report(d, verdict::translated, "pid_file (turnout -s reload|reopen|quit|stop reads it)");
            return;
        }
        if (d.name == "events") {
            report(d, verdict::ignored, "connection processing is turnout's own (epoll, one loop per worker)");
            for (const auto& e : d.block)
                if (!common_directive(e))
                    report(e, verdict::ignored, "connection processing is turnout's own");
            return;
        }
        if (d.name == "http") {
            http_context(d);
            return;
        }
        unknown(d);
    }

    void unknown(const directive& d)
    {
        report(d, verdict::untranslated, "turnout has no equivalent");
    }

    // nginx resolves relative paths against its prefix; the translation takes the main file's
    // folder, made absolute, so the TOML means the same wherever it is written.
    std::string resolve(const directive&, const std::string& path) const
    {
        if (path.starts_with('/'))
            return path;
        std::error_code ec;
        const auto main = std::filesystem::absolute(model_.source, ec);
        return (main.parent_path() / path).lexically_normal().string();
    }

    void error_log(const directive& d)
    {
        static const std::map<std::string_view, std::string_view> levels = {
            {"debug", "debug"}, {"info", "info"},   {"notice", "info"},     {"warn", "warn"},
            {"error", "error"}, {"crit", "critical"}, {"alert", "critical"}, {"emerg", "critical"}};
        const auto level = d.args.size() >= 2 ? levels.find(d.args[1]) : levels.end();
        if (level != levels.end())
            model_.set("log_level", toml_string(level->second), "error_log level " + d.args[1]);
        report(d, verdict::approximated,
               std::string(level != levels.end() ? "log_level; " : "") +
                   "turnout writes its error log to stderr (the journal under systemd), not to a file");
    }

    void access_log(const directive& d)
    {
        if (d.args.empty())
            return unknown(d);
        if (d.args[0] == "off") {
            set_access_log(d, "off", "", "access_log = \"off\"");
            return;
        }
        const bool syslog = d.args[0].starts_with("syslog:");
        const std::string target = syslog ? "stderr" : resolve(d, d.args[0]);
        const std::string format = d.args.size() >= 2 ? d.args[1] : "combined";
        std::string why = syslog ? "syslog: written to stderr (the journal under systemd)" : "access_log";
        if (format == "combined")
            why += ", access_log_format = \"combined\" (nginx's)";
        else
            why += ", in nginx's combined format: turnout writes no custom log_format (\"" + format + "\")";
        set_access_log(d, target, "combined", why);
        if (syslog || format != "combined" || d.args.size() > 2)
            report_[report_.size() - 1].what = verdict::approximated;
    }

    void set_access_log(const directive& d, const std::string& target, const std::string& format,
                        const std::string& why)
    {
        if (const auto* earlier = model_.find("access_log"); earlier && earlier->value != toml_string(target)) {
            report(d, verdict::approximated,
                   "turnout has one access log; the first one (" + earlier->value + ") is kept");
            return;
        }
        model_.set("access_log", toml_string(target), "access_log");
        if (!format.empty())
            model_.set("access_log_format", toml_string(format), "nginx's default log format");
        report(d, verdict::translated, why);
    }

    // A [proxy] value set at http, server or location level: turnout has one for everything.
    bool proxy_value(const directive& d)
    {
        static const std::map<std::string_view, bool> kinds = {
            {"proxy_connect_timeout", false}, {"proxy_read_timeout", false}, {"client_header_timeout", false},
            {"keepalive_timeout", false},     {"client_max_body_size", true}};
        const auto it = kinds.find(d.name);
        if (it == kinds.end() || d.args.empty())
            return false;
        const auto value = it->second ? parse_size(d.args[0])
                                      : [&]() -> std::optional<std::uint64_t> {
                                            const auto t = parse_time(d.args[0]);
                                            return t ? std::optional<std::uint64_t>(t->count()) : std::nullopt;
                                        }();
        if (!value) {
            report(d, verdict::untranslated, "cannot read \"" + d.args[0] + "\"");
            return true;
        }
        settings_[std::string(d.name)].uses.emplace_back(*value, report(d, verdict::translated, ""));
        return true;
    }

    void http_context(const directive& http)
    {
        report(http, verdict::translated, "the proxy");
        scope s;
        std::vector<server_info> servers;
        for (const auto& d : http.block)
            if (d.name == "server" && d.has_block)
                servers.push_back(read_listens(d));
        decide_default_servers(servers);
        for (const auto& sv : servers)
            for (const auto& l : sv.listens)
                all_addresses_.insert(l.address);
        std::size_t next_server = 0;
        for (const auto& d : http.block) {
            if (d.name == "server" && d.has_block) {
                server(servers[next_server++], s);
                continue;
            }
            http_level(d, s);
        }
        if (servers.empty())
            report(http, verdict::untranslated, "no server block: nothing to listen on");
    }

    // Directives valid at http, server and location level.
    bool shared_level(const directive& d, scope& s)
    {
        if (common_directive(d) || proxy_value(d) || proxy_setting(d))
            return true;
        if (d.name == "ssl_certificate" || d.name == "ssl_certificate_key") {
            auto& list = d.name == "ssl_certificate" ? s.certs : s.keys;
            if (d.args.size() != 1)
                return unknown(d), true;
            list.push_back(resolve(d, d.args[0]));
            report(d, list.size() == 1 ? verdict::translated : verdict::approximated,
                   list.size() == 1 ? "the certificate of this server's TLS listeners"
                                    : "a second certificate (another key type) is not used: turnout serves one "
                                      "certificate per name");
            return true;
        }
        if (d.name == "ssl_protocols" || d.name == "ssl_ciphers" || d.name == "ssl_conf_command") {
            report(d, verdict::approximated, "turnout offers TLS 1.2 and 1.3 with Mozilla's intermediate ciphers");
            return true;
        }
        if (d.name == "large_client_header_buffers" && d.args.size() == 2) {
            const auto n = parse_size(d.args[0]);
            const auto size = parse_size(d.args[1]);
            if (n && size && *n > 0 && *size > 0 && *n < 1024) {
                model_.set("max_uri_bytes", std::to_string(*size), "large_client_header_buffers: one buffer");
                model_.set("max_header_bytes", std::to_string(*n * *size), "large_client_header_buffers: all of them");
                report(d, verdict::approximated,
                       "max_uri_bytes and max_header_bytes (turnout limits the whole head, not each line; over it "
                       "answers 431 where nginx answers 400)");
                return true;
            }
        }
        return false;
    }

    void http_level(const directive& d, scope& s)
    {
        if (shared_level(d, s))
            return;
        if (d.name == "upstream")
            return upstream_block(d);
        if (d.name == "split_clients")
            return split_block(d);
        if (d.name == "map")
            return map_block(d);
        unknown(d);
    }

    // ---- proxy_* settings --------------------------------------------------------------------

    bool proxy_setting(const directive& d)
    {
        const std::string_view n = d.name;
        const std::string a0 = d.args.empty() ? "" : d.args[0];
        if (n == "proxy_buffering" || n == "proxy_request_buffering") {
            report(d, a0 == "off" ? verdict::translated : verdict::ignored,
                   a0 == "off" ? "nothing needed: turnout never buffers; it streams bodies and SSE events as they "
                                 "arrive"
                               : "turnout streams instead (it never buffers), which changes no answer");
            return true;
        }
        if (n == "proxy_http_version") {
            report(d, a0 == "1.1" ? verdict::translated : verdict::approximated,
                   "turnout speaks HTTP/1.1 with keep-alive to backends");
            return true;
        }
        if (n == "proxy_send_timeout" || n == "send_timeout" || n == "client_body_timeout") {
            report(d, verdict::approximated,
                   "turnout has no write or body-read timeout of its own: a stalled peer is held by backpressure "
                   "until idle_timeout or stream_idle_timeout");
            return true;
        }
        if (n == "proxy_next_upstream" || n == "proxy_next_upstream_tries" || n == "proxy_next_upstream_timeout") {
            report(d, verdict::approximated,
                   "turnout tries another backend when a connect fails or times out, before anything was sent; "
                   "never after");
            return true;
        }
        if (n == "proxy_set_header" && d.args.size() == 2)
            return set_header(d), true;
        if (n == "proxy_ssl_verify" || n == "proxy_ssl_server_name" || n == "proxy_ssl_name" ||
            n == "proxy_ssl_trusted_certificate" || n == "proxy_ssl_protocols" || n == "proxy_ssl_ciphers") {
            report(d, verdict::approximated,
                   "TLS to backends (proxy_pass https://) always verifies the chain against the system's store "
                   "and the backend's address or tls_server_name");
            return true;
        }
        if (n == "proxy_redirect" && a0 == "default") {
            report(d, verdict::ignored, "the default rewrites nothing when proxy_pass has no path");
            return true;
        }
        return false;
    }

    void set_header(const directive& d)
    {
        std::string field = d.args[0];
        std::transform(field.begin(), field.end(), field.begin(), [](unsigned char c) { return std::tolower(c); });
        const std::string& value = d.args[1];
        if ((field == "host" && (value == "$host" || value == "$http_host")) ||
            (field == "x-forwarded-for" && value == "$proxy_add_x_forwarded_for") ||
            (field == "x-forwarded-proto" && value == "$scheme") ||
            (field == "x-forwarded-host" && (value == "$host" || value == "$http_host")) ||
            (field == "mcp-session-id" && value == "$http_mcp_session_id"))
            return (void)report(d, verdict::translated, "turnout does this by itself");
        if (field == "connection" && (value.empty() || value == "keep-alive"))
            return (void)report(d, verdict::translated,
                                "turnout removes hop-by-hop fields and keeps backend connections alive");
        if (field == "x-real-ip" && value == "$remote_addr")
            return (void)report(d, verdict::approximated,
                                "turnout sends the client's address in X-Forwarded-For, not X-Real-IP");
        if (field == "upgrade" || (field == "connection" && value == "upgrade"))
            return (void)report(d, verdict::untranslated, "turnout does not forward WebSocket upgrades");
        report(d, verdict::untranslated, "turnout cannot set request fields toward backends");
    }

    // ---- upstreams, split_clients, map -------------------------------------------------------

    void upstream_block(const directive& d)
    {
        if (d.args.size() != 1 || !d.has_block)
            return unknown(d);
        const auto& def = upstreams_.at(d.args[0]);
        const bool direct = referenced_.count("http://" + d.args[0]) || referenced_.count("https://" + d.args[0]);
        const bool split = std::any_of(splits_.begin(), splits_.end(), [&](const auto& s) {
            return std::any_of(s.second.shares.begin(), s.second.shares.end(),
                               [&](const auto& v) { return v.first == d.args[0]; });
        });
        if (direct || !split)
            ensure_upstream(d.args[0], false);
        report(d, verdict::translated,
               std::string(direct || !split ? "[[upstream]] " + safe_name(d.args[0]) : "") +
                   (split ? std::string(direct ? " and " : "") + "a pool of the split_clients upstream" : ""));
        std::set<std::string> weights;
        for (const auto& s : d.block)
            if (s.name == "server")
                for (const auto& a : s.args)
                    if (a.starts_with("weight="))
                        weights.insert(a.substr(7));
        for (const auto& s : d.block)
            upstream_member(s, def, weights.size() > 1);
    }

    void upstream_member(const directive& s, const upstream_def& def, bool uneven_weights)
    {
        const std::string_view n = s.name;
        if (n == "server") {
            if (s.args.empty() || !backend_address(s.args[0], 80))
                return (void)report(s, verdict::untranslated,
                                    "turnout's backends are host:port over TCP (no unix: sockets)");
            std::vector<std::string> notes;
            verdict v = verdict::translated;
            bool down = false, backup = false, passive = false;
            for (std::size_t i = 1; i < s.args.size(); ++i) {
                const std::string_view a = s.args[i];
                if (a == "down")
                    down = true;
                else if (a == "backup")
                    backup = true;
                else if (a.starts_with("weight=") && uneven_weights) {
                    v = verdict::approximated;
                    notes.push_back("weight: turnout spreads new sessions evenly inside a pool");
                } else if (a.starts_with("max_fails=") || a.starts_with("fail_timeout=")) {
                    v = verdict::approximated;
                    if (!std::exchange(passive, true))
                        notes.push_back("passive checks: max_fails failures in a row (connect errors and 5xx "
                                        "answers) eject the backend for fail_timeout");
                } else if (!a.starts_with("weight=")) {
                    v = verdict::approximated;
                    notes.push_back(std::string(a) + " is not kept");
                }
            }
            if (down)
                return (void)report(s, verdict::translated, "down: left out, as nginx sends it nothing");
            if (backup) {
                v = verdict::approximated;
                notes.insert(notes.begin(),
                             "backup: a pool of weight 0; turnout does not send to it by itself when the primary "
                             "has no healthy backend (turnoutctl switch or weights moves new sessions there)");
            }
            std::string why = backup ? "" : "a backend of the pool";
            for (const auto& note : notes)
                why += (why.empty() ? "" : "; ") + note;
            report(s, v, why);
            return;
        }
        if (n == "hash") {
            if (def.by_session)
                return (void)report(s, verdict::translated,
                                    "turnout's session table: each session stays on the backend that created it, "
                                    "and an unknown id goes by a consistent hash over the healthy backends");
            return (void)report(s, verdict::approximated,
                                "turnout keeps MCP sessions on their backend; requests without a session are "
                                "spread by weight, not by a hash of " +
                                    (s.args.empty() ? std::string("the key") : s.args[0]));
        }
        if (n == "ip_hash" || n == "sticky")
            return (void)report(s, verdict::approximated,
                                "turnout keeps MCP sessions on their backend; requests without a session are "
                                "spread by weight, not by client address");
        if (n == "least_conn" || n == "random" || n == "least_time")
            return (void)report(s, verdict::approximated,
                                "turnout picks the less busy of two random backends (power of two choices)");
        if (n == "keepalive")
            return (void)report(s, verdict::translated,
                                "nothing to set: turnout keeps idle backend connections per worker, as many as "
                                "the peak needed");
        if (n == "keepalive_timeout" || n == "keepalive_requests" || n == "keepalive_time")
            return (void)report(s, verdict::ignored, "turnout closes idle backend connections after a minute");
        if (n == "zone")
            return (void)report(s, verdict::ignored, "turnout's workers share their backends' state already");
        if (!common_directive(s))
            unknown(s);
    }

    // The turnout upstream for an nginx upstream named name (or a host:port) behind proxy_pass.
    std::string ensure_upstream(const std::string& name, bool tls)
    {
        const auto it = upstreams_.find(name);
        const std::string turnout_name = safe_name(name);
        auto* u = model_.find_upstream(turnout_name);
        if (!u) {
            toml_model::upstream made;
            made.name = turnout_name;
            if (it != upstreams_.end()) {
                made.comment = "upstream " + name + " (" + it->second.block->file + ":" +
                               std::to_string(it->second.block->line) + ")";
                add_pools(made, it->second, "main", 100);
            } else {
                made.comment = "proxy_pass to " + name;
                made.pools.push_back({"main", 100, {*backend_address(name, tls ? 443 : 80)}, tls, ""});
            }
            model_.upstreams.push_back(std::move(made));
            u = &model_.upstreams.back();
        }
        if (tls)
            for (auto& p : u->pools)
                p.tls = true;
        return turnout_name;
    }

    void add_pools(toml_model::upstream& u, const upstream_def& def, const std::string& pool, std::uint32_t weight)
    {
        u.pools.push_back({pool, weight, def.primary, false, ""});
        if (!def.backup.empty())
            u.pools.push_back({pool + "-backup", 0, def.backup, false,
                               "nginx's backup servers: weight 0, for turnoutctl switch or weights"});
        if (def.max_fails && !u.passive_failures)
            u.passive_failures = *def.max_fails;
        if (def.fail_timeout && !u.passive_backoff && def.fail_timeout->count() > 0)
            u.passive_backoff = config::format_duration(*def.fail_timeout);
        if (def.max_fails && !def.fail_timeout && !u.passive_backoff)
            u.passive_backoff = "10s"; // nginx's default fail_timeout
    }

    void split_block(const directive& d)
    {
        const auto it = splits_.find(d.args.size() == 2 ? d.args[1] : "");
        if (it == splits_.end() || !d.has_block)
            return unknown(d);
        const auto& s = it->second;
        if (!s.problem.empty())
            return (void)report(d, verdict::untranslated, s.problem);
        for (const auto& [value, bp] : s.shares)
            if (!upstreams_.count(value))
                return (void)report(d, verdict::untranslated,
                                    "value \"" + value + "\" is not an upstream: turnout splits between pools only");
        std::string shares;
        for (const auto& [value, bp] : s.shares)
            shares += (shares.empty() ? "" : ", ") + value + " " + percent_text(bp);
        if (s.key == "$http_mcp_session_id")
            return (void)report(d, verdict::translated,
                                "pools by weight (" + shares +
                                    ") for new sessions; and now each session is pinned to the backend that "
                                    "created it, which nginx's split (keyed on an id the first request lacks) "
                                    "did not do");
        report(d, verdict::approximated,
               "pools by weight (" + shares + ") for new sessions, not by a hash of " + s.key +
                   "; each session is then pinned to the backend that created it (session pinning, which nginx's "
                   "split lacked, is added)");
    }

    std::string ensure_split(const std::string& var, bool tls)
    {
        const auto& s = splits_.at(var);
        std::string name = safe_name(var.substr(1));
        if (upstreams_.count(name) && !model_.find_upstream(name))
            name += "_split";
        if (!model_.find_upstream(name)) {
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
                    add_pools(made, upstreams_.at(value), safe_name(value), w);
            }
            model_.upstreams.push_back(std::move(made));
        }
        if (tls)
            for (auto& p : model_.find_upstream(name)->pools)
                p.tls = true;
        return name;
    }

    void map_block(const directive& d)
    {
        const auto it = maps_.find(d.args.size() == 2 ? d.args[1] : "");
        if (it == maps_.end() || !d.has_block)
            return unknown(d);
        const auto& m = it->second;
        if (!referenced_.count("http://" + d.args[1]) && !referenced_.count("https://" + d.args[1]))
            return (void)report(d, verdict::ignored, "no proxy_pass uses " + d.args[1]);
        if (!m.problem.empty())
            return (void)report(d, verdict::untranslated, m.problem);
        report(d, verdict::translated, "one route per host name, to the upstream it names");
    }

    // ---- servers and locations ---------------------------------------------------------------

    server_info read_listens(const directive& d)
    {
        server_info s;
        s.d = &d;
        bool ssl_on = false;
        for (const auto& e : d.block)
            ssl_on |= e.name == "ssl" && !e.args.empty() && e.args[0] == "on";
        for (const auto& e : d.block) {
            if (e.name != "listen" || e.args.empty())
                continue;
            listen_info l;
            l.d = &e;
            l.address = listen_address(e.args[0]).value_or("");
            l.ssl = ssl_on;
            for (const auto& a : e.args) {
                l.ssl |= a == "ssl";
                l.default_server |= a == "default_server" || a == "default";
            }
            s.listens.push_back(l);
        }
        if (s.listens.empty())
            s.listens.push_back({nullptr, "0.0.0.0:80", ssl_on, false});
        return s;
    }

    static void decide_default_servers(std::vector<server_info>& servers)
    {
        std::map<std::string, std::size_t> chosen;
        for (std::size_t i = 0; i < servers.size(); ++i)
            for (const auto& l : servers[i].listens)
                if (!l.address.empty() && (!chosen.count(l.address) || l.default_server))
                    if (!chosen.count(l.address) || !servers[chosen[l.address]].listens.front().default_server)
                        chosen[l.address] = i;
        for (const auto& [address, i] : chosen)
            servers[i].catch_all = true;
    }

    void server(const server_info& info, scope inherited)
    {
        const directive& d = *info.d;
        scope s = inherited;
        std::vector<std::string> hosts;
        bool names_seen = false;
        // Certificates first: a listen's TLS needs them wherever they are written in the block.
        for (const auto& e : d.block)
            if ((e.name == "ssl_certificate" || e.name == "ssl_certificate_key") && e.args.size() == 1)
                (e.name == "ssl_certificate" ? s.certs : s.keys).clear();
        scope certs = s;
        for (const auto& e : d.block)
            if ((e.name == "ssl_certificate" || e.name == "ssl_certificate_key") && e.args.size() == 1)
                (e.name == "ssl_certificate" ? certs.certs : certs.keys).push_back(resolve(e, e.args[0]));
        std::set<std::string> own;
        for (const auto& l : info.listens)
            own.insert(l.address);
        const auto server_line = report(d, verdict::translated,
                                        info.catch_all ? "routes for any host (the default server of its address)"
                                                       : "routes for its names");
        if (own != all_addresses_) {
            report_[server_line].what = verdict::approximated;
            report_[server_line].why += "; they answer on every listener: turnout's routes are not per listener";
        }
        if (!info.listens.front().d)
            listen(info.listens.front(), certs, d);
        for (const auto& e : d.block) {
            if (e.name == "listen") {
                const auto l = std::find_if(info.listens.begin(), info.listens.end(),
                                            [&](const listen_info& x) { return x.d == &e; });
                if (l != info.listens.end())
                    listen(*l, certs, e);
                else
                    unknown(e);
            } else if (e.name == "server_name") {
                names_seen = true;
                server_names(e, info.catch_all, hosts);
            } else if (e.name == "ssl") {
                report(e, verdict::translated, "TLS on this server's listeners");
            } else if (e.name == "http2" || e.name == "http3" || e.name == "quic") {
                report(e, verdict::approximated, "turnout speaks HTTP/1.1 (ALPN http/1.1); clients fall back to it");
            } else if (e.name != "location" && !shared_level(e, s)) {
                unknown(e);
            }
        }
        if (info.catch_all)
            hosts = {""};
        else if (!names_seen)
            hosts = {""}; // nginx: a server without names answers requests with no Host only
        for (const auto& e : d.block)
            if (e.name == "location")
                location(e, hosts, s);
    }

    void listen(const listen_info& l, const scope& s, const directive& at)
    {
        if (l.address.empty())
            return (void)report(at, verdict::untranslated, "turnout listens on host:port over TCP only");
        auto& listener = model_.listener_for(l.address);
        if (listener.comment.empty())
            listener.comment = "listen " + l.address + " (" + at.file + ":" + std::to_string(at.line) + ")";
        std::vector<std::string> notes;
        verdict v = verdict::translated;
        if (l.ssl) {
            if (s.certs.empty() || s.keys.empty())
                return (void)report(at, verdict::untranslated, "ssl without ssl_certificate and ssl_certificate_key");
            if (listener.cert.empty()) {
                listener.cert = s.certs.front();
                listener.key = s.keys.front();
            } else if (listener.cert != s.certs.front() &&
                       std::none_of(listener.more.begin(), listener.more.end(),
                                    [&](const auto& c) { return c.cert == s.certs.front(); })) {
                listener.more.push_back({s.certs.front(), s.keys.front()});
                notes.push_back("this server's certificate is chosen by SNI against the certificate's own names");
            }
        }
        if (!at.args.empty())
            for (std::size_t i = 1; i < at.args.size(); ++i) {
                const std::string_view a = at.args[i];
                if (a == "http2" || a == "quic" || a == "http3") {
                    v = verdict::approximated;
                    notes.push_back("turnout speaks HTTP/1.1; clients fall back to it");
                } else if (a == "proxy_protocol") {
                    return (void)report(at, verdict::untranslated, "turnout does not read the PROXY protocol");
                }
            }
        std::string why = std::string(l.d ? "" : "no listen: nginx's default, ") + "[[listen]] " + l.address +
                          (l.ssl ? " with TLS" : "");
        for (const auto& n : notes)
            why += "; " + n;
        report(at, v, why);
    }

    void server_names(const directive& e, bool catch_all, std::vector<std::string>& hosts)
    {
        std::vector<std::string> inexact;
        for (const auto& name : e.args) {
            if (name.empty() || name == "_" || (name == "localhost" && catch_all))
                continue;
            if (name.find_first_of("*~") != std::string::npos || name.starts_with('.') || name.starts_with('$'))
                inexact.push_back(name);
            else
                hosts.push_back(name);
        }
        if (catch_all)
            return (void)report(e, verdict::translated,
                                "the default server of its address: its routes take any host not routed elsewhere");
        if (!inexact.empty())
            return (void)report(e, verdict::untranslated,
                                "turnout matches host names exactly; not " + inexact.front() +
                                    (inexact.size() > 1 ? " and others" : ""));
        report(e, verdict::translated, "route hosts");
    }

    void location(const directive& d, const std::vector<std::string>& hosts, scope inherited)
    {
        scope s = inherited;
        std::string prefix;
        verdict v = verdict::translated;
        std::string why;
        if (d.args.size() == 1 && d.args[0].starts_with('@'))
            return (void)report(d, verdict::untranslated, "named locations serve nginx's internal redirects");
        if (d.args.size() == 1 && d.args[0].starts_with('/')) {
            prefix = d.args[0];
        } else if (d.args.size() == 2 && d.args[0] == "^~" && d.args[1].starts_with('/')) {
            prefix = d.args[1];
            why = "a prefix (turnout has no regular-expression locations to skip)";
        } else if (d.args.size() == 2 && d.args[0] == "=" && d.args[1].starts_with('/')) {
            prefix = d.args[1];
            v = verdict::approximated;
            why = "matched as a prefix: turnout has no exact-match routes, so longer paths go there too unless a "
                  "longer location says otherwise";
        } else {
            return (void)report(d, verdict::untranslated, "turnout has no regular-expression routes");
        }
        const directive* pass = nullptr;
        const directive* answer = nullptr;
        for (const auto& e : d.block) {
            if (e.name == "proxy_pass")
                pass = &e;
            else if (e.name == "return")
                answer = &e;
        }
        const auto line = report(d, v, why);
        for (const auto& e : d.block) {
            if (e.name == "proxy_pass")
                proxy_pass(e, prefix, hosts, line);
            else if (e.name == "return")
                fixed_answer(e, pass != nullptr);
            else if (e.name == "location")
                continue;
            else if (!shared_level(e, s))
                unknown(e);
        }
        if (!pass && !answer) {
            report_[line].what = verdict::untranslated;
            report_[line].why = "no proxy_pass: turnout serves no files";
        } else if (!pass) {
            report_[line].why = "its return is reported on its own line";
        }
        for (const auto& e : d.block)
            if (e.name == "location")
                location(e, hosts, s);
    }

    void fixed_answer(const directive& e, bool shadowed)
    {
        if (shadowed)
            return (void)report(e, verdict::untranslated, "turnout's routes have no fixed answers");
        if (e.args.size() == 1 && e.args[0] == "404")
            return (void)report(e, verdict::approximated,
                                "no route: turnout answers 404 where no route matches (with its JSON body)");
        report(e, verdict::untranslated, "turnout's routes always go to an upstream; it has no fixed answers");
    }

    void proxy_pass(const directive& e, const std::string& prefix, const std::vector<std::string>& hosts,
                    std::size_t location_line)
    {
        if (e.args.size() != 1)
            return unknown(e);
        const std::string& target = e.args[0];
        const bool tls = target.starts_with("https://");
        if (!tls && !target.starts_with("http://"))
            return (void)report(e, verdict::untranslated, "turnout proxies to http:// and https:// only");
        std::string rest = target.substr(tls ? 8 : 7);
        const auto slash = rest.find('/');
        const std::string uri = slash == std::string::npos ? "" : rest.substr(slash);
        rest = rest.substr(0, slash);
        if (!uri.empty() && uri != prefix)
            return (void)report(e, verdict::untranslated,
                                "replaces " + prefix + " with " + uri + " in the path; turnout forwards the path as "
                                                                        "it is");
        std::vector<std::pair<std::string, std::string>> routes; // host → upstream
        std::string why;
        verdict v = verdict::translated;
        if (rest.starts_with('$')) {
            if (!is_variable_only(rest))
                return (void)report(e, verdict::untranslated, "a computed address: turnout's routes name an upstream");
            if (splits_.count(rest)) {
                if (!splits_.at(rest).problem.empty() ||
                    std::any_of(splits_.at(rest).shares.begin(), splits_.at(rest).shares.end(),
                                [&](const auto& v) { return !upstreams_.count(v.first); }))
                    return (void)report(e, verdict::untranslated, "its split_clients is not translated");
                const auto name = ensure_split(rest, tls);
                for (const auto& h : hosts)
                    routes.emplace_back(h, name);
                why = "[[route]] to the split_clients upstream " + name;
            } else if (maps_.count(rest)) {
                const auto& m = maps_.at(rest);
                if (!m.problem.empty())
                    return (void)report(e, verdict::untranslated, "its map is not translated");
                for (const auto& [host, value] : m.entries)
                    routes.emplace_back(host, ensure_upstream(value, tls));
                if (!m.default_value.empty())
                    for (const auto& h : hosts)
                        routes.emplace_back(h, ensure_upstream(m.default_value, tls));
                why = "one [[route]] per host of the map";
            } else {
                return (void)report(e, verdict::untranslated, rest + " is set by nothing turnout translates");
            }
        } else {
            if (!upstreams_.count(rest) && !backend_address(rest, tls ? 443 : 80))
                return (void)report(e, verdict::untranslated, "not an upstream nor a host:port");
            const auto name = ensure_upstream(rest, tls);
            for (const auto& h : hosts)
                routes.emplace_back(h, name);
            why = "[[route]] " + prefix + " to upstream " + name;
            if (tls) {
                v = verdict::approximated;
                why += "; turnout verifies the backend's certificate, which nginx does not by default";
            }
        }
        for (const auto& [host, upstream] : routes)
            if (const auto conflict = add_route(host, prefix, upstream, e); !conflict.empty())
                return (void)report(e, verdict::untranslated, conflict);
        report(e, v, why);
        if (report_[location_line].why.empty())
            report_[location_line].why = "[[route]] path_prefix " + prefix;
    }

    std::string add_route(const std::string& host, const std::string& prefix, const std::string& upstream,
                          const directive& at)
    {
        for (const auto& r : model_.routes)
            if (r.host == host && r.path_prefix == prefix)
                return r.upstream == upstream
                           ? std::string{}
                           : "another location (" + r.comment + ") sends " + prefix +
                                 " elsewhere; turnout's routes apply to every listener";
        model_.routes.push_back({host, prefix, upstream, at.file + ":" + std::to_string(at.line)});
        return {};
    }

    // ---- after the walk ----------------------------------------------------------------------

    void finish()
    {
        settle("proxy_connect_timeout", {"connect_timeout"}, false, 60'000);
        settle("proxy_read_timeout", {"response_timeout", "stream_idle_timeout"}, false, 60'000);
        settle("client_header_timeout", {"header_timeout"}, false, 60'000);
        settle("keepalive_timeout", {"idle_timeout"}, false, 75'000);
        settle("client_max_body_size", {"max_body_bytes"}, true, 1024 * 1024);
        if (!model_.find("max_header_bytes")) {
            model_.set("max_uri_bytes", "8192", "nginx's default large_client_header_buffers 4 8k");
            model_.set("max_header_bytes", "32768", "nginx's default large_client_header_buffers 4 8k");
        }
        // Upstreams no proxy_pass and no split named: kept, so that nothing is lost.
        for (const auto& entry : upstreams_) {
            const std::string& name = entry.first;
            const bool in_split = std::any_of(splits_.begin(), splits_.end(), [&](const auto& s) {
                return std::any_of(s.second.shares.begin(), s.second.shares.end(),
                                   [&](const auto& v) { return v.first == name; });
            });
            if (!in_split && !model_.find_upstream(safe_name(name)))
                ensure_upstream(name, false);
        }
        for (auto& u : model_.upstreams)
            std::stable_partition(u.pools.begin(), u.pools.end(), [](const auto& p) { return p.weight > 0; });
    }

    // One [proxy] value from every directive that set it: turnout has one value for all
    // locations, so differing ones become the largest (nothing is cut sooner than in nginx).
    void settle(const std::string& directive_name, const std::vector<std::string>& keys, bool size,
                std::uint64_t nginx_default)
    {
        const auto it = settings_.find(directive_name);
        const auto text = [&](std::uint64_t v) {
            if (size)
                return v == 0 ? std::to_string(std::numeric_limits<std::int64_t>::max()) : std::to_string(v);
            return toml_string(config::format_duration(config::duration(v)));
        };
        if (it == settings_.end()) {
            for (const auto& key : keys)
                model_.set(key, text(nginx_default), "nginx's default " + directive_name);
            return;
        }
        std::set<std::uint64_t> values;
        for (const auto& [value, line] : it->second.uses)
            values.insert(value);
        // 0 is "no limit" for a size: the largest of all.
        const std::uint64_t chosen = size && values.count(0) ? 0 : *values.rbegin();
        const bool zero_time = !size && chosen == 0;
        for (const auto& key : keys)
            model_.set(key, zero_time ? toml_string("1ms") : text(chosen), directive_name);
        std::string why = keys.front();
        for (std::size_t i = 1; i < keys.size(); ++i)
            why += " and " + keys[i];
        for (const auto& [value, line] : it->second.uses) {
            auto& r = report_[line];
            r.why = why;
            if (values.size() > 1) {
                r.what = verdict::approximated;
                r.why += ": turnout has one value for every location; the largest one written is used";
            }
            if (size && chosen == 0)
                r.why += " (0: no limit)";
            if (directive_name == "keepalive_timeout" && value == 0) {
                r.what = verdict::approximated;
                r.why = "turnout always keeps client connections alive (idle_timeout)";
            }
        }
    }

    toml_model model_;
    std::vector<report_line> report_;
    std::map<std::string, upstream_def> upstreams_;
    std::map<std::string, split_def> splits_;
    std::map<std::string, map_def> maps_;
    std::set<std::string> referenced_;
    std::set<std::string> all_addresses_;
    std::map<std::string, setting_uses> settings_;
};

} // namespace

std::string_view to_string(verdict v)
{
    switch (v) {
    case verdict::translated: return "translated";
    case verdict::approximated: return "approximated";
    case verdict::ignored: return "ignored";
    case verdict::untranslated: return "untranslated";
    }
    return "untranslated";
}

std::string report_line::text() const
{
    return file + ":" + std::to_string(line) + ": " + std::string(to_string(what)) + ": " + directive +
           (why.empty() ? "" : " \u2014 " + why);
}

bool translation::complete() const
{
    return std::none_of(report.begin(), report.end(),
                        [](const report_line& r) { return r.what == verdict::untranslated; });
}

translation translate(const std::vector<directive>& conf, const std::string& main_file)
{
    return translator(main_file).run(conf);
}

translation translate_file(const std::string& path)
{
    return translate(read_file(path), path);
}

} // namespace turnout::nginx
