#pragma once
// An incremental JSON pull scanner for bodies that pass through the proxy in pieces. It keeps
// no document, only a bounded stack of open containers and the text of the current key or
// scalar (truncated past max_text), so what it costs does not grow with the body: the
// JSON-RPC inspectors (mcp/jsonrpc_inspector) ask it for the few members they care about and
// stop as soon as they know. It checks structure (brackets, commas, colons, string escapes)
// but not the fine grammar of numbers: it reads, it does not validate.

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace turnout::mcp {

enum class json_event {
    need_more,    // the piece fed is used up: feed the next one
    begin_object, // depth() counts the new container
    end_object,
    begin_array,
    end_array,
    key,     // text(): the member name, decoded
    string,  // text(): the value, decoded
    literal, // text(): a number, true, false or null as written
    done,    // the top-level value ended (bytes after it are not read)
    error,   // not JSON (or nested deeper than max_depth)
};

class json_scanner {
public:
    static constexpr std::size_t max_depth = 32;

    explicit json_scanner(std::size_t max_text = 256) noexcept : max_text_(max_text) {}

    /// The next piece of input; what was left of the previous one must have been used up.
    void feed(std::string_view piece) noexcept { input_ = piece; }
    /// The next event from the input fed.
    json_event next();

    /// The key, string or literal of the last event (at most max_text bytes of it).
    std::string_view text() const noexcept { return text_; }
    bool truncated() const noexcept { return truncated_; }
    /// Containers open after the last event (a key or value directly in the top-level
    /// object is at depth 1).
    std::size_t depth() const noexcept { return depth_; }
    /// Bytes consumed so far.
    std::uint64_t offset() const noexcept { return offset_; }

private:
    enum class state : std::uint8_t {
        value,         // a value is expected
        first_value,   // right after '[': a value or ']'
        key,           // in an object, after ',': a key
        first_key,     // right after '{': a key or '}'
        colon,         // after a key
        after_value,   // ',' or the container's end
        in_string,
        in_escape,
        in_unicode,
        in_literal,
        done,
        error,
    };

    json_event fail() noexcept;
    json_event open(bool object) noexcept;
    json_event close(bool object) noexcept;
    json_event value_ended(json_event e) noexcept;
    void append(char c);
    void append_code_point(std::uint32_t cp);
    bool in_object() const noexcept { return depth_ > 0 && (objects_ >> (depth_ - 1) & 1u) != 0; }

    std::string_view input_;
    std::string text_;
    std::size_t max_text_;
    std::uint64_t offset_ = 0;
    std::uint32_t objects_ = 0; // bit i: container i is an object (else an array)
    std::size_t depth_ = 0;
    state state_ = state::value;
    bool string_is_key_ = false;
    bool truncated_ = false;
    std::uint8_t unicode_digits_ = 0;
    std::uint32_t unicode_ = 0;
    std::uint32_t high_surrogate_ = 0;
};

} // namespace turnout::mcp
