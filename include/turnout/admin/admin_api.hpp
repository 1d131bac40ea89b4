#pragma once
// The admin API as a function of one request: routing, the shape of request bodies, and the
// answer (control decides what the requests mean). Served over the Unix socket by
// admin::admin_server and over TCP, read-only, by admin::status_server; fuzzed as it is.
// Routes (SPEC.md "Admin socket", "Rollouts"):
//   GET /v1/status · PUT /v1/upstreams/{u}/weights · POST /v1/upstreams/{u}/switch ·
//   POST /v1/upstreams/{u}/rollback · POST /v1/upstreams/{u}/pools/{p}/drain|undrain ·
//   POST /v1/upstreams/{u}/pools/{p}/backends/{addr}/drain|undrain ·
//   PUT /v1/upstreams/{u}/pools/{p}/backends · POST|GET /v1/upstreams/{u}/rollout ·
//   POST /v1/upstreams/{u}/rollout/{pause|resume|promote|abort} · POST /v1/reload ·
//   POST /v1/upgrade · GET /metrics · GET /healthz · GET /readyz
// Errors answer 4xx with {"error":"<one clear sentence>"}.

#include "turnout/admin/control.hpp"

#include <string>
#include <string_view>

namespace turnout::admin {

/// The response to one admin request (used by the server and by tests without a socket).
struct http_answer {
    unsigned status = 200;
    std::string content_type = "application/json";
    std::string body;
    std::string allow; // the Allow header of a 405, else empty
};

/// Who is asking. The admin socket (mode 0600) may do everything; the TCP status address may
/// only read /healthz, /readyz and /metrics (GET or HEAD): any other method answers 405 and
/// any other path 404, whatever the admin API has there — so control is never asked to change
/// anything, and both endpoints answer those three paths with the same code.
enum class access { full, read_only };

/// Routes and validates one request. body is the request body (JSON where one is expected).
http_answer handle_request(control& c, std::string_view method, std::string_view target, std::string_view body,
                           access level = access::full);

/// {"error": sentence} with status.
http_answer error_answer(unsigned status, std::string_view sentence);

} // namespace turnout::admin
