#include "turnout/nginx/translator.hpp"

#include "turnout/config/duration.hpp"
#include "turnout/nginx/definitions.hpp"
#include "turnout/nginx/directive_kinds.hpp"
#include "turnout/nginx/return_translation.hpp"
#include "turnout/nginx/setting_translation.hpp"
#include "turnout/nginx/toml_model.hpp"
#include "turnout/nginx/translation_state.hpp"
#include "turnout/nginx/upstream_translation.hpp"
#include "turnout/nginx/values.hpp"

#include <algorithm>
#include <map>
#include <optional>
#include <set>
#include <utility>

namespace turnout::nginx {

namespace {

bool is_variable_only(std::string_view s)
{
    return s.size() > 1 && s.front() == '$' && s.find_first_of("/:$", 1) == std::string_view::npos;
}

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

// Where a server's routes apply: its host names ("" = any host) and, when not every server
// listens on the same addresses, its listeners.
struct place {
    std::vector<std::string> hosts;
    std::vector<std::string> listen;
};

// A location's path: a prefix, or (location =) that path only.
struct location_path {
    std::string path;
    bool exact = false;
};

class translator {
public:
    explicit translator(const std::string& main_file)
        : upstreams_(st_, [this](const directive& d) { return common_directive(d); })
    {
        st_.model.source = main_file;
    }

    translation run(const std::vector<directive>& conf)
    {
        gather(conf);
        for (const auto& d : conf)
            main_directive(d);
        settings_.finish();
        upstreams_.finish();
        translation t;
        for (const auto& line : st_.report)
            if (line.what == verdict::untranslated)
                st_.model.gaps.push_back(line.text());
        t.toml = st_.model.text();
        t.report = std::move(st_.report);
        return t;
    }

private:
    std::size_t report(const directive& d, verdict v, std::string why) { return st_.add(d, v, std::move(why)); }
    void unknown(const directive& d) { st_.unknown(d); }
    std::string resolve(const directive& d, const std::string& path) const { return st_.resolve(d, path); }

    // ---- pass 1: what proxy_pass may name --------------------------------------------------

    void gather(const std::vector<directive>& list)
    {
        for (const auto& d : list) {
            if (d.name == "upstream" && d.has_block && d.args.size() == 1)
                st_.upstreams.emplace(d.args[0], read_upstream(d));
            else if (d.name == "split_clients" && d.has_block && d.args.size() == 2)
                st_.splits.emplace(d.args[1], read_split(d));
            else if (d.name == "map" && d.has_block && d.args.size() == 2)
                st_.maps.emplace(d.args[1], read_map(d));
            else if (d.name == "proxy_pass" && !d.args.empty())
                st_.referenced.insert(d.args[0]);
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
        return settings_.log(d);
    }

    void main_directive(const directive& d)
    {
        if (common_directive(d))
            return;
        if (d.name == "worker_processes" && d.args.size() == 1) {
            const auto n = parse_size(d.args[0]);
            if (d.args[0] == "auto" || (n && *n <= 1024)) {
                st_.model.set("workers", d.args[0] == "auto" ? "0" : std::to_string(*n),
                           d.args[0] == "auto" ? "worker_processes auto: one per core" : "worker_processes");
                report(d, verdict::translated, "workers (threads in one process)");
                return;
            }
        }
        if (d.name == "worker_shutdown_timeout" && d.args.size() == 1)
            if (const auto t = parse_time(d.args[0])) {
                st_.model.set("drain_timeout", toml_string(config::format_duration(*t)), "worker_shutdown_timeout");
                report(d, verdict::translated, "drain_timeout");
                return;
            }
        if (d.name == "pid" && d.args.size() == 1) {
            st_.model.set("pid_file", toml_string(resolve(d, d.args[0])), "pid");
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
        if (common_directive(d) || settings_.proxy_value(d) || settings_.proxy_setting(d))
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
                st_.model.set("max_uri_bytes", std::to_string(*size), "large_client_header_buffers: one buffer");
                st_.model.set("max_header_bytes", std::to_string(*n * *size), "large_client_header_buffers: all of them");
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
            return upstreams_.upstream_block(d);
        if (d.name == "split_clients")
            return upstreams_.split_block(d);
        if (d.name == "map")
            return upstreams_.map_block(d);
        unknown(d);
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
        if (!info.listens.front().d)
            listen(info.listens.front(), certs, d);
        const directive* server_return = nullptr;
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
            } else if (e.name == "return") {
                if (!server_return)
                    server_return = &e;
                else
                    report(e, verdict::ignored, "never reached: the server's first return answers");
            } else if (e.name != "location" && !shared_level(e, s)) {
                unknown(e);
            }
        }
        place where;
        if (own != all_addresses_) {
            // nginx chooses a server among those listening where the request arrived: its
            // routes are limited to its own listeners.
            // (Only the listeners that were translated: a listen reported untranslated has none.)
            for (const auto& address : own)
                if (!address.empty() && std::any_of(st_.model.listeners.begin(), st_.model.listeners.end(),
                                                    [&](const auto& l) { return l.address == address; }))
                    where.listen.push_back(st_.model.name_listener(address));
            st_.report[server_line].why += "; on its own listeners only (listen = " + join(where.listen) + ")";
        }
        if (info.catch_all) {
            hosts = {""};
        } else if (hosts.empty()) {
            // nginx sends such a server only requests without a Host (HTTP/1.0); turnout's
            // host-less routes would take every host, so its locations make no route.
            st_.report[server_line].what = verdict::approximated;
            st_.report[server_line].why = std::string(names_seen ? "no exact name" : "no server_name") +
                                          " and not the default server of its address: nginx sends it only "
                                          "requests without a Host; turnout makes no route for it";
        }
        where.hosts = hosts;
        if (server_return) {
            // The server's return runs before any location is chosen: it answers everything.
            fixed_answer(*server_return, {"/", false}, where);
            for (const auto& e : d.block)
                if (e.name == "location")
                    never_reached(e, "never reached: the server's return answers every request first");
            return;
        }
        for (const auto& e : d.block)
            if (e.name == "location")
                location(e, where, s);
    }

    static std::string join(const std::vector<std::string>& names)
    {
        std::string out;
        for (const auto& n : names)
            out += (out.empty() ? "" : ", ") + n;
        return out;
    }

    void never_reached(const directive& d, const std::string& why)
    {
        report(d, verdict::ignored, why);
        for (const auto& e : d.block)
            never_reached(e, why);
    }

    void listen(const listen_info& l, const scope& s, const directive& at)
    {
        if (l.address.empty())
            return (void)report(at, verdict::untranslated, "turnout listens on host:port over TCP only");
        auto& listener = st_.model.listener_for(l.address);
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

    void location(const directive& d, const place& where, scope inherited)
    {
        scope s = inherited;
        location_path at;
        std::string why;
        if (d.args.size() == 1 && d.args[0].starts_with('@'))
            return (void)report(d, verdict::untranslated, "named locations serve nginx's internal redirects");
        if (d.args.size() == 1 && d.args[0].starts_with('/')) {
            at.path = d.args[0];
        } else if (d.args.size() == 2 && d.args[0] == "^~" && d.args[1].starts_with('/')) {
            at.path = d.args[1];
            why = "a prefix: ^~ only stops nginx's search of regular-expression locations, and turnout has none";
        } else if (d.args.size() == 2 && d.args[0] == "=" && d.args[1].starts_with('/')) {
            at = {d.args[1], true};
        } else {
            return (void)report(d, verdict::untranslated, "turnout has no regular-expression routes");
        }
        const directive* pass = nullptr;
        const directive* answer = nullptr;
        for (const auto& e : d.block) {
            if (e.name == "proxy_pass" && !pass)
                pass = &e;
            else if (e.name == "return" && !answer)
                answer = &e;
        }
        const auto line = report(d, verdict::translated, why);
        for (const auto& e : d.block) {
            if (e.name == "proxy_pass")
                answer ? (void)report(e, verdict::ignored, "never used: the location's return answers first")
                       : proxy_pass(e, at, where, line);
            else if (e.name == "return")
                &e == answer ? fixed_answer(e, at, where)
                             : (void)report(e, verdict::ignored, "never reached: the location's first return answers");
            else if (e.name == "location")
                continue;
            else if (!shared_level(e, s))
                unknown(e);
        }
        if (!pass && !answer) {
            st_.report[line].what = verdict::untranslated;
            st_.report[line].why = "no proxy_pass: turnout serves no files";
        } else if (answer && st_.report[line].why.empty()) {
            st_.report[line].why = "its return is reported on its own line";
        }
        for (const auto& e : d.block)
            if (e.name == "location")
                location(e, where, s);
    }

    // return → a route (per host of the server) that answers itself.
    void fixed_answer(const directive& e, const location_path& at, const place& where)
    {
        if (where.hosts.empty())
            return (void)report(e, verdict::approximated, "no route: its server takes requests without a Host only");
        const auto t = translate_return(e);
        if (t.malformed)
            return unknown(e);
        if (!t.answer)
            return (void)report(e, t.what, t.why);
        for (const auto& host : where.hosts) {
            toml_model::route r{host, at.path, "", e.file + ":" + std::to_string(e.line), at.exact, where.listen,
                                t.answer};
            if (const auto conflict = add_route(std::move(r)); !conflict.empty())
                return (void)report(e, verdict::untranslated, conflict);
        }
        report(e, t.what,
               std::string(at.exact ? "[[route]] path " : "[[route]] path_prefix ") + at.path + " answers " +
                   std::to_string(t.answer->status) + (t.why.empty() ? "" : " " + t.why));
    }

    void proxy_pass(const directive& e, const location_path& at, const place& where, std::size_t location_line)
    {
        const auto& hosts = where.hosts;
        const std::string& prefix = at.path;
        if (e.args.size() != 1)
            return unknown(e);
        if (hosts.empty())
            return (void)report(e, verdict::approximated, "no route: its server takes requests without a Host only");
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
            if (st_.splits.count(rest)) {
                if (!st_.splits.at(rest).problem.empty() ||
                    std::any_of(st_.splits.at(rest).shares.begin(), st_.splits.at(rest).shares.end(),
                                [&](const auto& v) { return !st_.upstreams.count(v.first); }))
                    return (void)report(e, verdict::untranslated, "its split_clients is not translated");
                const auto name = upstreams_.ensure_split(rest, tls);
                for (const auto& h : hosts)
                    routes.emplace_back(h, name);
                why = "[[route]] to the split_clients upstream " + name;
            } else if (st_.maps.count(rest)) {
                const auto& m = st_.maps.at(rest);
                if (!m.problem.empty())
                    return (void)report(e, verdict::untranslated, "its map is not translated");
                for (const auto& [host, value] : m.entries)
                    routes.emplace_back(host, upstreams_.ensure_upstream(value, tls));
                if (!m.default_value.empty())
                    for (const auto& h : hosts)
                        routes.emplace_back(h, upstreams_.ensure_upstream(m.default_value, tls));
                why = "one [[route]] per host of the map";
            } else {
                return (void)report(e, verdict::untranslated, rest + " is set by nothing turnout translates");
            }
        } else {
            if (!st_.upstreams.count(rest) && !backend_address(rest, tls ? 443 : 80))
                return (void)report(e, verdict::untranslated, "not an upstream nor a host:port");
            const auto name = upstreams_.ensure_upstream(rest, tls);
            for (const auto& h : hosts)
                routes.emplace_back(h, name);
            why = "[[route]] " + prefix + (at.exact ? " (this path only)" : "") + " to upstream " + name;
            if (tls) {
                v = verdict::approximated;
                why += "; turnout verifies the backend's certificate, which nginx does not by default";
            }
        }
        for (const auto& [host, upstream] : routes) {
            toml_model::route r{host, prefix, upstream, e.file + ":" + std::to_string(e.line), at.exact, where.listen,
                                std::nullopt};
            if (const auto conflict = add_route(std::move(r)); !conflict.empty())
                return (void)report(e, verdict::untranslated, conflict);
        }
        report(e, v, why);
        if (st_.report[location_line].why.empty())
            st_.report[location_line].why =
                std::string(at.exact ? "[[route]] path " : "[[route]] path_prefix ") + prefix +
                (at.exact ? " (this path only, before any prefix)" : "");
    }

    std::string add_route(toml_model::route route)
    {
        for (const auto& r : st_.model.routes) {
            if (r.host != route.host || r.path_prefix != route.path_prefix || r.exact != route.exact ||
                r.listen != route.listen)
                continue;
            const bool same = !r.fixed && !route.fixed && r.upstream == route.upstream;
            return same ? std::string{}
                        : "another location (" + r.comment + ") already takes " + route.path_prefix +
                              (route.host.empty() ? std::string{} : " of " + route.host);
        }
        st_.model.routes.push_back(std::move(route));
        return {};
    }

    translation_state st_;
    setting_translation settings_{st_};
    upstream_translation upstreams_;
    std::set<std::string> all_addresses_;
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
