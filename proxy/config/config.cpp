#include "turnout/config/config.hpp"
#include "turnout/config/duration.hpp"
#include "turnout/config/rules.hpp"
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
// Reading the TOML document

namespace {

constexpr std::string_view duration_hint = R"(expected a duration such as "250ms", "30s", "5m")";

std::string_view describe(toml::node_type type)
{
    switch (type) {
    case toml::node_type::none: return "nothing";
    case toml::node_type::table: return "a table";
    case toml::node_type::array: return "an array";
    case toml::node_type::string: return "a string";
    case toml::node_type::integer: return "an integer";
    case toml::node_type::floating_point: return "a floating-point number";
    case toml::node_type::boolean: return "a boolean";
    case toml::node_type::date: return "a date";
    case toml::node_type::time: return "a time";
    case toml::node_type::date_time: return "a date-time";
    }
    return "an unknown value";
}

std::string lower(std::string_view s)
{
    std::string out{s};
    std::transform(out.begin(), out.end(), out.begin(), [](unsigned char c) { return std::tolower(c); });
    return out;
}

bool source_before(const toml::source_region& a, const toml::source_region& b)
{
    return std::pair{a.begin.line, a.begin.column} < std::pair{b.begin.line, b.begin.column};
}

// What every check needs to report an error and to resolve a relative path: the file's name as
// the user gave it (for messages) and its folder as an absolute path.
class context {
public:
    explicit context(std::string source_path)
        : source_path_(std::move(source_path))
    {
        std::error_code ec;
        const fs::path absolute = source_path_.empty() ? fs::current_path(ec) / "-"
                                                       : fs::absolute(source_path_, ec);
        if (ec)
            fail("cannot resolve the config file's folder: " + ec.message());
        absolute_path_ = absolute.lexically_normal();
        base_dir_ = absolute_path_.parent_path();
    }

    std::string absolute_path() const { return source_path_.empty() ? std::string{} : absolute_path_.string(); }

    std::string resolve(std::string_view path) const
    {
        const fs::path p{path};
        return (p.is_absolute() ? p : base_dir_ / p).lexically_normal().string();
    }

    [[noreturn]] void fail(const toml::source_region& where, std::string message) const
    {
        throw config_error(source_path_, static_cast<int>(where.begin.line), static_cast<int>(where.begin.column),
                           std::move(message));
    }

    [[noreturn]] void fail(std::string message) const { throw config_error(source_path_, 0, 0, std::move(message)); }

private:
    std::string source_path_;
    fs::path absolute_path_;
    fs::path base_dir_;
};

// One TOML table being read. It refuses keys it does not know as soon as it is built, and its
// getters check type and range, so every error points at the offending key or value.
class table_reader {
public:
    // header is how the table is written in the file ("[proxy]", "[[upstream.pool]]"), or empty
    // for the document itself.
    table_reader(const context& ctx, const toml::table& table, std::string header,
                 std::initializer_list<std::string_view> known_keys)
        : ctx_(ctx)
        , table_(table)
        , header_(std::move(header))
        , section_(header_)
    {
        std::erase(section_, '[');
        std::erase(section_, ']');
        reject_unknown_keys(known_keys);
    }

    const toml::source_region& source() const { return table_.source(); }
    const toml::node* find(std::string_view key) const { return table_.get(key); }
    const std::string& header() const { return header_; }

    // "upstream.pool.weight": the key as a dotted path, for messages.
    std::string name(std::string_view key) const
    {
        return section_.empty() ? std::string{key} : section_ + "." + std::string{key};
    }

    [[noreturn]] void fail_at(std::string_view key, const std::string& message) const
    {
        ctx_.fail(find(key)->source(), name(key) + ": " + message);
    }

    [[noreturn]] void fail_at(const toml::node& node, std::string_view key, const std::string& message) const
    {
        ctx_.fail(node.source(), name(key) + ": " + message);
    }

    [[noreturn]] void fail_type(const toml::node& node, std::string_view key, std::string_view expected) const
    {
        fail_at(node, key, "expected " + std::string{expected} + ", got " + std::string{describe(node.type())});
    }

    std::optional<std::string> get_string(std::string_view key) const
    {
        const toml::node* node = find(key);
        if (!node)
            return std::nullopt;
        if (!node->is_string())
            fail_type(*node, key, "a string");
        return node->as_string()->get();
    }

    std::string require_string(std::string_view key) const
    {
        if (!find(key))
            ctx_.fail(source(), "missing key '" + std::string{key} + "' in " + header_);
        return *get_string(key);
    }

    std::optional<std::int64_t> get_integer(std::string_view key, std::int64_t min, std::int64_t max) const
    {
        const toml::node* node = find(key);
        if (!node)
            return std::nullopt;
        if (!node->is_integer())
            fail_type(*node, key, "an integer");
        const std::int64_t value = node->as_integer()->get();
        if (value < min || value > max)
            fail_at(key, range_message(value, min, max));
        return value;
    }

    // An integer or a float, at least min.
    std::optional<double> get_number(std::string_view key, double min) const
    {
        const toml::node* node = find(key);
        if (!node)
            return std::nullopt;
        if (!node->is_number())
            fail_type(*node, key, "a number");
        const double value = node->is_integer() ? static_cast<double>(node->as_integer()->get())
                                                : node->as_floating_point()->get();
        if (!(value >= min))
            fail_at(key, "must be at least " + std::to_string(min));
        return value;
    }

    // min is 0s, or 1ms for a timeout where 0 would mean "expire at once".
    std::optional<duration> get_duration(std::string_view key, duration min = duration::zero()) const
    {
        const toml::node* node = find(key);
        if (!node)
            return std::nullopt;
        if (!node->is_string())
            fail_at(key, std::string{duration_hint} + ", got " + std::string{describe(node->type())});
        const auto value = parse_duration(node->as_string()->get());
        if (!value)
            fail_at(key, std::string{duration_hint});
        if (*value < min)
            fail_at(key, "must be greater than 0s");
        return value;
    }

    // A file system path; relative ones are made absolute against the config file's folder.
    std::optional<std::string> get_path(std::string_view key) const
    {
        const auto text = get_string(key);
        if (!text)
            return std::nullopt;
        if (text->empty())
            fail_at(key, "must not be empty (leave the key out instead)");
        return ctx_.resolve(*text);
    }

    const toml::table* get_table(std::string_view key) const
    {
        const toml::node* node = find(key);
        if (!node)
            return nullptr;
        if (!node->is_table())
            fail_type(*node, key, "a table ([" + name(key) + "])");
        return node->as_table();
    }

    // [[key]]: an array whose every element is a table. Empty when the key is absent.
    std::vector<const toml::table*> get_tables(std::string_view key) const
    {
        std::vector<const toml::table*> tables;
        const toml::node* node = find(key);
        if (!node)
            return tables;
        const std::string expected = "an array of tables ([[" + name(key) + "]])";
        if (!node->is_array())
            fail_type(*node, key, expected);
        for (const toml::node& element : *node->as_array()) {
            if (!element.is_table())
                fail_type(element, key, expected);
            tables.push_back(element.as_table());
        }
        return tables;
    }

    // An array of strings, each with its node so errors can point at the element.
    std::vector<std::pair<std::string, const toml::node*>> get_strings(std::string_view key) const
    {
        std::vector<std::pair<std::string, const toml::node*>> strings;
        const toml::node* node = find(key);
        if (!node)
            return strings;
        if (!node->is_array())
            fail_type(*node, key, "an array of strings");
        for (const toml::node& element : *node->as_array()) {
            if (!element.is_string())
                fail_type(element, key, "a string");
            strings.emplace_back(element.as_string()->get(), &element);
        }
        return strings;
    }

private:
    static std::string range_message(std::int64_t value, std::int64_t min, std::int64_t max)
    {
        if (value < 0 && min == 0)
            return "must not be negative";
        if (max == std::numeric_limits<std::int64_t>::max())
            return min == 1 ? "must be greater than 0" : "must be at least " + std::to_string(min);
        return "must be between " + std::to_string(min) + " and " + std::to_string(max);
    }

    // Reports the first unknown key in file order, so fixing errors top to bottom works.
    void reject_unknown_keys(std::initializer_list<std::string_view> known_keys) const
    {
        const toml::key* first = nullptr;
        for (const auto& [key, value] : table_) {
            const bool known = std::find(known_keys.begin(), known_keys.end(), key.str()) != known_keys.end();
            if (!known && (!first || source_before(key.source(), first->source())))
                first = &key;
        }
        if (!first)
            return;
        std::string message = "unknown key '" + std::string{first->str()} + "'";
        message += header_.empty() ? " (expected [proxy], [runtime], [[listen]], [[upstream]] or [[route]])"
                                   : " in " + header_;
        ctx_.fail(first->source(), std::move(message));
    }

    const context& ctx_;
    const toml::table& table_;
    std::string header_;
    std::string section_;
};

constexpr std::array<std::string_view, 7> log_levels{"trace", "debug", "info", "warn", "error", "critical", "off"};

// sun_path holds 108 bytes on Linux, including the terminating NUL.
constexpr std::size_t max_unix_socket_path = sizeof(sockaddr_un{}.sun_path) - 1;

constexpr std::int64_t max_workers = 1024;
constexpr std::int64_t max_rise_fall = 1000;
constexpr std::int64_t no_limit = std::numeric_limits<std::int64_t>::max();
constexpr std::int64_t max_rate_requests = 1'000'000'000;
// A body held whole in memory before routing: bounded well below max_body_bytes' range.
constexpr std::int64_t max_inspect_bytes = 16 * 1024 * 1024;

// Two spellings of one endpoint ("LocalHost:80" and "localhost:080") are the same endpoint.
std::pair<std::string, std::uint16_t> endpoint_key(const host_port& hp) { return {lower(hp.host), hp.port}; }

host_port read_address(const table_reader& table, std::string_view key, const std::string& text,
                       const toml::node& node)
{
    auto address = parse_host_port(text);
    if (!address)
        table.fail_at(node, key, "expected host:port such as \"127.0.0.1:8080\" or \"[::1]:8080\", got \"" + text + "\"");
    return std::move(*address);
}

void read_proxy(const context& ctx, const toml::table& table, proxy_config& proxy)
{
    const table_reader r{ctx, table, "[proxy]",
                         {"workers", "admin_socket", "status_address", "state_file", "drain_timeout", "access_log",
                          "log_level", "header_timeout", "idle_timeout", "connect_timeout", "response_timeout",
                          "stream_idle_timeout", "max_header_bytes", "max_uri_bytes", "max_body_bytes",
                          "max_inspect_bytes", "access_log_format", "pid_file"}};

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
}

// A header field name (RFC 9110 token).
bool is_field_name(std::string_view name)
{
    constexpr std::string_view extra = "!#$%&'*+-.^_`|~";
    return !name.empty() && std::all_of(name.begin(), name.end(), [&](char c) {
        return std::isalnum(static_cast<unsigned char>(c)) || extra.find(c) != std::string_view::npos;
    });
}

// "none" | "ip" | "header:NAME"; allow_none is false where a key is required (rate limits).
client_key_config read_client_key(const table_reader& r, std::string_view key, bool allow_none)
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

// "http://HOST:PORT" with an optional trailing "/": etcd's v3 JSON gateway at its root.
host_port read_etcd_endpoint(const table_reader& r, const std::string& text, const toml::node& node)
{
    constexpr std::string_view scheme = "http://";
    if (text.starts_with("https://"))
        r.fail_at(node, "etcd_endpoints",
                  "https endpoints are not supported yet (turnout speaks plain HTTP to etcd in this version): \"" +
                      text + "\"");
    if (!text.starts_with(scheme))
        r.fail_at(node, "etcd_endpoints", "expected \"http://HOST:PORT\", got \"" + text + "\"");
    std::string rest = text.substr(scheme.size());
    if (rest.ends_with('/'))
        rest.pop_back();
    auto address = parse_host_port(rest);
    if (!address)
        r.fail_at(node, "etcd_endpoints", "expected \"http://HOST:PORT\", got \"" + text + "\"");
    return std::move(*address);
}

void read_runtime(const context& ctx, const toml::table& table, runtime_config& runtime)
{
    const table_reader r{ctx, table, "[runtime]",
                         {"store", "etcd_endpoints", "etcd_prefix", "etcd_ca_file", "etcd_cert_file", "etcd_key_file"}};
    if (const auto v = r.get_string("store")) {
        if (*v == "file")
            runtime.store = store_kind::file;
        else if (*v == "etcd")
            runtime.store = store_kind::etcd;
        else
            r.fail_at("store", "expected \"file\" or \"etcd\", got \"" + *v + "\"");
    }
    const bool etcd = runtime.store == store_kind::etcd;
    for (const auto key : {"etcd_endpoints", "etcd_prefix", "etcd_ca_file", "etcd_cert_file", "etcd_key_file"})
        if (!etcd && r.find(key))
            r.fail_at(key, "is set but store is \"file\"; set store = \"etcd\" to use etcd");
    if (!etcd)
        return;

    const toml::node* endpoints = r.find("etcd_endpoints");
    for (const auto& [text, node] : r.get_strings("etcd_endpoints"))
        runtime.etcd_endpoints.push_back(read_etcd_endpoint(r, text, *node));
    if (endpoints && runtime.etcd_endpoints.empty())
        r.fail_at("etcd_endpoints", "must name at least one endpoint");
    if (!endpoints)
        runtime.etcd_endpoints.push_back(*parse_host_port("127.0.0.1:2379"));

    if (const auto v = r.get_string("etcd_prefix")) {
        if (v->empty())
            r.fail_at("etcd_prefix", "must not be empty: the prefix keeps turnout's keys apart from others'");
        if (std::any_of(v->begin(), v->end(), [](unsigned char c) { return c < 0x20 || c == 0x7f; }))
            r.fail_at("etcd_prefix", "must not contain control characters");
        runtime.etcd_prefix = *v;
    }

    runtime.etcd_ca_file = r.get_path("etcd_ca_file").value_or("");
    runtime.etcd_cert_file = r.get_path("etcd_cert_file").value_or("");
    runtime.etcd_key_file = r.get_path("etcd_key_file").value_or("");
    if (runtime.etcd_cert_file.empty() != runtime.etcd_key_file.empty()) {
        const bool has_cert = !runtime.etcd_cert_file.empty();
        r.fail_at(has_cert ? "etcd_cert_file" : "etcd_key_file",
                  std::string{"is set but "} + (has_cert ? "etcd_key_file" : "etcd_cert_file") +
                      " is not; a client certificate needs both");
    }
    for (const auto key : {"etcd_ca_file", "etcd_cert_file", "etcd_key_file"})
        if (r.find(key))
            r.fail_at(key, "TLS toward etcd is not supported yet (turnout speaks plain HTTP to etcd in this "
                           "version); remove it and use an http:// endpoint on a trusted network");
}

listen_config read_listen(const context& ctx, const toml::table& table)
{
    const table_reader r{ctx, table, "[[listen]]",
                         {"address", "tls_cert", "tls_key", "certificate", "allowed_origins", "allowed_hosts",
                          "rate_limit", "max_streams_per_client"}};
    listen_config listen;
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
        config.listeners.push_back(std::move(listen));
    }
}

pool_config read_pool(const context& ctx, const toml::table& table)
{
    const table_reader r{ctx, table, "[[upstream.pool]]",
                         {"name", "weight", "version", "backends", "tls", "tls_ca_file", "tls_server_name"}};
    pool_config pool;
    pool.name = r.require_string("name");
    if (!is_valid_name(pool.name))
        r.fail_at("name", std::string{name_rule});
    pool.weight = static_cast<std::uint32_t>(r.get_integer("weight", 0, max_weight).value_or(0));
    pool.version = r.get_string("version").value_or("");
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
    for (const auto& [text, node] : r.get_strings("backends")) {
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

void read_upstreams(const context& ctx, const table_reader& root, configuration& config)
{
    for (const toml::table* table : root.get_tables("upstream")) {
        upstream_config upstream = read_upstream(ctx, *table);
        if (config.find_upstream(upstream.name))
            ctx.fail(table->get("name")->source(), "upstream.name: duplicate upstream '" + upstream.name + "'");
        config.upstreams.push_back(std::move(upstream));
    }
}

route_config read_route(const context& ctx, const toml::table& table, const configuration& config)
{
    const table_reader r{ctx, table, "[[route]]", {"path_prefix", "host", "upstream", "mcp_method", "mcp_name"}};
    route_config route;
    if (const auto prefix = r.get_string("path_prefix")) {
        if (!prefix->starts_with('/'))
            r.fail_at("path_prefix", "must start with '/', got \"" + *prefix + "\"");
        route.path_prefix = *prefix;
    }
    if (const auto host = r.get_string("host")) {
        // Host names compare case-insensitively; storing them lower-case lets the router
        // compare bytes.
        const bool ok = !host->empty() && host->find_first_of(" \t/") == std::string::npos;
        if (!ok)
            r.fail_at("host", "expected a host name such as \"example.com\", got \"" + *host + "\"");
        route.host = lower(*host);
    }
    // MCP facts: exact, or '*' as a glob; a name alone would match a tool, a prompt and a
    // resource alike, so it needs its method.
    for (const auto key : {"mcp_method", "mcp_name"}) {
        if (const auto pattern = r.get_string(key)) {
            const bool ok = !pattern->empty() && std::none_of(pattern->begin(), pattern->end(), [](unsigned char c) {
                return c < 0x20 || c == 0x7f;
            });
            if (!ok)
                r.fail_at(key, "expected a name, or a pattern with '*' such as \"search_*\", got \"" + *pattern + "\"");
            (std::string_view{key} == "mcp_method" ? route.mcp_method : route.mcp_name) = *pattern;
        }
    }
    if (!route.mcp_name.empty() && route.mcp_method.empty())
        r.fail_at("mcp_name", "needs mcp_method in the same [[route]] (\"tools/call\", \"prompts/get\" or "
                              "\"resources/read\")");
    route.upstream = r.require_string("upstream");
    if (!config.find_upstream(route.upstream))
        r.fail_at("upstream", "no [[upstream]] is named '" + route.upstream + "'");
    return route;
}

void read_routes(const context& ctx, const table_reader& root, configuration& config)
{
    const auto tables = root.get_tables("route");
    std::set<std::tuple<std::string, std::string, std::string, std::string>> seen;
    for (const toml::table* table : tables) {
        route_config route = read_route(ctx, *table, config);
        if (!seen.emplace(route.host, route.path_prefix, route.mcp_method, route.mcp_name).second) {
            const toml::node* prefix = table->get("path_prefix");
            ctx.fail(prefix ? prefix->source() : table->source(),
                     "route: another [[route]] already has path_prefix \"" + route.path_prefix + "\"" +
                         (route.host.empty() ? std::string{} : " and host \"" + route.host + "\"") +
                         (route.mcp_method.empty() ? std::string{} : " and mcp_method \"" + route.mcp_method + "\"") +
                         (route.mcp_name.empty() ? std::string{} : " and mcp_name \"" + route.mcp_name + "\""));
        }
        config.routes.push_back(std::move(route));
    }
    if (!tables.empty() || config.upstreams.empty())
        return;
    // With a single upstream and no [[route]], everything goes to it: the smallest useful
    // config needs no routing section. With several, guessing would hide a mistake.
    if (config.upstreams.size() > 1)
        ctx.fail("several [[upstream]] tables but no [[route]]; add a [[route]] to say which gets what");
    config.routes.push_back(route_config{"/", "", config.upstreams.front().name, "", ""});
}

configuration read_configuration(const context& ctx, const toml::table& document)
{
    configuration config;
    config.path = ctx.absolute_path();
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
