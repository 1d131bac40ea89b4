#include "turnout/config/config.hpp"
#include "turnout/config/duration.hpp"
#include "turnout/config/rules.hpp"
#include "turnout/config/table_reader.hpp"
#include "turnout/edge/origin.hpp"

#include <toml++/toml.h>

#include <sys/un.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <charconv>
#include <filesystem>
#include <fstream>
#include <initializer_list>
#include <iterator>
#include <limits>
#include <map>
#include <set>
#include <sstream>
#include <system_error>
#include <tuple>
#include <utility>

namespace turnout::config {

namespace fs = std::filesystem;

namespace {

std::string format_error(const std::string& path, int line, int column, const std::string& message)
{
    std::string where = path;
    if (line > 0)
        where += ":" + std::to_string(line) + ":" + std::to_string(column);
    return where.empty() ? message : where + ": " + message;
}

} // namespace

config_error::config_error(std::string path, int line, int column, std::string message)
    : std::runtime_error(format_error(path, line, column, message))
    , path_(std::move(path))
    , line_(line)
    , column_(column)
    , message_(std::move(message))
{
}

const upstream_config* configuration::find_upstream(std::string_view name) const
{
    const auto it = std::find_if(upstreams.begin(), upstreams.end(),
                                 [name](const upstream_config& u) { return u.name == name; });
    return it == upstreams.end() ? nullptr : &*it;
}

std::string_view to_string(health_kind k)
{
    switch (k) {
    case health_kind::none: return "none";
    case health_kind::http: return "http";
    case health_kind::mcp: return "mcp";
    }
    return "unknown";
}

std::string_view to_string(affinity_kind k)
{
    switch (k) {
    case affinity_kind::table: return "table";
    case affinity_kind::token: return "token";
    }
    return "unknown";
}

std::string_view to_string(store_kind k)
{
    switch (k) {
    case store_kind::file: return "file";
    case store_kind::etcd: return "etcd";
    }
    return "unknown";
}

// ---------------------------------------------------------------------------------------------
// Reading the TOML document: [proxy], [runtime] and [[listen]] here; [[upstream]] in
// upstream_reader.cpp, [[route]] in route_reader.cpp.

using namespace detail;

namespace {

constexpr std::array<std::string_view, 7> log_levels{"trace", "debug", "info", "warn", "error", "critical", "off"};

// sun_path holds 108 bytes on Linux, including the terminating NUL.
constexpr std::size_t max_unix_socket_path = sizeof(sockaddr_un{}.sun_path) - 1;

constexpr std::int64_t max_workers = 1024;
constexpr std::int64_t no_limit = std::numeric_limits<std::int64_t>::max();
constexpr std::int64_t max_rate_requests = 1'000'000'000;
// A body held whole in memory before routing: bounded well below max_body_bytes' range.
constexpr std::int64_t max_inspect_bytes = 16 * 1024 * 1024;

// DNS discovery's settings: how often names are asked again, and whom.
void read_dns(const table_reader& r, proxy_config& proxy)
{
    // Below 100 ms a TTL of 0 would make turnout a load generator for its DNS server.
    constexpr duration floor{100};
    proxy.dns_min_interval = r.get_duration("dns_min_interval", floor).value_or(proxy.dns_min_interval);
    const auto max = r.get_duration("dns_max_interval", floor);
    // A short minimum given alone lowers nothing else; a long one raises the default ceiling.
    proxy.dns_max_interval = max.value_or(std::max(proxy.dns_max_interval, proxy.dns_min_interval));
    if (proxy.dns_max_interval < proxy.dns_min_interval)
        r.fail_at("dns_max_interval", "dns_max_interval (" + format_duration(proxy.dns_max_interval) +
                                          ") must not be shorter than dns_min_interval (" +
                                          format_duration(proxy.dns_min_interval) + ")");
    if (const auto v = r.get_string("resolver")) {
        const auto address = parse_host_port(*v);
        if (!address || address->port == 0 || !is_ip_literal(address->host))
            r.fail_at("resolver", "expected the DNS server as IP:PORT such as \"127.0.0.1:53\" or \"[::1]:53\", got \"" +
                                      *v + "\"");
        proxy.resolver = *address;
    }
}

void read_proxy(const context& ctx, const toml::table& table, proxy_config& proxy)
{
    const table_reader r{ctx, table, "[proxy]",
                         {"workers", "admin_socket", "status_address", "state_file", "drain_timeout", "access_log",
                          "log_level", "header_timeout", "idle_timeout", "connect_timeout", "response_timeout",
                          "stream_idle_timeout", "max_header_bytes", "max_uri_bytes", "max_body_bytes",
                          "max_inspect_bytes", "access_log_format", "pid_file", "dns_min_interval", "dns_max_interval",
                          "resolver", "io_backend"}};

    if (const auto v = r.get_integer("workers", 0, max_workers))
        proxy.workers = static_cast<unsigned>(*v);
    if (const auto v = r.get_path("admin_socket")) {
        if (v->size() > max_unix_socket_path)
            r.fail_at("admin_socket", "path is too long for a Unix socket (" + std::to_string(v->size()) +
                                          " bytes once absolute; at most " + std::to_string(max_unix_socket_path) +
                                          ")");
        proxy.admin_socket = *v;
    }
    if (const auto v = r.get_string("status_address"))
        proxy.status_address = read_address(r, "status_address", *v, *r.find("status_address"));
    if (const auto v = r.get_path("state_file"))
        proxy.state_file = *v;
    if (const auto v = r.get_string("access_log")) {
        if (v->empty())
            r.fail_at("access_log", "expected \"stderr\", \"off\" or a file path, got \"\"");
        proxy.access_log = (*v == "stderr" || *v == "off") ? *v : ctx.resolve(*v);
    }
    if (const auto v = r.get_string("access_log_format")) {
        if (*v != "turnout" && *v != "combined" && *v != "json")
            r.fail_at("access_log_format", "expected \"turnout\", \"combined\" or \"json\", got \"" + *v + "\"");
        proxy.access_log_format = *v;
    }
    if (const auto v = r.get_path("pid_file"))
        proxy.pid_file = *v;
    if (const auto v = r.get_string("io_backend")) {
        if (*v == "auto")
            proxy.io_backend = io_backend_setting::automatic;
        else if (*v == "io_uring")
            proxy.io_backend = io_backend_setting::io_uring;
        else if (*v == "epoll")
            proxy.io_backend = io_backend_setting::epoll;
        else
            r.fail_at("io_backend", "expected \"auto\", \"io_uring\" or \"epoll\", got \"" + *v + "\"");
    }
    if (const auto v = r.get_string("log_level")) {
        if (std::find(log_levels.begin(), log_levels.end(), *v) == log_levels.end())
            r.fail_at("log_level", "expected one of trace, debug, info, warn, error, critical, off; got \"" + *v + "\"");
        proxy.log_level = *v;
    }

    // drain_timeout 0s is meaningful (close streams at once) and so is stream_idle_timeout 0s
    // (never); the other timeouts would expire immediately at 0.
    constexpr duration positive{1};
    proxy.drain_timeout = r.get_duration("drain_timeout").value_or(proxy.drain_timeout);
    proxy.header_timeout = r.get_duration("header_timeout", positive).value_or(proxy.header_timeout);
    proxy.idle_timeout = r.get_duration("idle_timeout", positive).value_or(proxy.idle_timeout);
    proxy.connect_timeout = r.get_duration("connect_timeout", positive).value_or(proxy.connect_timeout);
    proxy.response_timeout = r.get_duration("response_timeout", positive).value_or(proxy.response_timeout);
    proxy.stream_idle_timeout = r.get_duration("stream_idle_timeout").value_or(proxy.stream_idle_timeout);

    if (const auto v = r.get_integer("max_header_bytes", 1, no_limit))
        proxy.max_header_bytes = static_cast<std::size_t>(*v);
    if (const auto v = r.get_integer("max_uri_bytes", 1, no_limit))
        proxy.max_uri_bytes = static_cast<std::size_t>(*v);
    if (const auto v = r.get_integer("max_body_bytes", 1, no_limit))
        proxy.max_body_bytes = static_cast<std::size_t>(*v);
    if (const auto v = r.get_integer("max_inspect_bytes", 0, max_inspect_bytes))
        proxy.max_inspect_bytes = static_cast<std::size_t>(*v);
    read_dns(r, proxy);
}

// A header field name (RFC 9110 token).
bool is_field_name(std::string_view name)
{
    constexpr std::string_view extra = "!#$%&'*+-.^_`|~";
    return !name.empty() && std::all_of(name.begin(), name.end(), [&](char c) {
        return std::isalnum(static_cast<unsigned char>(c)) || extra.find(c) != std::string_view::npos;
    });
}

} // namespace

// "none" | "ip" | "header:NAME"; allow_none is false where a key is required (rate limits).
client_key_config detail::read_client_key(const table_reader& r, std::string_view key, bool allow_none)
{
    const auto text = r.get_string(key);
    client_key_config out;
    const std::string expected = allow_none ? "expected \"none\", \"ip\" or \"header:NAME\""
                                            : "expected \"ip\" or \"header:NAME\"";
    if (*text == "ip")
        out.source = client_key_config::kind::ip;
    else if (*text == "none" && allow_none)
        out.source = client_key_config::kind::none;
    else if (text->starts_with("header:") && is_field_name(text->substr(7)))
        out = {client_key_config::kind::header, text->substr(7)};
    else
        r.fail_at(key, expected + ", got \"" + *text + "\"");
    return out;
}

namespace {

void read_rate_limit(const context& ctx, const toml::table& table, listen_config& listen)
{
    const table_reader r{ctx, table, "[listen.rate_limit]", {"requests", "per", "burst", "key"}};
    if (!r.find("requests"))
        ctx.fail(r.source(), "missing key 'requests' in listen.rate_limit");
    rate_limit_config limit;
    limit.requests = static_cast<std::uint32_t>(*r.get_integer("requests", 1, max_rate_requests));
    limit.per = r.get_duration("per", duration{1}).value_or(limit.per);
    limit.burst = static_cast<std::uint32_t>(r.get_integer("burst", 1, max_rate_requests).value_or(limit.requests));
    if (r.find("key"))
        limit.key = read_client_key(r, "key", false);
    listen.rate_limit = limit;
}

// allowed_origins and allowed_hosts: compared in one spelling, so normalized here.
void read_edge(const context& ctx, const table_reader& r, listen_config& listen)
{
    for (const auto& [text, node] : r.get_strings("allowed_origins")) {
        if (text == "*") {
            listen.any_origin = true;
            continue;
        }
        auto origin = edge::normalize_origin(text);
        if (origin.empty())
            r.fail_at(*node, "allowed_origins",
                      "expected \"*\" or an origin such as \"https://app.example.com\" (scheme, host, optional port, "
                      "no path), got \"" + text + "\"");
        listen.allowed_origins.push_back(std::move(origin));
    }
    for (const auto& [text, node] : r.get_strings("allowed_hosts")) {
        const auto parts = edge::parse_authority(text, 0);
        if (!parts)
            r.fail_at(*node, "allowed_hosts",
                      "expected a host name or address, optionally with :port, such as \"localhost\" or "
                      "\"127.0.0.1:8080\", got \"" + text + "\"");
        listen.allowed_hosts.push_back(lower(text));
    }
    if (const toml::table* limit = r.get_table("rate_limit"))
        read_rate_limit(ctx, *limit, listen);
    listen.max_streams_per_client =
        static_cast<std::uint32_t>(r.get_integer("max_streams_per_client", 0, max_rate_requests).value_or(0));
}

// "http://HOST:PORT" or "https://HOST:PORT", with an optional trailing "/": etcd's v3 JSON
// gateway at its root.
host_port read_etcd_endpoint(const table_reader& r, const std::string& text, const toml::node& node, bool& tls)
{
    const bool secure = text.starts_with("https://");
    if (!secure && !text.starts_with("http://"))
        r.fail_at(node, "etcd_endpoints", "expected \"http://HOST:PORT\" or \"https://HOST:PORT\", got \"" + text + "\"");
    std::string rest = text.substr(secure ? 8 : 7);
    if (rest.ends_with('/'))
        rest.pop_back();
    auto address = parse_host_port(rest);
    if (!address)
        r.fail_at(node, "etcd_endpoints", "expected \"http://HOST:PORT\" or \"https://HOST:PORT\", got \"" + text + "\"");
    tls = secure;
    return std::move(*address);
}

void read_etcd_endpoints(const table_reader& r, runtime_config& runtime)
{
    const toml::node* endpoints = r.find("etcd_endpoints");
    std::optional<bool> scheme_tls;
    for (const auto& [text, node] : r.get_strings("etcd_endpoints")) {
        bool tls = false;
        runtime.etcd_endpoints.push_back(read_etcd_endpoint(r, text, *node, tls));
        if (scheme_tls && *scheme_tls != tls)
            r.fail_at(*node, "etcd_endpoints", "mixes http:// and https:// endpoints; use one scheme for all");
        scheme_tls = tls;
    }
    if (endpoints && runtime.etcd_endpoints.empty())
        r.fail_at("etcd_endpoints", "must name at least one endpoint");
    if (!endpoints)
        runtime.etcd_endpoints.push_back(*parse_host_port("127.0.0.1:2379"));
    runtime.etcd_tls = scheme_tls.value_or(false);
}

void read_etcd_tls(const table_reader& r, runtime_config& runtime)
{
    runtime.etcd_ca_file = r.get_path("etcd_ca_file").value_or("");
    runtime.etcd_cert_file = r.get_path("etcd_cert_file").value_or("");
    runtime.etcd_key_file = r.get_path("etcd_key_file").value_or("");
    if (runtime.etcd_cert_file.empty() != runtime.etcd_key_file.empty()) {
        const bool has_cert = !runtime.etcd_cert_file.empty();
        r.fail_at(has_cert ? "etcd_cert_file" : "etcd_key_file",
                  std::string{"is set but "} + (has_cert ? "etcd_key_file" : "etcd_cert_file") +
                      " is not; a client certificate needs both");
    }
    if (!runtime.etcd_tls)
        for (const auto key : {"etcd_ca_file", "etcd_cert_file", "etcd_key_file"})
            if (r.find(key))
                r.fail_at(key, "is set but the etcd endpoints are http://; TLS toward etcd needs https:// endpoints");
}

void read_etcd_credentials(const table_reader& r, runtime_config& runtime)
{
    runtime.etcd_username = r.get_string("etcd_username").value_or("");
    runtime.etcd_password_file = r.get_path("etcd_password_file").value_or("");
    if (runtime.etcd_username.empty() != runtime.etcd_password_file.empty()) {
        const bool has_user = !runtime.etcd_username.empty();
        r.fail_at(has_user ? "etcd_username" : "etcd_password_file",
                  std::string{"is set but "} + (has_user ? "etcd_password_file" : "etcd_username") +
                      " is not; etcd's authentication needs both");
    }
    if (runtime.etcd_password_file.empty())
        return;
    std::ifstream in(runtime.etcd_password_file, std::ios::binary);
    std::ostringstream text;
    text << in.rdbuf();
    if (!in)
        r.fail_at("etcd_password_file", "cannot read " + runtime.etcd_password_file);
    runtime.etcd_password = text.str();
    while (!runtime.etcd_password.empty() && (runtime.etcd_password.back() == '\n' || runtime.etcd_password.back() == '\r'))
        runtime.etcd_password.pop_back();
    if (runtime.etcd_password.empty())
        r.fail_at("etcd_password_file", runtime.etcd_password_file + " is empty");
}

void read_runtime(const context& ctx, const toml::table& table, runtime_config& runtime)
{
    constexpr std::array etcd_keys{"etcd_endpoints", "etcd_prefix",   "etcd_ca_file",       "etcd_cert_file",
                                   "etcd_key_file",  "etcd_username", "etcd_password_file", "etcd_lease_ttl",
                                   "instance_name"};
    const table_reader r{ctx, table, "[runtime]",
                         {"store", "etcd_endpoints", "etcd_prefix", "etcd_ca_file", "etcd_cert_file", "etcd_key_file",
                          "etcd_username", "etcd_password_file", "etcd_lease_ttl", "instance_name"}};
    if (const auto v = r.get_string("store")) {
        if (*v == "file")
            runtime.store = store_kind::file;
        else if (*v == "etcd")
            runtime.store = store_kind::etcd;
        else
            r.fail_at("store", "expected \"file\" or \"etcd\", got \"" + *v + "\"");
    }
    const bool etcd = runtime.store == store_kind::etcd;
    for (const auto key : etcd_keys)
        if (!etcd && r.find(key))
            r.fail_at(key, "is set but store is \"file\"; set store = \"etcd\" to use etcd");
    if (!etcd)
        return;

    read_etcd_endpoints(r, runtime);
    if (const auto v = r.get_string("etcd_prefix")) {
        if (v->empty())
            r.fail_at("etcd_prefix", "must not be empty: the prefix keeps turnout's keys apart from others'");
        if (std::any_of(v->begin(), v->end(), [](unsigned char c) { return c < 0x20 || c == 0x7f; }))
            r.fail_at("etcd_prefix", "must not contain control characters");
        runtime.etcd_prefix = *v;
    }
    read_etcd_tls(r, runtime);
    read_etcd_credentials(r, runtime);
    if (const auto v = r.get_string("instance_name")) {
        if (v->empty() || std::any_of(v->begin(), v->end(), [](unsigned char c) { return c <= 0x20 || c == 0x7f; }))
            r.fail_at("instance_name", "must be a non-empty name without spaces or control characters");
        runtime.instance_name = *v;
    }
    if (const auto ttl = r.get_duration("etcd_lease_ttl")) {
        if (*ttl < std::chrono::seconds(1) || ttl->count() % 1000 != 0)
            r.fail_at("etcd_lease_ttl", "must be a whole number of seconds, at least \"1s\" (etcd's leases count in seconds)");
        runtime.etcd_lease_ttl = *ttl;
    }
}

listen_config read_listen(const context& ctx, const toml::table& table)
{
    const table_reader r{ctx, table, "[[listen]]",
                         {"address", "name", "tls_cert", "tls_key", "certificate", "allowed_origins",
                          "allowed_hosts", "rate_limit", "max_streams_per_client"}};
    listen_config listen;
    listen.name = r.get_string("name").value_or("");
    if (r.find("name") && !is_valid_name(listen.name))
        r.fail_at("name", std::string{name_rule});
    const std::string address = r.require_string("address");
    listen.address = read_address(r, "address", address, *r.find("address"));
    listen.tls_cert = r.get_path("tls_cert").value_or("");
    listen.tls_key = r.get_path("tls_key").value_or("");
    if (listen.tls_cert.empty() != listen.tls_key.empty()) {
        const bool has_cert = !listen.tls_cert.empty();
        r.fail_at(has_cert ? "tls_cert" : "tls_key",
                  std::string{"is set but "} + (has_cert ? "tls_key" : "tls_cert") + " is not; TLS needs both");
    }
    for (const auto* cert_table : r.get_tables("certificate")) {
        const table_reader c{ctx, *cert_table, "[[listen.certificate]]", {"cert", "key"}};
        certificate_config cert;
        cert.cert = c.get_path("cert").value_or("");
        cert.key = c.get_path("key").value_or("");
        if (cert.cert.empty() || cert.key.empty())
            ctx.fail(c.source(), "[[listen.certificate]] needs both cert and key");
        listen.certificates.push_back(std::move(cert));
    }
    if (!listen.certificates.empty() && !listen.tls())
        r.fail_at("certificate", "needs tls_cert and tls_key (the default certificate) in the same [[listen]]");
    read_edge(ctx, r, listen);
    return listen;
}

void read_listeners(const context& ctx, const table_reader& root, configuration& config)
{
    const auto tables = root.get_tables("listen");
    if (tables.empty())
        ctx.fail("no [[listen]] table; at least one listener address is required");
    std::set<std::pair<std::string, std::uint16_t>> seen;
    for (const toml::table* table : tables) {
        listen_config listen = read_listen(ctx, *table);
        // Port 0 asks the kernel for a fresh port each time, so it never collides.
        if (listen.address.port != 0 && !seen.insert(endpoint_key(listen.address)).second)
            ctx.fail(table->get("address")->source(),
                     "listen.address: \"" + listen.address.text + "\" is already used by another [[listen]]");
        const bool same_name = !listen.name.empty() && std::any_of(config.listeners.begin(), config.listeners.end(),
                                                                   [&](const auto& l) { return l.name == listen.name; });
        if (same_name)
            ctx.fail(table->get("name")->source(),
                     "listen.name: another [[listen]] is already named '" + listen.name + "'");
        config.listeners.push_back(std::move(listen));
    }
}


configuration read_configuration(const context& ctx, const toml::table& document)
{
    configuration config;
    config.path = ctx.absolute_path();
    // epoll unless io_uring is asked for: under io_uring, TLS listeners abort the process
    // (SSL_set_fd on a closed socket) and 2 % of 10 000 idle connections got 502 in
    // bench/run.sh; until that is found, io_uring is the operator's choice (README "Performance").
    config.proxy.io_backend = io_backend_setting::epoll;
    const table_reader root{ctx, document, "", {"proxy", "runtime", "listen", "upstream", "route"}};
    if (const toml::table* proxy = root.get_table("proxy"))
        read_proxy(ctx, *proxy, config.proxy);
    if (const toml::table* runtime = root.get_table("runtime"))
        read_runtime(ctx, *runtime, config.runtime);
    read_listeners(ctx, root, config);
    read_upstreams(ctx, root, config);
    read_routes(ctx, root, config);
    return config;
}

} // namespace

configuration parse(std::string_view toml_text, const std::string& source_path)
{
    const context ctx{source_path};
    toml::table document;
    try {
        document = toml::parse(toml_text, std::string_view{source_path});
    } catch (const toml::parse_error& e) {
        ctx.fail(e.source(), std::string{e.description()});
    }
    return read_configuration(ctx, document);
}

configuration load_file(const std::string& path)
{
    std::error_code ec;
    if (fs::is_directory(path, ec))
        throw config_error(path, 0, 0, "is a directory, not a config file");
    std::ifstream in(path, std::ios::binary);
    if (!in)
        throw config_error(path, 0, 0, "cannot open file");
    std::string text{std::istreambuf_iterator<char>{in}, std::istreambuf_iterator<char>{}};
    if (in.bad())
        throw config_error(path, 0, 0, "cannot read file");
    return parse(text, path);
}

} // namespace turnout::config