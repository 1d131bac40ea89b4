#include "turnout/routing/mcp_facts.hpp"

#include "turnout/http/chunked_peek.hpp"
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

// SEP-2243 carries a name that is no plain header value as "=?base64?<standard base64>?=".
// Returns the decoded bytes, or nullopt for a value in another form (or broken base64).
std::optional<std::string> base64_sentinel(std::string_view value)
{
    constexpr std::string_view open = "=?base64?", close = "?=";
    if (value.size() < open.size() + close.size() || !value.starts_with(open) || !value.ends_with(close))
        return std::nullopt;
    value = value.substr(open.size(), value.size() - open.size() - close.size());
    std::string out;
    std::uint32_t bits = 0;
    int count = 0;
    std::size_t padding = 0;
    for (const char c : value) {
        int v;
        if (c >= 'A' && c <= 'Z') v = c - 'A';
        else if (c >= 'a' && c <= 'z') v = c - 'a' + 26;
        else if (c >= '0' && c <= '9') v = c - '0' + 52;
        else if (c == '+') v = 62;
        else if (c == '/') v = 63;
        else if (c == '=') { ++padding; continue; }
        else return std::nullopt;
        if (padding > 0)
            return std::nullopt; // data after padding
        bits = (bits << 6) | static_cast<std::uint32_t>(v);
        if (++count == 4) {
            out += static_cast<char>(bits >> 16);
            out += static_cast<char>(bits >> 8);
            out += static_cast<char>(bits);
            bits = 0;
            count = 0;
        }
    }
    if (count == 1 || padding > 2)
        return std::nullopt;
    if (count == 2)
        out += static_cast<char>(bits >> 4);
    else if (count == 3) {
        out += static_cast<char>(bits >> 10);
        out += static_cast<char>(bits >> 2);
    }
    return out;
}

// Mcp-Name as sent, or decoded from its base64 form, equals the body's name.
bool same_name(std::string_view header, std::string_view body)
{
    if (header == body)
        return true;
    const auto decoded = base64_sentinel(header);
    return decoded && *decoded == body;
}

} // namespace

std::optional<std::size_t> body_to_inspect(const router& r, const http::message_head& head,
                                           std::optional<std::uint64_t> content_length, bool chunked,
                                           std::size_t max_inspect_bytes) noexcept
{
    if (!r.has_mcp_rules() || head.method() != "POST" || head.count(http::field_name::mcp_session_id) > 0)
        return std::nullopt;
    if (chunked)
        return max_inspect_bytes == 0 ? std::nullopt : std::optional(chunked_hold_limit(max_inspect_bytes));
    if (!content_length || *content_length == 0 || *content_length > max_inspect_bytes)
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
    if (has_name_header && !same_name(headers.name, subject))
        return {headers, mismatch_answer("Mcp-Name is " + quoted(headers.name) + " but the body names " +
                                             quoted(subject), f.id)};
    if (has_method_header && !has_name_header && names_a_target(f.method) && !subject.empty())
        return {headers, mismatch_answer("Mcp-Name is missing for " + quoted(f.method) + " of " + quoted(subject), f.id)};
    return {{f.method, subject}, {}};
}

std::size_t chunked_hold_limit(std::size_t max_inspect_bytes) noexcept
{
    // Twice the payload and a little more: room for a client that writes small chunks (each
    // costs its size line and a CRLF), and for extensions and trailers within reason. A body
    // framed more wastefully than that still goes through, routed on host and path.
    constexpr std::size_t framing_room = 4096;
    return 2 * max_inspect_bytes + framing_room;
}

chunked_inspection inspect_chunked_body(const http::message_head& head, std::string_view framed,
                                        std::size_t max_inspect_bytes, mcp::rpc_watch& watch,
                                        std::optional<mcp::request_inspector>& longer)
{
    const auto limit = chunked_hold_limit(max_inspect_bytes);
    std::vector<std::string_view> pieces;
    const auto peek = http::peek_chunked(framed.substr(0, limit), max_inspect_bytes, pieces);
    using state = http::chunked_peek::state;
    if (peek.status == state::incomplete && peek.needed <= limit)
        return {.route = false, .hold = peek.needed};
    if (peek.status != state::complete)
        return {.route = true, .hold = 0, .result = {}}; // too long, framed too long, or malformed
    auto& inspector =
        peek.payload <= mcp::rpc_watch::inspect_limit ? watch.request_side() : longer.emplace(peek.payload);
    // inspect_body reads one piece; a payload in several is fed piece by piece first.
    for (std::size_t i = 0; i + 1 < pieces.size() && !inspector.settled(); ++i)
        inspector.feed(pieces[i]);
    const auto last = pieces.empty() || inspector.settled() ? std::string_view{} : pieces.back();
    return {.route = true, .hold = 0, .result = inspect_body(head, last, inspector)};
}

} // namespace turnout::routing
