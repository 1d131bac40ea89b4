#include "turnout/http/error_response.hpp"

#include <cstdio>

namespace turnout::http {

std::string json_escape(std::string_view text)
{
    std::string out;
    out.reserve(text.size() + 8);
    for (const char c : text) {
        switch (c) {
        case '"': out += "\\\""; break;
        case '\\': out += "\\\\"; break;
        case '\n': out += "\\n"; break;
        case '\r': out += "\\r"; break;
        case '\t': out += "\\t"; break;
        default:
            if (static_cast<unsigned char>(c) < 0x20) {
                char escaped[8];
                std::snprintf(escaped, sizeof escaped, "\\u%04x", static_cast<unsigned>(c));
                out += escaped;
            } else {
                out += c;
            }
        }
    }
    return out;
}

std::string make_json_response(unsigned status, std::string_view json_body, bool keep_alive, unsigned retry_after_s)
{
    std::string response;
    response.reserve(160 + json_body.size());
    response += "HTTP/1.1 ";
    response += std::to_string(status);
    response += ' ';
    response += reason_phrase(status);
    response += "\r\nContent-Type: application/json\r\nContent-Length: ";
    response += std::to_string(json_body.size());
    response += "\r\nCache-Control: no-store\r\n";
    if (retry_after_s > 0) {
        response += "Retry-After: ";
        response += std::to_string(retry_after_s);
        response += "\r\n";
    }
    if (!keep_alive)
        response += "Connection: close\r\n";
    response += "\r\n";
    response += json_body;
    return response;
}

std::string make_error_response(unsigned status, std::string_view message, bool keep_alive)
{
    return make_json_response(status, "{\"error\":\"" + json_escape(message) + "\"}", keep_alive);
}

std::string make_error_response(proxy_error e, bool keep_alive, unsigned retry_after_s)
{
    // What an MCP server answers for a session it doesn't have: SDK clients re-initialize.
    if (e == proxy_error::session_not_found)
        return make_json_response(
            404, R"({"jsonrpc":"2.0","error":{"code":-32001,"message":"Session not found"},"id":null})", keep_alive);
    return make_json_response(status_of(e), "{\"error\":\"" + json_escape(make_error_code(e).message()) + "\"}",
                              keep_alive, retry_after_s);
}

} // namespace turnout::http
