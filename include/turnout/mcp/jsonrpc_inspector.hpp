#pragma once
// What the proxy reads of the JSON-RPC messages it forwards, without buffering them: of a
// request, its method, the tool/prompt name or resource URI, and its id (for routing by
// method and tool, and for counting tool calls); of a response, whether it is a result, an
// error, or a tools/call result flagged `isError` (for the rollout analysis and the metrics).
// Both read pieces as they pass, up to a byte limit, and settle as soon as they know.

#include "turnout/mcp/json_scanner.hpp"

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace turnout::mcp {

/// Where an inspection stands.
enum class inspection : std::uint8_t {
    pending,    // needs more bytes
    complete,   // the facts are known
    not_jsonrpc, // the bytes are not one JSON object (nor a batch of them)
    over_limit, // the limit passed before the facts were known
};

struct rpc_request_facts {
    std::string method; // empty when absent
    std::string name;   // params.name (tools/call, prompts/get)
    std::string uri;    // params.uri (resources/read)
    std::string id;     // the id as JSON text (`7`, `"a"`), empty when absent
    bool batch = false; // a JSON array of messages: no facts of its own

    /// What Mcp-Name carries for this method: the URI for resources/read, else the name.
    std::string_view subject() const noexcept { return method == "resources/read" ? uri : name; }
    bool is_notification() const noexcept { return !batch && !method.empty() && id.empty(); }
};

class request_inspector {
public:
    explicit request_inspector(std::size_t limit = 65536) noexcept : limit_(limit) {}

    /// Feeds the next piece of the body; returns where the inspection stands.
    inspection feed(std::string_view piece);
    inspection state() const noexcept { return state_; }
    bool settled() const noexcept { return state_ != inspection::pending; }
    const rpc_request_facts& facts() const noexcept { return facts_; }

private:
    enum class member : std::uint8_t { none, method, id, params, name, uri };
    void on_event(json_event e);

    json_scanner scanner_;
    rpc_request_facts facts_;
    std::size_t limit_;
    inspection state_ = inspection::pending;
    member member_ = member::none;
    bool in_params_ = false;
};

/// What a JSON-RPC answer said; ordered from best to worst.
enum class rpc_outcome : std::uint8_t {
    none,       // no response message (yet): a notification, a server request, or unread
    result,     // "result"
    tool_error, // a tools/call "result" with "isError": true
    error,      // "error"
};

class response_inspector {
public:
    /// look_for_tool_error: the request was a tools/call, so a result is read further for its
    /// isError flag (otherwise "result" settles it at once).
    explicit response_inspector(std::size_t limit = 65536, bool look_for_tool_error = false) noexcept
        : limit_(limit), look_for_tool_error_(look_for_tool_error)
    {
    }

    inspection feed(std::string_view piece);
    /// One message ended (an event of an event stream): the next bytes are a new message,
    /// and the outcome keeps the worst seen so far.
    void next_message() noexcept;
    inspection state() const noexcept { return state_; }
    bool settled() const noexcept { return state_ != inspection::pending; }
    rpc_outcome outcome() const noexcept { return outcome_ > message_ ? outcome_ : message_; }

private:
    void on_event(json_event e);
    void note(rpc_outcome o) noexcept;

    json_scanner scanner_{8}; // only short names and literals are compared
    std::size_t limit_;
    bool look_for_tool_error_;
    inspection state_ = inspection::pending;
    rpc_outcome outcome_ = rpc_outcome::none; // of the messages before this one
    rpc_outcome message_ = rpc_outcome::none; // of this one
    std::size_t base_ = 0;   // depth of the messages' members: 1, or 2 in a batch
    bool in_result_ = false;
    bool at_is_error_ = false;
};

} // namespace turnout::mcp
