#include "turnout/http/message_parser.hpp"

#include "turnout/http/headers.hpp"

#include <algorithm>
#include <cstring>

namespace turnout::http {

// ---- message_head ---------------------------------------------------------------------------

void message_head::clear() noexcept
{
    used_ = 0; // storage_ keeps its size: the next head writes over it
    fields_.clear();
    first_.fill(0);
    count_.fill(0);
    method_ = target_ = reason_ = {};
    status_ = 0;
    major_ = minor_ = 1;
}

void message_head::release() noexcept
{
    clear();
    std::string{}.swap(storage_);
    std::vector<field_span>{}.swap(fields_);
}

std::size_t message_head::held_bytes() const noexcept
{
    // An empty std::string holds its few bytes in place, not on the heap.
    const auto in_place = std::string{}.capacity();
    return (storage_.capacity() > in_place ? storage_.capacity() : 0) + fields_.capacity() * sizeof(field_span);
}

std::optional<std::string_view> message_head::find(std::string_view name) const noexcept
{
    for (const auto& f : fields_)
        if (iequals(view(f.name), name))
            return view(f.value);
    return std::nullopt;
}

void message_head::classify_last_field() noexcept
{
    auto& f = fields_.back();
    f.known = classify_field(view(f.name));
    const auto k = static_cast<std::size_t>(f.known);
    if (first_[k] == 0)
        first_[k] = static_cast<std::uint32_t>(fields_.size());
    if (count_[k] < 255)
        ++count_[k];
}

void message_head::append(span& s, const char* data, std::size_t size)
{
    // llhttp may deliver one element in pieces (split across reads); the pieces of an element
    // arrive back to back, so they are contiguous at the end of storage_.
    if (s.length == 0)
        s.offset = static_cast<std::uint32_t>(used_);
    if (size == 0)
        return;
    if (size > storage_.size() - used_) [[unlikely]]
        storage_.resize(std::max(2 * storage_.size(), used_ + size));
    std::memcpy(storage_.data() + used_, data, size);
    used_ += size;
    s.length += static_cast<std::uint32_t>(size);
}

// ---- message_parser -------------------------------------------------------------------------

namespace {

message_parser& self(llhttp_t* p) { return *static_cast<message_parser*>(p->data); }

} // namespace

const llhttp_settings_t& message_parser::settings() noexcept
{
    static const llhttp_settings_t s = [] {
        llhttp_settings_t s;
        llhttp_settings_init(&s);
        s.on_message_begin = &message_parser::on_message_begin;
        s.on_method = &message_parser::on_method;
        s.on_url = &message_parser::on_url;
        s.on_status = &message_parser::on_status;
        s.on_header_field = &message_parser::on_header_field;
        s.on_header_value = &message_parser::on_header_value;
        s.on_header_value_complete = [](llhttp_t* p) {
            auto& me = self(p);
            me.field_done_ = true; // also fires for an empty value
            if (me.state_ != state::head || me.head_.fields_.empty())
                return 0; // a trailer field: not kept
            if (me.head_.fields_.back().name.length == 0)
                return me.fail(proxy_error::bad_request, "empty header name");
            me.head_.classify_last_field();
            return 0;
        };
        s.on_headers_complete = &message_parser::on_headers_complete;
        s.on_body = &message_parser::on_body;
        s.on_message_complete = &message_parser::on_message_complete;
        return s;
    }();
    return s;
}

message_parser::message_parser(kind k, limits l) : kind_(k), limits_(l)
{
    // No reservations: a connection's first message grows these to what its heads need,
    // and most connections never need more than a few hundred bytes.
    reset();
}

void message_parser::reset() noexcept
{
    llhttp_init(&parser_, kind_ == kind::request ? HTTP_REQUEST : HTTP_RESPONSE, &settings());
    parser_.data = this;
    paused_ = false;
    clear_message();
}

void message_parser::clear_message() noexcept
{
    state_ = state::head;
    skip_body_ = false;
    field_done_ = false;
    head_bytes_ = 0;
    prev_cr_ = after_lf_ = false;
    error_reason_.clear();
    head_.clear();
    clear_body();
    body_total_ = 0;
    chunked_ = false;
    content_length_.reset();
    keep_alive_ = false;
    needs_eof_ = false;
    upgrade_ = false;
}

void message_parser::release_memory() noexcept
{
    if (state_ != state::head || head_bytes_ != 0)
        return;
    head_.release();
    std::vector<std::string_view>{}.swap(body_);
    std::string{}.swap(error_reason_);
}

std::size_t message_parser::held_bytes() const noexcept
{
    return head_.held_bytes() + body_.capacity() * sizeof(std::string_view);
}

void message_parser::next_message() noexcept
{
    if (paused_) {
        if (llhttp_get_errno(&parser_) == HPE_PAUSED_UPGRADE)
            llhttp_resume_after_upgrade(&parser_);
        else
            llhttp_resume(&parser_);
        paused_ = false;
    }
    clear_message();
}

std::size_t message_parser::parse(const char* data, std::size_t size)
{
    if (state_ == state::complete || state_ == state::failed || size == 0)
        return 0;
    if (paused_) {
        llhttp_resume(&parser_);
        paused_ = false;
    }
    const bool in_head = state_ == state::head;
    const auto err = llhttp_execute(&parser_, data, size);

    std::size_t consumed = size;
    if (err == HPE_PAUSED || err == HPE_PAUSED_UPGRADE) {
        paused_ = true;
        consumed = static_cast<std::size_t>(llhttp_get_error_pos(&parser_) - data);
    } else if (err != HPE_OK) {
        if (state_ != state::failed) { // not already failed by one of our callbacks
            state_ = state::failed;
            error_ = proxy_error::bad_request;
            error_reason_ = llhttp_get_error_reason(&parser_);
        }
        return 0;
    }

    if (in_head) {
        if (kind_ == kind::request && !strict_line_endings(data, consumed))
            return 0;
        // Counted on raw bytes, not on what the callbacks saw: whitespace padding counts too.
        head_bytes_ += consumed;
        if (head_bytes_ > limits_.max_head_bytes) {
            fail(proxy_error::header_too_large, "header fields too large");
            return 0;
        }
    }
    return consumed;
}

bool message_parser::finish_at_eof()
{
    if (state_ != state::body || !needs_eof_)
        return false;
    if (paused_) {
        llhttp_resume(&parser_);
        paused_ = false;
        // Paused right after the head, llhttp has not yet entered its read-until-EOF state:
        // an empty execute gets it there, so that finish completes the message.
        static const char nothing = 0;
        llhttp_execute(&parser_, &nothing, 0);
    }
    const auto err = llhttp_finish(&parser_);
    return (err == HPE_OK || err == HPE_PAUSED) && state_ == state::complete;
}

bool message_parser::strict_line_endings(const char* data, std::size_t size) noexcept
{
    // What llhttp 8.1 lets through even in strict mode, and a proxy must not: a bare LF as a
    // line end, and obs-fold (a line starting with SP/HT continuing the previous field), both
    // classic ways to make two parsers disagree on a head (RFC 9112 §2.2, §5.2).
    if (size == 0)
        return true;
    if (after_lf_ && (data[0] == ' ' || data[0] == '\t'))
        return fail(proxy_error::bad_request, "obsolete line folding in a header"), false;
    const char* end = data + size;
    for (const char* lf = data; (lf = static_cast<const char*>(std::memchr(lf, '\n', end - lf))); ++lf) {
        const bool after_cr = lf == data ? prev_cr_ : lf[-1] == '\r';
        if (!after_cr)
            return fail(proxy_error::bad_request, "bare LF line ending in the head"), false;
        if (lf + 1 < end && (lf[1] == ' ' || lf[1] == '\t'))
            return fail(proxy_error::bad_request, "obsolete line folding in a header"), false;
    }
    after_lf_ = end[-1] == '\n';
    prev_cr_ = end[-1] == '\r';
    return true;
}

int message_parser::fail(proxy_error e, std::string_view reason) noexcept
{
    state_ = state::failed;
    error_ = e;
    error_reason_ = reason;
    return -1;
}

int message_parser::on_message_begin(llhttp_t* p)
{
    auto& me = self(p);
    // A fresh message: everything of the previous one is gone (next_message() did it), but
    // llhttp may begin a message after a 1xx without a pause in between.
    me.state_ = state::head;
    return 0;
}

int message_parser::on_method(llhttp_t* p, const char* at, std::size_t length)
{
    auto& me = self(p);
    me.head_.append(me.head_.method_, at, length);
    return 0;
}

int message_parser::on_url(llhttp_t* p, const char* at, std::size_t length)
{
    auto& me = self(p);
    if (me.head_.target_.length + length > me.limits_.max_target_bytes)
        return me.fail(proxy_error::uri_too_long, "request target too long");
    me.head_.append(me.head_.target_, at, length);
    return 0;
}

int message_parser::on_status(llhttp_t* p, const char* at, std::size_t length)
{
    auto& me = self(p);
    me.head_.append(me.head_.reason_, at, length);
    return 0;
}

int message_parser::on_header_field(llhttp_t* p, const char* at, std::size_t length)
{
    auto& me = self(p);
    if (me.state_ != state::head)
        return 0; // a trailer field: not forwarded (turnout re-frames bodies)
    if (me.head_.fields_.empty() || me.field_done_) {
        me.head_.fields_.emplace_back();
        me.field_done_ = false;
    }
    me.head_.append(me.head_.fields_.back().name, at, length);
    return 0;
}

int message_parser::on_header_value(llhttp_t* p, const char* at, std::size_t length)
{
    auto& me = self(p);
    if (me.state_ != state::head)
        return 0;
    me.head_.append(me.head_.fields_.back().value, at, length);
    return 0;
}

int message_parser::on_headers_complete(llhttp_t* p)
{
    auto& me = self(p);
    me.head_.status_ = p->status_code;
    me.head_.major_ = p->http_major;
    me.head_.minor_ = p->http_minor;
    me.method_ = static_cast<llhttp_method_t>(p->method);
    me.chunked_ = (p->flags & F_CHUNKED) != 0;
    if (p->flags & F_CONTENT_LENGTH)
        me.content_length_ = p->content_length;
    me.keep_alive_ = llhttp_should_keep_alive(p) != 0;
    me.upgrade_ = p->upgrade != 0;
    me.state_ = state::body;

    const bool interim = me.kind_ == kind::response && p->status_code >= 100 && p->status_code < 200;
    if (me.skip_body_ && !interim)
        return 1; // no body follows (HEAD); on_message_complete pauses right after the head
    me.needs_eof_ = me.kind_ == kind::response && !interim && !me.chunked_ && !me.content_length_ &&
                    p->status_code != 204 && p->status_code != 304;
    // Pause only where a body follows: a bodiless message completes in this same call (llhttp
    // needs input bytes to move on after a pause, and there may be none).
    const bool bodiless = interim || p->status_code == 204 || p->status_code == 304 ||
                          (!me.chunked_ && !me.needs_eof_ && me.content_length_.value_or(0) == 0);
    return bodiless ? 0 : HPE_PAUSED;
}

int message_parser::on_body(llhttp_t* p, const char* at, std::size_t length)
{
    auto& me = self(p);
    me.body_.emplace_back(at, length);
    me.body_size_ += length;
    me.body_total_ += length;
    return 0;
}

int message_parser::on_message_complete(llhttp_t* p)
{
    auto& me = self(p);
    me.state_ = state::complete;
    me.keep_alive_ = llhttp_should_keep_alive(p) != 0;
    return HPE_PAUSED;
}

std::optional<proxy_error> request_head_problem(const message_parser& request, std::uint64_t max_body) noexcept
{
    const auto& head = request.head();
    if (head.version_major() != 1 || head.version_minor() > 1)
        return proxy_error::bad_request; // HTTP/0.9, 2+, or 1.2+ on this port
    if (request.method() == HTTP_CONNECT)
        return proxy_error::method_not_allowed;
    if (head.count(field_name::host) == 0 && head.version_minor() >= 1)
        return proxy_error::bad_request;
    if (head.count(field_name::host) > 1)
        return proxy_error::bad_request;
    if (request.content_length() && *request.content_length() > max_body)
        return proxy_error::body_too_large;
    return std::nullopt;
}

} // namespace turnout::http
