#include "turnout/routing/fixed_answer.hpp"

#include "turnout/http/error_response.hpp"
#include "turnout/http/headers.hpp"
#include "turnout/http/proxy_error.hpp"
#include "turnout/routing/router.hpp"

#include <cctype>

namespace turnout::routing {

namespace {

std::string lower_host(const http::message_head& request)
{
    std::string host{host_without_port(request.find(http::field_name::host).value_or(""))};
    for (auto& c : host)
        c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return host;
}

bool name_char(char c)
{
    return std::isalnum(static_cast<unsigned char>(c)) || c == '_';
}

} // namespace

std::string expand_answer_variables(std::string_view text, const http::message_head& request, bool tls)
{
    std::string out;
    out.reserve(text.size() + 32);
    std::size_t at = 0;
    while (at < text.size()) {
        const auto dollar = text.find('$', at);
        out += text.substr(at, dollar - at);
        if (dollar == std::string_view::npos)
            break;
        auto end = dollar + 1;
        while (end < text.size() && name_char(text[end]))
            ++end;
        const auto name = text.substr(dollar + 1, end - dollar - 1);
        if (name == "scheme")
            out += tls ? "https" : "http";
        else if (name == "host")
            out += lower_host(request);
        else if (name == "request_uri")
            out += request.target();
        else
            out += text.substr(dollar, end - dollar); // the config refuses others: kept as written
        at = end;
    }
    return out;
}

std::string render_answer(const config::fixed_answer& answer, const http::message_head& request, bool tls)
{
    const bool head_only = request.method() == "HEAD";
    std::string response = "HTTP/1.1 " + std::to_string(answer.status) + " " +
                           std::string(http::reason_phrase(answer.status)) + "\r\n";
    std::string body;
    std::string_view type = "text/plain";
    if (config::is_redirect_status(answer.status)) {
        auto location = expand_answer_variables(answer.location, request, tls);
        if (location.starts_with('/') && !location.starts_with("//"))
            location = (tls ? "https://" : "http://") +
                       std::string(request.find(http::field_name::host).value_or("")) + location;
        response += "Location: " + location + "\r\n";
    } else if (!answer.body.empty()) {
        body = expand_answer_variables(answer.body, request, tls);
    } else if (answer.status >= 400) {
        body = "{\"error\":\"" + http::json_escape(http::reason_phrase(answer.status)) + "\"}";
        type = "application/json";
    }
    if (!body.empty())
        response += "Content-Type: " + std::string(type) + "\r\n";
    if (answer.status != 204 && answer.status != 304)
        response += "Content-Length: " + std::to_string(body.size()) + "\r\n";
    response += "Connection: close\r\n\r\n";
    if (!head_only)
        response += body;
    return response;
}

} // namespace turnout::routing
