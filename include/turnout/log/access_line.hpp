#pragma once
// One access log line in one of [proxy] access_log_format's formats: "turnout" (the line
// turnout always wrote), "combined" (nginx's, so existing log tooling reads it) or "json"
// (one object per line: upstream, pool, backend, the session hashed, status, bytes, timings).
// Pure: the connection gathers an access_record, this turns it into text.

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace turnout::log {

enum class access_format { turnout, combined, json };

/// "turnout", "combined", "json"; nullopt for anything else.
std::optional<access_format> parse_access_format(std::string_view text);

struct access_record {
    std::chrono::system_clock::time_point time;
    std::string_view client; // the client's IP address, "-" when unknown
    std::string_view method;
    std::string_view target;
    std::string_view version; // "HTTP/1.1"
    unsigned status = 0;
    std::uint64_t bytes = 0; // bytes sent to the client (head included)
    std::string_view referer;       // empty when absent
    std::string_view user_agent;    // empty when absent
    std::string_view authorization; // for combined's $remote_user (Basic only)
    bool reached = false;           // a backend got the request: the next four mean something
    std::string_view upstream;
    std::string_view pool;
    std::string_view backend;
    std::optional<std::uint64_t> session; // a keyed hash of the session id, never the id
    double upstream_time = 0;             // seconds
    double request_time = 0;              // seconds
};

/// The line, without a trailing newline (and, for "turnout", without the time stamp the
/// logger's pattern adds).
std::string format_access(access_format format, const access_record& r);

} // namespace turnout::log
