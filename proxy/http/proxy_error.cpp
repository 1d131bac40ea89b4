#include "turnout/http/proxy_error.hpp"

#include <string>

namespace turnout::http {
namespace {

class category final : public boost::system::error_category {
public:
    const char* name() const noexcept override { return "turnout.proxy"; }

    std::string message(int value) const override
    {
        switch (static_cast<proxy_error>(value)) {
        case proxy_error::bad_request: return "malformed request";
        case proxy_error::bad_session_id: return "invalid session id";
        case proxy_error::method_not_allowed: return "method not supported by this proxy";
        case proxy_error::header_timeout: return "request head not received in time";
        case proxy_error::body_too_large: return "request body too large";
        case proxy_error::uri_too_long: return "request target too long";
        case proxy_error::header_too_large: return "request header fields too large";
        case proxy_error::no_route: return "no route for this request";
        case proxy_error::session_not_found: return "Session not found";
        case proxy_error::bad_gateway: return "backend failed";
        case proxy_error::no_backend: return "no backend available";
        case proxy_error::gateway_timeout: return "backend did not answer in time";
        case proxy_error::shutting_down: return "shutting down";
        case proxy_error::origin_not_allowed: return "origin not allowed";
        case proxy_error::host_not_allowed: return "host not allowed";
        case proxy_error::rate_limited: return "rate limit exceeded";
        case proxy_error::too_many_streams: return "too many open streams for this client";
        case proxy_error::header_mismatch: return "Header mismatch";
        }
        return "unknown proxy error";
    }
};

} // namespace

const boost::system::error_category& proxy_error_category() noexcept
{
    static const category instance;
    return instance;
}

unsigned status_of(proxy_error e) noexcept
{
    switch (e) {
    case proxy_error::bad_request:
    case proxy_error::bad_session_id:
    case proxy_error::header_mismatch: return 400;
    case proxy_error::origin_not_allowed: return 403;
    case proxy_error::host_not_allowed: return 421;
    case proxy_error::rate_limited:
    case proxy_error::too_many_streams: return 429;
    case proxy_error::method_not_allowed: return 405;
    case proxy_error::header_timeout: return 408;
    case proxy_error::body_too_large: return 413;
    case proxy_error::uri_too_long: return 414;
    case proxy_error::header_too_large: return 431;
    case proxy_error::no_route:
    case proxy_error::session_not_found: return 404;
    case proxy_error::bad_gateway: return 502;
    case proxy_error::no_backend:
    case proxy_error::shutting_down: return 503;
    case proxy_error::gateway_timeout: return 504;
    }
    return 500;
}

std::string_view reason_phrase(unsigned status) noexcept
{
    switch (status) {
    case 100: return "Continue";
    case 101: return "Switching Protocols";
    case 103: return "Early Hints";
    case 200: return "OK";
    case 201: return "Created";
    case 202: return "Accepted";
    case 204: return "No Content";
    case 206: return "Partial Content";
    case 301: return "Moved Permanently";
    case 302: return "Found";
    case 303: return "See Other";
    case 304: return "Not Modified";
    case 307: return "Temporary Redirect";
    case 308: return "Permanent Redirect";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 406: return "Not Acceptable";
    case 409: return "Conflict";
    case 410: return "Gone";
    case 411: return "Length Required";
    case 412: return "Precondition Failed";
    case 413: return "Content Too Large";
    case 414: return "URI Too Long";
    case 415: return "Unsupported Media Type";
    case 418: return "I'm a teapot";
    case 421: return "Misdirected Request";
    case 422: return "Unprocessable Content";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 451: return "Unavailable For Legal Reasons";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    }
    return "Unknown";
}

} // namespace turnout::http
