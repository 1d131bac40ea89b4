#pragma once
// The validated configuration: everything in SPEC.md's TOML, with defaults applied and every
// relative path made absolute against the config file's folder.

#include "turnout/config/discovery_name.hpp"
#include "turnout/config/duration.hpp"
#include "turnout/config/rollout_config.hpp"
#include "turnout/config/host_port.hpp"

#include <cstddef>
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace turnout::config {

using namespace std::chrono_literals;

/// A configuration that cannot be used. what() is "PATH:LINE:COL: message", or "PATH: message"
/// where no position applies (line and column are then 0).
class config_error : public std::runtime_error {
public:
    config_error(std::string path, int line, int column, std::string message);

    const std::string& path() const noexcept { return path_; }
    int line() const noexcept { return line_; }
    int column() const noexcept { return column_; }
    const std::string& message() const noexcept { return message_; }

private:
    std::string path_;
    int line_;
    int column_;
    std::string message_;
};

/// [proxy] io_backend: the event loop (net/io_backend.hpp). automatic: io_uring where it can
/// run, epoll elsewhere.
enum class io_backend_setting { automatic, io_uring, epoll };

struct proxy_config {
    unsigned workers = 0; // 0 = one per core
    io_backend_setting io_backend = io_backend_setting::automatic; // read at start only
    std::string admin_socket; // absolute path or empty
    std::optional<host_port> status_address;
    std::string state_file; // absolute path or empty
    duration drain_timeout = 30s;
    std::string access_log = "stderr"; // "stderr" | "off" | absolute path
    std::string access_log_format = "turnout"; // "turnout" | "combined" (nginx's) | "json"
    std::string pid_file; // absolute path or empty: written at start, removed at exit
    std::string log_level = "info"; // trace|debug|info|warn|error|critical|off
    duration header_timeout = 10s;
    duration idle_timeout = 60s;
    duration connect_timeout = 2s;
    duration response_timeout = 300s;
    duration stream_idle_timeout = 0s; // 0 = never
    std::size_t max_header_bytes = 16384;
    std::size_t max_uri_bytes = 8192;
    std::size_t max_body_bytes = 8388608;
    /// A request body read, before routing, for its JSON-RPC method and name when it has no
    /// Mcp-Method header and some route needs them; larger bodies route on headers and path.
    std::size_t max_inspect_bytes = 65536;
    /// DNS discovery (dns:/srv: backends): re-resolved at the records' TTL, bounded by these.
    duration dns_min_interval = 1s;
    duration dns_max_interval = 30s;
    /// The DNS server asked ("ADDR:PORT", an IP literal); nullopt = /etc/resolv.conf's.
    std::optional<host_port> resolver;
};

/// Who a request is from, for stickiness and edge limits: "none" | "ip" | "header:NAME".
struct client_key_config {
    enum class kind { none, ip, header };
    kind source = kind::none;
    std::string header; // the field's name, for kind::header

    bool enabled() const noexcept { return source != kind::none; }
};

/// [[listen]] rate_limit: a token bucket per client key, refilled at requests/per, holding
/// at most burst.
struct rate_limit_config {
    std::uint32_t requests = 0;
    duration per = 1s;
    std::uint32_t burst = 0;
    client_key_config key{client_key_config::kind::ip, {}};
};

/// A certificate chain and its private key (PEM files, absolute paths).
struct certificate_config {
    std::string cert;
    std::string key;
};

struct listen_config {
    host_port address;
    /// Optional: what a [[route]]'s listen names, to take requests of this listener only.
    std::string name;
    std::string tls_cert; // absolute path or empty; TLS when both are set (the default certificate)
    std::string tls_key;
    /// [[listen.certificate]]: more certificates, chosen by SNI against their own names
    /// (subjectAltName DNS entries, else the subject CN; wildcards allowed).
    std::vector<certificate_config> certificates;
    /// Origins allowed besides the request's own, lowercase "scheme://host[:port]" without a
    /// default port; any_origin (["*"]) turns the Origin check off.
    std::vector<std::string> allowed_origins;
    bool any_origin = false;
    /// Host names (lowercase, optionally with ":port") the listener answers; empty = any.
    std::vector<std::string> allowed_hosts;
    std::optional<rate_limit_config> rate_limit;
    /// Open event streams per client (by rate_limit's key, else by address); 0 = no limit.
    std::uint32_t max_streams_per_client = 0;

    bool tls() const noexcept { return !tls_cert.empty(); }
};

enum class health_kind { none, http, mcp };

struct health_config {
    health_kind kind = health_kind::mcp;
    std::string path = "/mcp";
    duration interval = 2s;
    duration timeout = 1s;
    unsigned rise = 2;
    unsigned fall = 3;
};

/// Passive checks on the traffic itself (an addition to SPEC.md, set in [upstream.health] as
/// passive_failures, passive_backoff, passive_backoff_max): `failures` connect errors or 5xx
/// answers in a row eject a backend from new sessions for `backoff`, doubled at each ejection
/// that follows without a good answer in between, up to `backoff_max`. They apply whatever
/// the active kind is, also with no [upstream.health] table at all.
struct passive_health_config {
    unsigned failures = 5; // 0 = passive checks off
    duration backoff = 2s;
    duration backoff_max = 60s;
};

struct pool_config {
    std::string name;
    std::uint32_t weight = 0;
    std::string version;
    std::vector<host_port> backends;
    /// nginx's backup servers: new sessions come here only when no other pool with weight > 0
    /// has an available backend (its own weight orders it among backup pools; it is never
    /// drawn by weight while a primary can take the session).
    bool backup = false;
    /// Backends found through DNS (dns:NAME:PORT, srv:_service._proto.NAME), besides those.
    std::vector<discovery_name> discovered;
    bool tls = false;            // TLS to the backends, verified
    std::string tls_ca_file;     // absolute path; empty = the system's trust store
    std::string tls_server_name; // SNI and the name verified; empty = the backend's IP literal
};

enum class affinity_kind { table, token };

struct upstream_config {
    std::string name;
    affinity_kind affinity = affinity_kind::table;
    std::string affinity_key_file; // absolute path or empty; required for token
    duration session_idle_timeout = 30min;
    std::vector<pool_config> pools;
    std::optional<health_config> health; // absent = no active checks
    passive_health_config passive;
    rollout_config rollout; // [upstream.rollout]: defaults of its rollouts
    /// Requests without a session choose their pool by a consistent hash of this key.
    client_key_config client_key;
};

/// [[route]] answer: what turnout answers itself instead of forwarding (nginx's return).
/// location and body may name $scheme, $host and $request_uri (expanded per request).
struct fixed_answer {
    unsigned status = 200;
    std::string location; // the redirect target: required for 301, 302, 303, 307, 308 and only there
    std::string body;     // text/plain; empty: turnout's JSON error body for 4xx/5xx, nothing otherwise
};

/// A status that redirects (nginx's return CODE URL).
constexpr bool is_redirect_status(unsigned status) noexcept
{
    return status == 301 || status == 302 || status == 303 || status == 307 || status == 308;
}

struct route_config {
    std::string path_prefix = "/"; // the path itself when exact
    bool exact = false;            // path = "...": this path only (more specific than any prefix)
    std::string host; // empty = any host
    std::string upstream; // empty when answer is set
    std::string mcp_method; // exact, or a glob with '*'; empty = any
    std::string mcp_name;   // tool/prompt name or resource URI; needs mcp_method; empty = any
    /// Names of [[listen]] tables whose requests this route takes; empty = every listener.
    std::vector<std::string> listen;
    std::vector<std::size_t> listeners; // their indexes in configuration::listeners
    std::optional<fixed_answer> answer;  // set: answered by turnout, no upstream
};

enum class store_kind { file, etcd };

/// [runtime]: where committed runtime state lives. file: proxy.state_file alone. etcd: a
/// shared store for a fleet (every instance watches etcd_prefix); state_file then caches the
/// last state seen, so an instance starts and serves while etcd is unreachable.
struct runtime_config {
    store_kind store = store_kind::file;
    std::vector<host_port> etcd_endpoints; // "http://HOST:PORT" or "https://HOST:PORT" each; tried in order
    bool etcd_tls = false;                 // the endpoints are https:// (all of them: no mixing)
    std::string etcd_prefix = "/turnout/";
    // TLS toward etcd (absolute paths): the CA that signed etcd's certificate (empty: the
    // system's), and a client certificate with its key for etcd's --client-cert-auth.
    std::string etcd_ca_file;
    std::string etcd_cert_file;
    std::string etcd_key_file;
    // etcd's own authentication: a user, and the password read from etcd_password_file when
    // the configuration is read (trailing newline dropped).
    std::string etcd_username;
    std::string etcd_password_file;
    std::string etcd_password;
    /// This instance's name in the fleet (the rollout leader key, its published figures);
    /// empty: "HOSTNAME:PID".
    std::string instance_name;
    /// The TTL of this instance's lease: how long a dead leader keeps the rollouts, and how
    /// long a dead instance's figures stay counted.
    duration etcd_lease_ttl = std::chrono::seconds(10);
};
struct configuration {
    std::string path; // the file it was read from (absolute)
    proxy_config proxy;
    runtime_config runtime;
    std::vector<listen_config> listeners;
    std::vector<upstream_config> upstreams;
    std::vector<route_config> routes;

    const upstream_config* find_upstream(std::string_view name) const;
};

/// Reads and validates a config file. Throws config_error.
configuration load_file(const std::string& path);

/// Parses and validates TOML text as if read from source_path (used for messages and to
/// resolve relative paths). Throws config_error.
configuration parse(std::string_view toml_text, const std::string& source_path);

std::string_view to_string(health_kind k);
std::string_view to_string(affinity_kind k);
std::string_view to_string(store_kind k);

} // namespace turnout::config
