#pragma once
// The admin API: HTTP/1.1 + JSON over a Unix socket (mode 0600), served with Boost.Beast on
// the control thread. Routes (SPEC.md "Admin socket"):
//   GET /v1/status · PUT /v1/upstreams/{u}/weights · POST /v1/upstreams/{u}/switch ·
//   POST /v1/upstreams/{u}/rollback · POST /v1/upstreams/{u}/pools/{p}/drain ·
//   POST /v1/upstreams/{u}/pools/{p}/undrain · PUT /v1/upstreams/{u}/pools/{p}/backends ·
//   POST /v1/reload · POST /v1/upgrade · GET /metrics · GET /healthz · GET /readyz
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

/// Routes and validates one request. body is the request body (JSON where one is expected).
http_answer handle_request(control& c, std::string_view method, std::string_view target, std::string_view body);

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
