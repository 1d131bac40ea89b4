#pragma once
// An llhttp-driven HTTP/1.x message parser for the data path, for requests (from clients)
// and responses (from backends). It copies only the head (into one reused buffer, no
// allocation per field); body bytes are handed out as views into the caller's buffer so that
// they can be forwarded without a copy. Parsing stops after the head and after each complete
// message, which is what lets the caller route before touching the body and keeps pipelined
// messages apart.

#include "turnout/http/headers.hpp"
#include "turnout/http/proxy_error.hpp"

#include <llhttp.h>

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace turnout::http {

struct field_view {
    std::string_view name;
    std::string_view value;
    field_name known = field_name::other; // which of the names turnout acts on, if any
};

/// The parsed head of one message. Views stay valid until the head is cleared.
class message_head {
public:
    void clear() noexcept;
    /// clear(), and gives the storage back (the next head allocates anew).
    void release() noexcept;
    /// Heap bytes the head keeps for the next one (storage and field index).
    std::size_t held_bytes() const noexcept;

    std::string_view method() const noexcept { return view(method_); }
    std::string_view target() const noexcept { return view(target_); }
    std::string_view reason() const noexcept { return view(reason_); }
    unsigned status() const noexcept { return status_; }
    unsigned version_major() const noexcept { return major_; }
    unsigned version_minor() const noexcept { return minor_; }

    std::size_t field_count() const noexcept { return fields_.size(); }
    /// Bytes of the start line's elements and of all field names and values.
    std::size_t stored_bytes() const noexcept { return used_; }
    field_view field(std::size_t i) const noexcept
    {
        return {view(fields_[i].name), view(fields_[i].value), fields_[i].known};
    }
    /// The value of the first field named name (any case).
    std::optional<std::string_view> find(std::string_view name) const noexcept;
    /// The value of the first field of a known name, without comparing names.
    std::optional<std::string_view> find(field_name name) const noexcept
    {
        const auto at = first_[static_cast<std::size_t>(name)];
        if (at == 0)
            return std::nullopt;
        return view(fields_[at - 1].value);
    }
    /// How many fields of a known name there are (counted up to 255).
    unsigned count(field_name name) const noexcept { return count_[static_cast<std::size_t>(name)]; }

private:
    friend class message_parser;
    struct span {
        std::uint32_t offset = 0;
        std::uint32_t length = 0;
    };
    struct field_span {
        span name;
        span value;
        field_name known = field_name::other;
    };

    std::string_view view(span s) const noexcept { return {storage_.data() + s.offset, s.length}; }
    void append(span& s, const char* data, std::size_t size);
    /// The last field's name is whole: record which name it is.
    void classify_last_field() noexcept;

    // The head's bytes: the first used_ of storage_, which only grows (appending is then a
    // memcpy, not a call into std::string per element).
    std::string storage_;
    std::size_t used_ = 0;
    std::vector<field_span> fields_;
    std::array<std::uint32_t, field_name_count> first_{}; // 1 + index of each name's first field; 0: none
    std::array<std::uint8_t, field_name_count> count_{};
    span method_, target_, reason_;
    unsigned status_ = 0;
    unsigned major_ = 1;
    unsigned minor_ = 1;
};

class message_parser {
public:
    enum class kind { request, response };

    struct limits {
        std::size_t max_head_bytes = 16384;
        std::size_t max_target_bytes = 8192;
    };

    enum class state {
        head,     // reading the head
        body,     // head complete; body (possibly empty) follows
        complete, // message complete; call next_message() before parsing the next one
        failed,   // error() tells why; the connection cannot be resynchronised
    };

    message_parser(kind k, limits l);
    message_parser(const message_parser&) = delete;
    message_parser& operator=(const message_parser&) = delete;

    /// Parses up to the end of the head, or of the message, whichever comes first, and
    /// returns the bytes consumed. Body bytes are appended to body() as views into data.
    std::size_t parse(const char* data, std::size_t size);

    /// Response whose body runs to the end of the connection: the connection ended. Returns
    /// true when that completes the message, false when the message was truncated.
    bool finish_at_eof();

    state current() const noexcept { return state_; }
    bool head_complete() const noexcept { return state_ == state::body || state_ == state::complete; }
    proxy_error error() const noexcept { return error_; }
    std::string_view error_reason() const noexcept { return error_reason_; }

    const message_head& head() const noexcept { return head_; }

    /// Body bytes of the last parse() calls since clear_body(), as views into their data.
    const std::vector<std::string_view>& body() const noexcept { return body_; }
    std::size_t body_size() const noexcept { return body_size_; }
    void clear_body() noexcept
    {
        body_.clear();
        body_size_ = 0;
    }
    /// Body bytes of the current message so far.
    std::uint64_t body_total() const noexcept { return body_total_; }

    // Framing, valid once the head is complete.
    bool chunked() const noexcept { return chunked_; }
    std::optional<std::uint64_t> content_length() const noexcept { return content_length_; }
    bool keep_alive() const noexcept { return keep_alive_; }
    bool needs_eof() const noexcept { return needs_eof_; }
    bool upgrade() const noexcept { return upgrade_; }
    llhttp_method_t method() const noexcept { return method_; }

    /// Response to a HEAD request (or otherwise bodiless): the next head has no body.
    void expect_no_body() noexcept { skip_body_ = true; }

    /// Limits for the next head (a reload may change them between messages).
    void set_limits(limits l) noexcept { limits_ = l; }

    /// Readies the parser for the next message on the same connection.
    void next_message() noexcept;

    /// Forgets everything: a new connection.
    void reset() noexcept;

    /// Between messages (nothing of the next one parsed yet): gives back the memory kept for
    /// the next head, for a connection that may now sit idle for long. Elsewhere a no-op,
    /// since the current head's views point into that memory.
    void release_memory() noexcept;
    /// Heap bytes kept across messages (the head's and the body views' storage).
    std::size_t held_bytes() const noexcept;

private:
    static int on_message_begin(llhttp_t*);
    static int on_method(llhttp_t*, const char*, std::size_t);
    static int on_url(llhttp_t*, const char*, std::size_t);
    static int on_status(llhttp_t*, const char*, std::size_t);
    static int on_header_field(llhttp_t*, const char*, std::size_t);
    static int on_header_value(llhttp_t*, const char*, std::size_t);
    static int on_headers_complete(llhttp_t*);
    static int on_body(llhttp_t*, const char*, std::size_t);
    static int on_message_complete(llhttp_t*);
    static const llhttp_settings_t& settings() noexcept;

    int fail(proxy_error e, std::string_view reason) noexcept;
    bool strict_line_endings(const char* data, std::size_t size) noexcept;
    void clear_message() noexcept;

    llhttp_t parser_;
    kind kind_;
    limits limits_;
    state state_ = state::head;
    bool paused_ = false;
    bool skip_body_ = false;
    bool field_done_ = false;
    bool prev_cr_ = false;  // the previous head byte was CR
    bool after_lf_ = false; // the previous head byte ended a line
    proxy_error error_ = proxy_error::bad_request;
    std::string error_reason_;
    std::size_t head_bytes_ = 0;

    message_head head_;
    std::vector<std::string_view> body_;
    std::size_t body_size_ = 0;
    std::uint64_t body_total_ = 0;

    bool chunked_ = false;
    std::optional<std::uint64_t> content_length_;
    bool keep_alive_ = false;
    bool needs_eof_ = false;
    bool upgrade_ = false;
    llhttp_method_t method_ = HTTP_GET;
};

/// What makes a complete request head unfit to forward, if anything: an HTTP version other
/// than 1.0/1.1, CONNECT, a missing (HTTP/1.1) or repeated Host (RFC 9112 §3.2), a declared
/// body over max_body.
std::optional<proxy_error> request_head_problem(const message_parser& request, std::uint64_t max_body) noexcept;

} // namespace turnout::http
