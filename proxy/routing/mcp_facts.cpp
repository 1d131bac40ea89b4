#include "turnout/routing/mcp_facts.hpp"

#include "turnout/http/error_response.hpp"
#include "turnout/http/headers.hpp"

namespace turnout::routing {
namespace {

// The methods whose Mcp-Name is required (SEP-2243).
bool names_a_target(std::string_view method) noexcept
{
    return method == "tools/call" || method == "prompts/get" || method == "resources/read";
}

std::string mismatch_answer(std::string_view detail, std::string_view id_json)
{
    const std::string body = R"({"jsonrpc":"2.0","error":{"code":-32001,"message":"Header mismatch: )" +
                             http::json_escape(detail) + R"("},"id":)" +
                             std::string(id_json.empty() ? "null" : id_json) + "}";
    return http::make_json_response(400, body, false);
}

std::string quoted(std::string_view s) { return "\"" + std::string(s) + "\""; }

} // namespace

std::optional<std::size_t> body_to_inspect(const router& r, const http::message_head& head,
                                           std::optional<std::uint64_t> content_length, bool chunked,
                                           std::size_t max_inspect_bytes) noexcept
{
    if (!r.has_mcp_rules() || chunked || !content_length || *content_length == 0 ||
        *content_length > max_inspect_bytes || head.method() != "POST" ||
        head.count(http::field_name::mcp_session_id) > 0)
        return std::nullopt;
    return static_cast<std::size_t>(*content_length);
}

mcp_facts header_facts(const http::message_head& head) noexcept
{
    return {head.find(http::field_name::mcp_method).value_or(""), head.find(http::field_name::mcp_name).value_or("")};
}

body_facts inspect_body(const http::message_head& head, std::string_view body, mcp::request_inspector& inspector)
{
    const auto headers = header_facts(head);
    const bool has_method_header = head.count(http::field_name::mcp_method) > 0;
    const bool has_name_header = head.count(http::field_name::mcp_name) > 0;
    if (inspector.feed(body) != mcp::inspection::complete)
        return {headers, {}}; // not JSON-RPC (or cut short): the backend will say so
    const auto& f = inspector.facts();
    if (f.batch) {
        if (has_method_header)
            return {headers, mismatch_answer("a batch carries no single method, but Mcp-Method is " +
                                                 quoted(headers.method), "")};
        return {{}, {}};
    }
    const auto subject = f.subject();
    if (has_method_header && headers.method != f.method)
        return {headers, mismatch_answer("Mcp-Method is " + quoted(headers.method) + " but the body's method is " +
                                             quoted(f.method), f.id)};
    if (has_name_header && headers.name != subject)
        return {headers, mismatch_answer("Mcp-Name is " + quoted(headers.name) + " but the body names " +
                                             quoted(subject), f.id)};
    if (has_method_header && !has_name_header && names_a_target(f.method) && !subject.empty())
        return {headers, mismatch_answer("Mcp-Name is missing for " + quoted(f.method) + " of " + quoted(subject), f.id)};
    return {{f.method, subject}, {}};
}

} // namespace turnout::routing
