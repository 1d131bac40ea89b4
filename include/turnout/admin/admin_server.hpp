#pragma once
// The admin API: HTTP/1.1 + JSON over a Unix socket (mode 0600), served with Boost.Beast on
// the control thread. Routes (SPEC.md "Admin socket"):
//   GET /v1/status · PUT /v1/upstreams/{u}/weights · POST /v1/upstreams/{u}/switch ·
//   POST /v1/upstreams/{u}/rollback · POST /v1/upstreams/{u}/pools/{p}/drain ·
//   POST /v1/upstreams/{u}/pools/{p}/undrain · PUT /v1/upstreams/{u}/pools/{p}/backends ·
//   POST /v1/upstreams/{u}/pools/{p}/backends/{addr}/drain · .../backends/{addr}/undrain ·
//   POST /v1/reload · POST /v1/upgrade · GET /metrics · GET /healthz · GET /readyz
// The read-only status address (status_server) is served by the same handler (access::read_only).
// Errors answer 4xx with {"error":"<one clear sentence>"}.

#include "turnout/admin/control.hpp"

#include <boost/asio/io_context.hpp>

#include <memory>
#include <string>

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

class admin_server {
public:
    /// Creates the socket at path (replacing a stale one), mode 0600. Throws std::runtime_error.
    admin_server(boost::asio::io_context& io, std::string path, control& c);
    ~admin_server();

    void start();
    void close(); // also removes the socket file

private:
    struct impl;
    std::shared_ptr<impl> impl_;
};

} // namespace turnout::admin
