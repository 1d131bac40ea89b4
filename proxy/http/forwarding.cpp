#include "turnout/http/forwarding.hpp"

#include "turnout/http/head_writer.hpp"
#include "turnout/http/headers.hpp"
#include "turnout/http/proxy_error.hpp"
#include "turnout/http/target.hpp"

namespace turnout::http {
namespace {

/// Room for a rebuilt head: its fields as received, their separators, what turnout adds, and
/// a body already whole in hand.
std::size_t head_room(const message_head& head, std::size_t added, std::size_t whole_body)
{
    return head.stored_bytes() + 4 * head.field_count() + added + whole_body;
}

/// Whether a Connection field of head names this field (so it is hop-by-hop too).
bool named_by_connection(const message_head& head, std::string_view name)
{
    for (std::size_t i = 0; i < head.field_count(); ++i) {
        const auto f = head.field(i);
        if (f.known == field_name::connection && has_token(f.value, name))
            return true;
    }
    return false;
}

/// Whether this head has any Connection option besides close/keep-alive (rare; lets the
/// common case skip a second scan per field).
bool has_connection_options(const message_head& head)
{
    bool found = false;
    if (head.count(field_name::connection) == 0)
        return false;
    for (std::size_t i = 0; i < head.field_count(); ++i) {
        const auto f = head.field(i);
        if (f.known == field_name::connection)
            for_each_token(f.value, [&](std::string_view t) {
                found = found || !(iequals(t, "close") || iequals(t, "keep-alive"));
            });
    }
    return found;
}

// The client's status line: always HTTP/1.1 (turnout speaks it to every client), the backend's
// status and reason, or the standard reason when the backend sent none.
void start_status_line(head_writer& out, const message_head& head)
{
    out << "HTTP/1.1 " << head.status() << ' ';
    out << (head.reason().empty() ? reason_phrase(head.status()) : head.reason()) << "\r\n";
}

} // namespace

void write_request_head(std::string& out_head, const message_head& head, const request_forwarding& f)
{
    const bool connection_options = has_connection_options(head);
    const bool restore_id = !f.session_id.empty();

    // Added: request line and end, X-Forwarded-*, Transfer-Encoding, a restored session id.
    const std::size_t added = 160 + f.client_address.size() + 2 * head.count(field_name::x_forwarded_for) +
                              (restore_id ? head.target().size() + 2 * f.session_id.size() : 0);
    out_head.clear();
    head_writer out(out_head, head_room(head, added, f.whole_body));
    out << head.method() << ' ';
    if (restore_id && !f.session_param.empty())
        out << replace_query_parameter(head.target(), f.session_param, f.session_id);
    else
        out << head.target();
    out << " HTTP/1.1\r\n";
    for (std::size_t i = 0; i < head.field_count(); ++i) {
        const auto field = head.field(i);
        if (is_hop_by_hop(field.known) || field.known == field_name::expect || is_forwarded(field.known) ||
            (connection_options && named_by_connection(head, field.name)))
            continue; // turnout frames the hop and states the forwarded fields itself
        if (restore_id && f.session_param.empty() && field.known == field_name::mcp_session_id)
            out.field(field.name, f.session_id);
        else
            out.field(field.name, field.value);
    }
    // X-Forwarded-For: the addresses the client's request already listed, then the client's.
    out << "X-Forwarded-For: ";
    if (head.count(field_name::x_forwarded_for) != 0) {
        for (std::size_t i = 0; i < head.field_count(); ++i) {
            const auto field = head.field(i);
            if (field.known == field_name::x_forwarded_for && !field.value.empty())
                out << field.value << ", ";
        }
    }
    out << f.client_address << "\r\n";
    out.field("X-Forwarded-Proto", f.https ? "https" : "http");
    if (const auto host = head.find(field_name::host); host && !host->empty())
        out.field("X-Forwarded-Host", *host);
    if (f.chunked)
        out << "Transfer-Encoding: chunked\r\n";
    out << "\r\n";
}

void write_interim_head(std::string& out_head, const message_head& head)
{
    out_head.clear();
    head_writer out(out_head);
    start_status_line(out, head);
    for (std::size_t i = 0; i < head.field_count(); ++i) {
        const auto f = head.field(i);
        if (!is_hop_by_hop(f.known))
            out.field(f.name, f.value);
    }
    out << "\r\n";
}

void write_response_head(std::string& out_head, const message_head& head, const response_forwarding& f)
{
    const bool connection_options = has_connection_options(head);
    // Added: status line and end, Transfer-Encoding, Connection, a session token.
    const std::size_t added = 96 + 2 * f.session_id.size();
    out_head.clear();
    head_writer out(out_head, head_room(head, added, f.whole_body));
    start_status_line(out, head);
    for (std::size_t i = 0; i < head.field_count(); ++i) {
        const auto field = head.field(i);
        if (is_hop_by_hop(field.known) || (connection_options && named_by_connection(head, field.name)))
            continue;
        if (!f.session_id.empty() && field.known == field_name::mcp_session_id)
            out.field(field.name, f.session_id);
        else if (!(f.drop_content_length && field.known == field_name::content_length))
            out.field(field.name, field.value);
    }
    if (f.chunked)
        out << "Transfer-Encoding: chunked\r\n";
    if (f.close)
        out << "Connection: close\r\n";
    else if (f.keep_alive_http10)
        out << "Connection: keep-alive\r\n";
    out << "\r\n";
}

} // namespace turnout::http
