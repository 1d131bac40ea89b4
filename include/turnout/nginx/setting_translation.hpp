#pragma once
// The nginx translation's [proxy] side: timeouts and sizes (set per http, server or location
// in nginx, once in turnout: settled after the walk into the largest value written, or nginx's
// default where none is), proxy_* behaviour (buffering, HTTP version, request fields, retries,
// TLS to backends), and the logs.

#include "turnout/nginx/translation_state.hpp"

#include <cstdint>
#include <string>
#include <vector>

namespace turnout::nginx {

class setting_translation {
public:
    explicit setting_translation(translation_state& st) : st_(st) {}

    /// error_log (its level) and access_log (file and format); false for other directives.
    bool log(const directive& d);
    /// A [proxy] value: proxy_connect_timeout, proxy_read_timeout, client_header_timeout,
    /// keepalive_timeout, client_max_body_size; false for other directives.
    bool proxy_value(const directive& d);
    /// proxy_buffering, proxy_http_version, proxy_set_header, ...; false for other directives.
    bool proxy_setting(const directive& d);
    /// After the walk: one value per [proxy] key, and the verdicts of the lines that set them.
    void finish();

private:
    void error_log(const directive& d);
    void access_log(const directive& d);
    void set_access_log(const directive& d, const std::string& target, const std::string& format,
                        const std::string& why);
    void set_header(const directive& d);
    void settle(const std::string& directive_name, const std::vector<std::string>& keys, bool size,
                std::uint64_t nginx_default);

    translation_state& st_;
};

} // namespace turnout::nginx
