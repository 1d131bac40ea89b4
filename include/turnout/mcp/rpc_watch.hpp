#pragma once
// What one exchange's JSON-RPC said, read as its bytes pass: the request's method and tool
// (a POST's JSON body), and the answer's outcome (a JSON body, or the messages of the event
// stream a POST was answered with). The proxy counts tool calls and errors from it; it never
// holds a body, only the inspectors' bounded state.

#include "turnout/http/event_stream.hpp"
#include "turnout/mcp/jsonrpc_inspector.hpp"

#include <cstddef>
#include <memory>
#include <string_view>

namespace turnout::mcp {

/// How an answer is framed, for the response side.
enum class answer_kind { other, json, event_stream };

class rpc_watch {
public:
    /// Bytes of a request or of one answer message read at most (past that: no facts).
    static constexpr std::size_t inspect_limit = 65536;

    /// A request body follows that may be JSON-RPC (a POST).
    void watch_request() noexcept { request_on_ = true; }
    /// The next piece of the request body as it goes to the backend.
    void on_request_body(std::string_view piece)
    {
        if (request_on_ && !request_.settled())
            request_.feed(piece);
    }
    /// The request side's inspector, for a caller that reads the whole body before it goes out
    /// (routing on the method and tool): what it was fed is not read again as the body passes.
    request_inspector& request_side() noexcept
    {
        request_on_ = true;
        return request_;
    }
    /// The answer's head arrived: read its body for the outcome when it may carry one.
    void watch_response(answer_kind kind);
    /// The next piece of the answer's body.
    void on_response_body(std::string_view piece);

    const rpc_request_facts& request() const noexcept { return request_.facts(); }
    bool is_tool_call() const noexcept { return request_.facts().method == "tools/call"; }
    rpc_outcome outcome() const noexcept { return response_ ? response_->outcome() : rpc_outcome::none; }

private:
    void on_event_line(std::string_view line);

    request_inspector request_{inspect_limit};
    std::unique_ptr<response_inspector> response_; // only while an answer is read
    std::unique_ptr<http::event_stream_lines> lines_; // an event-stream answer's line splitter
    bool request_on_ = false;
    bool in_data_ = false; // the current event has data lines already
};

} // namespace turnout::mcp
