#include "turnout/mcp/rpc_watch.hpp"

namespace turnout::mcp {

void rpc_watch::watch_response(answer_kind kind)
{
    if (!request_on_ || kind == answer_kind::other)
        return;
    // A request whose facts are not all in yet may still be a tool call: read the result.
    const bool tool_call = is_tool_call() || !request_.settled();
    response_ = std::make_unique<response_inspector>(inspect_limit, tool_call);
    if (kind == answer_kind::event_stream)
        lines_ = std::make_unique<http::event_stream_lines>(inspect_limit);
}

void rpc_watch::on_response_body(std::string_view piece)
{
    if (!response_)
        return;
    if (!lines_) {
        if (!response_->settled())
            response_->feed(piece);
        return;
    }
    lines_->feed(piece, [this](std::string_view line) {
        on_event_line(line);
        return false;
    });
}

// Each event's data lines, joined by line ends, are one JSON-RPC message (a notification,
// a server request, or the answer); a blank line ends the event.
void rpc_watch::on_event_line(std::string_view line)
{
    if (line.empty()) {
        if (in_data_)
            response_->next_message();
        in_data_ = false;
        return;
    }
    const auto field = http::split_event_field(line);
    if (field.name != "data" || line.front() == ':')
        return;
    if (in_data_)
        response_->feed("\n");
    in_data_ = true;
    response_->feed(field.value);
}

} // namespace turnout::mcp
