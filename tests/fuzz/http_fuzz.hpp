#pragma once
// The driver shared by request_head and response_head: feeds the input to a message_parser in
// pieces (cut points derived from the input's first bytes), message after message (pipelining),
// and checks the parser's invariants after each call.

#include "fuzz_support.hpp"

#include "turnout/http/headers.hpp"
#include "turnout/http/message_parser.hpp"

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace turnout::fuzz {

struct http_fuzz_result {
    unsigned messages = 0;
    bool failed = false;
};

/// The inputs of both HTTP targets: byte 0 picks the piece size (1..255, 0 → the whole
/// stream), byte 1 holds flags (bit 0: small limits), the rest is the stream.
struct http_fuzz_input {
    std::size_t step;
    std::uint8_t flags;
    http::message_parser::limits limits;
    std::string_view stream;
};

inline std::optional<http_fuzz_input> read_input(const std::uint8_t* data, std::size_t size)
{
    if (size < 2)
        return std::nullopt;
    http_fuzz_input in{data[0] == 0 ? size : data[0], data[1], {},
                       {reinterpret_cast<const char*>(data + 2), size - 2}};
    if (in.flags & 1) { // small limits, so that the bounds are reached
        in.limits.max_head_bytes = 64 + (in.flags >> 1) * 4;
        in.limits.max_target_bytes = 16 + (in.flags >> 2);
    }
    return in;
}

inline void check_head(const http::message_head& head, std::size_t max_head_bytes)
{
    volatile unsigned sink = touch(head.method()) + touch(head.target()) + touch(head.reason());
    std::size_t bytes = head.method().size() + head.target().size() + head.reason().size();
    for (std::size_t i = 0; i < head.field_count(); ++i) {
        const auto f = head.field(i);
        sink = sink + touch(f.name) + touch(f.value);
        bytes += f.name.size() + f.value.size();
        FUZZ_CHECK(!f.name.empty());
        FUZZ_CHECK(f.known == http::classify_field(f.name));
        // A field value has no line end in it (no CR/LF smuggled through).
        FUZZ_CHECK(f.value.find_first_of("\r\n") == std::string_view::npos);
        FUZZ_CHECK(f.name.find_first_of("\r\n: \t") == std::string_view::npos);
        const auto found = head.find(f.name);
        FUZZ_CHECK(found.has_value());
    }
    FUZZ_CHECK(bytes == head.stored_bytes());
    FUZZ_CHECK(head.stored_bytes() <= max_head_bytes);
    for (std::size_t n = 0; n < http::field_name_count; ++n) {
        const auto name = static_cast<http::field_name>(n);
        if (name == http::field_name::other)
            continue;
        FUZZ_CHECK(head.find(name).has_value() == (head.count(name) > 0));
    }
    (void)sink;
}

/// Feeds data to p. Pieces: the input is cut at every multiple of step (from the first byte),
/// at least 1. on_head(p) is called once per complete head, on_complete(p, body) once per
/// complete message (body: all its body bytes).
template <class OnHead, class OnComplete, class AtEof>
http_fuzz_result drive(http::message_parser& p, std::string_view data, std::size_t step,
                       std::size_t max_head_bytes, OnHead&& on_head, OnComplete&& on_complete, AtEof&& at_eof)
{
    std::string body;
    http_fuzz_result result;
    std::size_t offset = 0;
    bool head_seen = false;
    std::uint64_t body_seen = 0;
    // Each piece lives in its own exact-size block while body views into it may be read.
    while (offset < data.size() && result.messages < 1000) {
        const std::size_t piece_end = std::min(data.size(), (offset / step + 1) * step);
        exact_copy piece{data.substr(offset, piece_end - offset)};
        std::size_t at = 0;
        while (at < piece.size()) {
            const auto before = p.current();
            const std::size_t n = p.parse(piece.data() + at, piece.size() - at);
            FUZZ_CHECK(n <= piece.size() - at);
            at += n;
            for (const auto b : p.body()) {
                FUZZ_CHECK(b.data() >= piece.data() && b.data() + b.size() <= piece.data() + piece.size());
                body.append(b);
            }
            body_seen += p.body_size();
            p.clear_body();
            if (p.current() == http::message_parser::state::failed) {
                result.failed = true;
                return result;
            }
            if (p.head_complete() && !head_seen) {
                head_seen = true;
                check_head(p.head(), max_head_bytes);
                on_head(p);
            }
            if (p.head_complete())
                FUZZ_CHECK(body_seen == p.body_total());
            if (p.current() == http::message_parser::state::complete) {
                if (p.content_length() && !p.chunked())
                    FUZZ_CHECK(p.body_total() <= *p.content_length());
                ++result.messages;
                on_complete(p, std::string_view{body});
                body.clear();
                if (p.upgrade())
                    return result; // the bytes after an upgrade are not HTTP
                p.next_message();
                head_seen = false;
                body_seen = 0;
                continue;
            }
            if (n == 0 && p.current() == before)
                break; // not taking bytes in this state: move on (or stop) below
        }
        if (at < piece.size())
            return result; // the parser stopped taking bytes without finishing a message
        offset = piece_end;
    }
    at_eof(p);
    return result;
}

} // namespace turnout::fuzz
