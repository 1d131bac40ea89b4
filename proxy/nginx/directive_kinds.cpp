#include "turnout/nginx/directive_kinds.hpp"

#include <map>

namespace turnout::nginx {

namespace {

// Directives that do nothing a proxy of turnout's kind needs, with why.
const std::map<std::string_view, std::string_view> no_effect = {
    {"user", "turnout runs as the user that starts it (the systemd unit uses DynamicUser)"},
    {"daemon", "turnout stays in the foreground; systemd supervises it"},
    {"master_process", "turnout is one process with worker threads"},
    {"worker_connections", "turnout has no per-worker connection cap"},
    {"worker_rlimit_nofile", "set LimitNOFILE= in the systemd unit instead"},
    {"worker_rlimit_core", "process limits belong to the service manager"},
    {"worker_cpu_affinity", "turnout's worker threads are not pinned"},
    {"worker_priority", "process priority belongs to the service manager"},
    {"use", "turnout uses epoll"},
    {"multi_accept", "turnout's workers accept on their own SO_REUSEPORT sockets"},
    {"accept_mutex", "turnout's workers accept on their own SO_REUSEPORT sockets"},
    {"load_module", "modules are nginx's; their directives are reported on their own"},
    {"env", "turnout reads no environment variables from its configuration"},
    {"pcre_jit", "turnout has no regular expressions"},
    {"timer_resolution", "nothing to tune"},
    {"thread_pool", "turnout does no file I/O on the request path"},
    {"lock_file", "turnout needs no lock file"},
    {"sendfile", "turnout serves no files"},
    {"tcp_nopush", "turnout writes each message in one call"},
    {"tcp_nodelay", "turnout's sockets are always TCP_NODELAY"},
    {"types_hash_max_size", "nothing to tune"},
    {"types_hash_bucket_size", "nothing to tune"},
    {"server_names_hash_bucket_size", "nothing to tune"},
    {"server_names_hash_max_size", "nothing to tune"},
    {"variables_hash_max_size", "nothing to tune"},
    {"variables_hash_bucket_size", "nothing to tune"},
    {"map_hash_max_size", "nothing to tune"},
    {"map_hash_bucket_size", "nothing to tune"},
    {"types", "MIME types are for files; turnout serves none"},
    {"default_type", "MIME types are for files; turnout serves none"},
    {"server_tokens", "turnout forwards the backend's Server field and adds none"},
    {"root", "turnout serves no files (a location that serves files is reported on its own)"},
    {"index", "turnout serves no files (a location that serves files is reported on its own)"},
    {"log_format", "turnout writes its own formats: access_log_format = \"combined\" (nginx's) or \"json\""},
    {"client_header_buffer_size", "turnout's head limit is max_header_bytes"},
    {"client_body_buffer_size", "turnout streams bodies, never buffers them whole"},
    {"proxy_buffer_size", "turnout streams answers through its own buffers"},
    {"proxy_buffers", "turnout streams answers through its own buffers"},
    {"proxy_busy_buffers_size", "turnout streams answers through its own buffers"},
    {"proxy_max_temp_file_size", "turnout never writes answers to disk"},
    {"proxy_temp_file_write_size", "turnout never writes answers to disk"},
    {"proxy_temp_path", "turnout never writes answers to disk"},
    {"client_body_temp_path", "turnout never writes bodies to disk"},
    {"chunked_transfer_encoding", "turnout frames answers itself (chunked when the length is unknown)"},
    {"keepalive_requests", "turnout does not cap requests per connection"},
    {"reset_timedout_connection", "nothing to tune"},
    {"ssl_prefer_server_ciphers", "turnout's cipher order is fixed (Mozilla intermediate)"},
    {"ssl_session_cache", "turnout keeps a shared TLS session cache and tickets"},
    {"ssl_session_timeout", "turnout keeps a shared TLS session cache and tickets"},
    {"ssl_session_tickets", "turnout keeps a shared TLS session cache and tickets"},
    {"ssl_dhparam", "turnout's ciphers use ECDHE only"},
    {"ssl_ecdh_curve", "turnout uses OpenSSL's default curves"},
    {"ssl_stapling", "no OCSP stapling; clients check revocation themselves"},
    {"ssl_stapling_verify", "no OCSP stapling; clients check revocation themselves"},
    {"ssl_buffer_size", "nothing to tune"},
    {"resolver", "turnout resolves backend names with the system resolver when it loads the configuration"},
    {"resolver_timeout", "turnout resolves backend names with the system resolver when it loads the configuration"},
    {"absolute_redirect", "turnout makes no redirects"},
    {"port_in_redirect", "turnout makes no redirects"},
    {"server_name_in_redirect", "turnout makes no redirects"},
    {"open_file_cache", "turnout serves no files"},
    {"aio", "turnout serves no files"},
    {"directio", "turnout serves no files"},
    {"output_buffers", "turnout serves no files"},
    {"proxy_socket_keepalive", "nothing to tune"},
    {"http2_max_concurrent_streams", "turnout serves HTTP/1.1 (see listen)"},
    {"underscores_in_headers", "turnout forwards fields with underscores as they are"},
};

// Directives turnout cannot do, with why; each changes where requests go or what clients get.
const std::map<std::string_view, std::string_view> not_possible = {
    {"rewrite", "turnout forwards the path as it is; it rewrites no URL"},
    {"gzip", "turnout does not compress answers"},
    {"if", "turnout has no conditions on variables"},
    {"set", "turnout has no variables"},
    {"add_header", "turnout adds no response fields"},
    {"more_set_headers", "turnout adds no response fields"},
    {"proxy_hide_header", "turnout forwards the backend's fields as they are"},
    {"proxy_pass_header", "turnout forwards the backend's fields as they are"},
    {"proxy_ignore_headers", "turnout forwards the backend's fields as they are"},
    {"allow", "turnout has no address-based access control"},
    {"deny", "turnout has no address-based access control"},
    {"auth_basic", "turnout does not authenticate clients"},
    {"auth_basic_user_file", "turnout does not authenticate clients"},
    {"auth_request", "turnout does not authenticate clients"},
    {"limit_req", "no request rate limits in turnout's configuration yet"},
    {"limit_req_zone", "no request rate limits in turnout's configuration yet"},
    {"limit_conn", "no connection limits in turnout's configuration yet"},
    {"limit_conn_zone", "no connection limits in turnout's configuration yet"},
    {"limit_rate", "turnout does not throttle answers"},
    {"error_page", "turnout answers errors with its own JSON bodies"},
    {"try_files", "turnout serves no files"},
    {"alias", "turnout serves no files"},
    {"autoindex", "turnout serves no files"},
    {"sub_filter", "turnout does not edit answers"},
    {"ssi", "turnout does not edit answers"},
    {"gunzip", "turnout does not decompress answers"},
    {"ssl_client_certificate", "turnout does not verify client certificates"},
    {"ssl_verify_client", "turnout does not verify client certificates"},
    {"ssl_trusted_certificate", "turnout does not verify client certificates"},
    {"stream", "turnout proxies HTTP only, not TCP/UDP streams"},
    {"mail", "turnout proxies HTTP only"},
    {"fastcgi_pass", "turnout proxies HTTP only"},
    {"uwsgi_pass", "turnout proxies HTTP only"},
    {"grpc_pass", "turnout proxies HTTP/1.1 only"},
    {"proxy_store", "turnout never writes answers to disk"},
    {"mirror", "turnout does not mirror requests"},
    {"geo", "turnout has no variables"},
    {"satisfy", "turnout does not authenticate clients"},
    {"internal", "turnout has no internal redirects"},
    {"proxy_method", "turnout forwards the request's method"},
    {"proxy_set_body", "turnout forwards the request's body"},
    {"proxy_intercept_errors", "turnout forwards the backend's error answers as they are"},
    {"proxy_cache", "turnout caches no answers"},
    {"proxy_cookie_path", "turnout forwards cookies as they are"},
    {"proxy_cookie_domain", "turnout forwards cookies as they are"},
    {"charset", "turnout forwards Content-Type as the backend wrote it"},
};

// Directives whose only value that needs nothing is this one (e.g. gzip off).
const std::map<std::string_view, std::string_view> harmless_when = {
    {"gzip", "off"}, {"proxy_cache", "off"}, {"proxy_intercept_errors", "off"}, {"ssi", "off"},
    {"proxy_redirect", "off"}, {"autoindex", "off"}, {"gunzip", "off"}, {"ssl_verify_client", "off"},
    {"limit_rate", "0"}, {"proxy_store", "off"}, {"sub_filter_once", "on"}, {"internal", ""},
    {"proxy_pass_request_headers", "on"}, {"proxy_pass_request_body", "on"},
};

} // namespace

std::optional<std::string_view> no_effect_reason(std::string_view name)
{
    const auto it = no_effect.find(name);
    return it == no_effect.end() ? std::nullopt : std::optional<std::string_view>(it->second);
}

std::optional<std::string_view> impossible_reason(std::string_view name)
{
    const auto it = not_possible.find(name);
    return it == not_possible.end() ? std::nullopt : std::optional<std::string_view>(it->second);
}

bool harmless_value(std::string_view name, const std::vector<std::string>& args)
{
    const auto it = harmless_when.find(name);
    return it != harmless_when.end() && args.size() <= 1 && (args.empty() ? "" : args[0]) == it->second;
}

} // namespace turnout::nginx
