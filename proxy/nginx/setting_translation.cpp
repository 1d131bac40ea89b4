#include "turnout/nginx/setting_translation.hpp"

#include "turnout/config/duration.hpp"
#include "turnout/nginx/values.hpp"

#include <algorithm>
#include <cctype>
#include <limits>
#include <map>
#include <optional>
#include <set>
#include <string_view>

namespace turnout::nginx {

bool setting_translation::log(const directive& d)
{
    if (d.name == "error_log")
        return error_log(d), true;
    if (d.name == "access_log")
        return access_log(d), true;
    return false;
}

void setting_translation::error_log(const directive& d)
{
    static const std::map<std::string_view, std::string_view> levels = {
        {"debug", "debug"}, {"info", "info"},   {"notice", "info"},     {"warn", "warn"},
        {"error", "error"}, {"crit", "critical"}, {"alert", "critical"}, {"emerg", "critical"}};
    const auto level = d.args.size() >= 2 ? levels.find(d.args[1]) : levels.end();
    if (level != levels.end())
        st_.model.set("log_level", toml_string(level->second), "error_log level " + d.args[1]);
    st_.add(d, verdict::approximated,
           std::string(level != levels.end() ? "log_level; " : "") +
               "turnout writes its error log to stderr (the journal under systemd), not to a file");
}

void setting_translation::access_log(const directive& d)
{
    if (d.args.empty())
        return st_.unknown(d);
    if (d.args[0] == "off") {
        set_access_log(d, "off", "", "access_log = \"off\"");
        return;
    }
    const bool syslog = d.args[0].starts_with("syslog:");
    const std::string target = syslog ? "stderr" : st_.resolve(d, d.args[0]);
    const std::string format = d.args.size() >= 2 ? d.args[1] : "combined";
    std::string why = syslog ? "syslog: written to stderr (the journal under systemd)" : "access_log";
    if (format == "combined")
        why += ", access_log_format = \"combined\" (nginx's)";
    else
        why += ", in nginx's combined format: turnout writes no custom log_format (\"" + format + "\")";
    set_access_log(d, target, "combined", why);
    if (syslog || format != "combined" || d.args.size() > 2)
        st_.report[st_.report.size() - 1].what = verdict::approximated;
}

void setting_translation::set_access_log(const directive& d, const std::string& target, const std::string& format,
                    const std::string& why)
{
    if (const auto* earlier = st_.model.find("access_log"); earlier && earlier->value != toml_string(target)) {
        st_.add(d, verdict::approximated,
               "turnout has one access log; the first one (" + earlier->value + ") is kept");
        return;
    }
    st_.model.set("access_log", toml_string(target), "access_log");
    if (!format.empty())
        st_.model.set("access_log_format", toml_string(format), "nginx's default log format");
    st_.add(d, verdict::translated, why);
}

// A [proxy] value set at http, server or location level: turnout has one for everything.
bool setting_translation::proxy_value(const directive& d)
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
        st_.add(d, verdict::untranslated, "cannot read \"" + d.args[0] + "\"");
        return true;
    }
    st_.settings[std::string(d.name)].uses.emplace_back(*value, st_.add(d, verdict::translated, ""));
    return true;
}

bool setting_translation::proxy_setting(const directive& d)
{
    const std::string_view n = d.name;
    const std::string a0 = d.args.empty() ? "" : d.args[0];
    if (n == "proxy_buffering" || n == "proxy_request_buffering") {
        st_.add(d, a0 == "off" ? verdict::translated : verdict::ignored,
               a0 == "off" ? "nothing needed: turnout never buffers; it streams bodies and SSE events as they "
                             "arrive"
                           : "turnout streams instead (it never buffers), which changes no answer");
        return true;
    }
    if (n == "proxy_http_version") {
        st_.add(d, a0 == "1.1" ? verdict::translated : verdict::approximated,
               "turnout speaks HTTP/1.1 with keep-alive to backends");
        return true;
    }
    if (n == "proxy_send_timeout" || n == "send_timeout" || n == "client_body_timeout") {
        st_.add(d, verdict::approximated,
               "turnout has no write or body-read timeout of its own: a stalled peer is held by backpressure "
               "until idle_timeout or stream_idle_timeout");
        return true;
    }
    if (n == "proxy_next_upstream" || n == "proxy_next_upstream_tries" || n == "proxy_next_upstream_timeout") {
        st_.add(d, verdict::approximated,
               "turnout tries another backend when a connect fails or times out, before anything was sent; "
               "never after");
        return true;
    }
    if (n == "proxy_set_header" && d.args.size() == 2)
        return set_header(d), true;
    if (n == "proxy_ssl_verify" || n == "proxy_ssl_server_name" || n == "proxy_ssl_name" ||
        n == "proxy_ssl_trusted_certificate" || n == "proxy_ssl_protocols" || n == "proxy_ssl_ciphers") {
        st_.add(d, verdict::approximated,
               "TLS to backends (proxy_pass https://) always verifies the chain against the system's store "
               "and the backend's address or tls_server_name");
        return true;
    }
    if (n == "proxy_redirect" && a0 == "default") {
        st_.add(d, verdict::ignored, "the default rewrites nothing when proxy_pass has no path");
        return true;
    }
    return false;
}

void setting_translation::set_header(const directive& d)
{
    std::string field = d.args[0];
    std::transform(field.begin(), field.end(), field.begin(), [](unsigned char c) { return std::tolower(c); });
    const std::string& value = d.args[1];
    if ((field == "host" && (value == "$host" || value == "$http_host")) ||
        (field == "x-forwarded-for" && value == "$proxy_add_x_forwarded_for") ||
        (field == "x-forwarded-proto" && value == "$scheme") ||
        (field == "x-forwarded-host" && (value == "$host" || value == "$http_host")) ||
        (field == "mcp-session-id" && value == "$http_mcp_session_id"))
        return (void)st_.add(d, verdict::translated, "turnout does this by itself");
    if (field == "connection" && (value.empty() || value == "keep-alive"))
        return (void)st_.add(d, verdict::translated,
                            "turnout removes hop-by-hop fields and keeps backend connections alive");
    if (field == "x-real-ip" && value == "$remote_addr")
        return (void)st_.add(d, verdict::approximated,
                            "turnout sends the client's address in X-Forwarded-For, not X-Real-IP");
    if (field == "upgrade" || (field == "connection" && value == "upgrade"))
        return (void)st_.add(d, verdict::untranslated, "turnout does not forward WebSocket upgrades");
    st_.add(d, verdict::untranslated, "turnout cannot set request fields toward backends");
}

// One [proxy] value from every directive that set it: turnout has one value for all
// locations, so differing ones become the largest (nothing is cut sooner than in nginx).
void setting_translation::settle(const std::string& directive_name, const std::vector<std::string>& keys, bool size,
            std::uint64_t nginx_default)
{
    const auto it = st_.settings.find(directive_name);
    const auto text = [&](std::uint64_t v) {
        if (size)
            return v == 0 ? std::to_string(std::numeric_limits<std::int64_t>::max()) : std::to_string(v);
        return toml_string(config::format_duration(config::duration(v)));
    };
    if (it == st_.settings.end()) {
        for (const auto& key : keys)
            st_.model.set(key, text(nginx_default), "nginx's default " + directive_name);
        return;
    }
    std::set<std::uint64_t> values;
    for (const auto& [value, line] : it->second.uses)
        values.insert(value);
    // 0 is "no limit" for a size: the largest of all.
    const std::uint64_t chosen = size && values.count(0) ? 0 : *values.rbegin();
    const bool zero_time = !size && chosen == 0;
    for (const auto& key : keys)
        st_.model.set(key, zero_time ? toml_string("1ms") : text(chosen), directive_name);
    std::string why = keys.front();
    for (std::size_t i = 1; i < keys.size(); ++i)
        why += " and " + keys[i];
    for (const auto& [value, line] : it->second.uses) {
        auto& r = st_.report[line];
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

void setting_translation::finish()
{
    settle("proxy_connect_timeout", {"connect_timeout"}, false, 60'000);
    settle("proxy_read_timeout", {"response_timeout", "stream_idle_timeout"}, false, 60'000);
    settle("client_header_timeout", {"header_timeout"}, false, 60'000);
    settle("keepalive_timeout", {"idle_timeout"}, false, 75'000);
    settle("client_max_body_size", {"max_body_bytes"}, true, 1024 * 1024);
    if (!st_.model.find("max_header_bytes")) {
        st_.model.set("max_uri_bytes", "8192", "nginx's default large_client_header_buffers 4 8k");
        st_.model.set("max_header_bytes", "32768", "nginx's default large_client_header_buffers 4 8k");
    }
}

} // namespace turnout::nginx
