#include "turnout/mcp/jsonrpc_inspector.hpp"

namespace turnout::mcp {
namespace {

/// A decoded string as JSON text again (for an id echoed in an error answer).
std::string quoted(std::string_view s)
{
    std::string out = "\"";
    for (const char c : s) {
        if (c == '"' || c == '\\') {
            out += '\\';
            out += c;
        } else if (static_cast<unsigned char>(c) < 0x20) {
            static constexpr char hex[] = "0123456789abcdef";
            out += "\\u00";
            out += hex[(c >> 4) & 0xF];
            out += hex[c & 0xF];
        } else {
            out += c;
        }
    }
    return out + '"';
}

/// Runs scanner over piece (no further than limit bytes in all), handing each event to
/// on_event until it settles state; over_limit when limit bytes passed unsettled.
template <class OnEvent>
inspection scan(json_scanner& scanner, inspection& state, std::size_t limit, std::string_view piece, OnEvent on_event)
{
    if (state != inspection::pending)
        return state;
    scanner.feed(piece.substr(0, limit - static_cast<std::size_t>(scanner.offset())));
    while (state == inspection::pending) {
        const auto e = scanner.next();
        if (e == json_event::need_more)
            break;
        on_event(e);
    }
    if (state == inspection::pending && scanner.offset() >= limit)
        state = inspection::over_limit;
    return state;
}

} // namespace

// ---- requests ---------------------------------------------------------------------------

inspection request_inspector::feed(std::string_view piece)
{
    return scan(scanner_, state_, limit_, piece, [this](json_event e) { on_event(e); });
}

void request_inspector::on_event(json_event e)
{
    const auto depth = scanner_.depth();
    switch (e) {
    case json_event::begin_array:
        if (depth == 1) {
            facts_.batch = true;
            state_ = inspection::complete;
        }
        member_ = member::none;
        return;
    case json_event::begin_object:
        in_params_ = in_params_ || (depth == 2 && member_ == member::params);
        member_ = member::none;
        return;
    case json_event::end_object:
        if (depth == 1)
            in_params_ = false;
        else if (depth == 0)
            state_ = inspection::complete;
        member_ = member::none;
        return;
    case json_event::key: {
        const auto k = scanner_.text();
        if (depth == 1)
            member_ = k == "method" ? member::method : k == "id" ? member::id : k == "params" ? member::params
                                                                                             : member::none;
        else if (depth == 2 && in_params_)
            member_ = k == "name" ? member::name : k == "uri" ? member::uri : member::none;
        else
            member_ = member::none;
        return;
    }
    case json_event::string:
        if (member_ == member::method && depth == 1)
            facts_.method = scanner_.text();
        else if (member_ == member::id && depth == 1)
            facts_.id = quoted(scanner_.text());
        else if (member_ == member::name && depth == 2)
            facts_.name = scanner_.text();
        else if (member_ == member::uri && depth == 2)
            facts_.uri = scanner_.text();
        member_ = member::none;
        return;
    case json_event::literal:
        if (member_ == member::id && depth == 1 && scanner_.text() != "null")
            facts_.id = scanner_.text();
        member_ = member::none;
        return;
    case json_event::end_array:
        member_ = member::none;
        return;
    case json_event::done:
    case json_event::error:
        if (state_ == inspection::pending)
            state_ = inspection::not_jsonrpc; // a top-level scalar, or broken JSON
        return;
    case json_event::need_more:
        return;
    }
}

// ---- responses --------------------------------------------------------------------------

inspection response_inspector::feed(std::string_view piece)
{
    return scan(scanner_, state_, limit_, piece, [this](json_event e) { on_event(e); });
}

void response_inspector::next_message() noexcept
{
    outcome_ = outcome();
    message_ = rpc_outcome::none;
    scanner_ = json_scanner{8};
    state_ = inspection::pending;
    base_ = 0;
    in_result_ = at_is_error_ = false;
}

void response_inspector::note(rpc_outcome o) noexcept
{
    if (o > message_)
        message_ = o;
}

void response_inspector::on_event(json_event e)
{
    const auto depth = scanner_.depth();
    switch (e) {
    case json_event::begin_array:
        if (depth == 1)
            base_ = 2; // a batch: its messages' members are one level down
        at_is_error_ = false;
        return;
    case json_event::begin_object:
        if (base_ == 0 && depth == 1)
            base_ = 1;
        at_is_error_ = false;
        return;
    case json_event::key: {
        const auto k = scanner_.text();
        at_is_error_ = false;
        if (depth == base_) {
            in_result_ = false;
            if (k == "error") {
                note(rpc_outcome::error);
                // One error settles a single answer; a batch may hold others.
                if (base_ == 1)
                    state_ = inspection::complete;
            } else if (k == "result") {
                note(rpc_outcome::result);
                in_result_ = look_for_tool_error_;
                if (!look_for_tool_error_ && base_ == 1)
                    state_ = inspection::complete;
            }
        } else if (depth == base_ + 1 && in_result_) {
            at_is_error_ = k == "isError";
        }
        return;
    }
    case json_event::literal:
        if (at_is_error_ && depth == base_ + 1 && scanner_.text() == "true") {
            note(rpc_outcome::tool_error);
            if (base_ == 1)
                state_ = inspection::complete;
        }
        at_is_error_ = false;
        return;
    case json_event::end_object:
        if (depth == base_)
            in_result_ = false;
        at_is_error_ = false;
        return;
    case json_event::string:
    case json_event::end_array:
        at_is_error_ = false;
        return;
    case json_event::done:
        state_ = inspection::complete;
        return;
    case json_event::error:
        state_ = inspection::not_jsonrpc;
        return;
    case json_event::need_more:
        return;
    }
}

} // namespace turnout::mcp
