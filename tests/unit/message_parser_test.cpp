#include "turnout/http/message_parser.hpp"

#include <doctest/doctest.h>

#include <algorithm>
#include <cstddef>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

using turnout::http::message_parser;
using turnout::http::proxy_error;
using state = message_parser::state;
using kind = message_parser::kind;

namespace {

constexpr std::size_t whole = std::string_view::npos;

message_parser request_parser(message_parser::limits l = {}) { return {kind::request, l}; }
message_parser response_parser(message_parser::limits l = {}) { return {kind::response, l}; }

// Feeds text to p in pieces of at most step bytes, as reads would deliver it, until the parser
// stops taking bytes (end of head, end of message, failure) or the text runs out. Returns the
// bytes consumed. The parser keeps views into text: it must outlive their use.
std::size_t feed(message_parser& p, std::string_view text, std::size_t step = whole)
{
    std::size_t offset = 0;
    const auto start = p.current();
    while (offset < text.size()) {
        const auto piece = std::min(step, text.size() - offset);
        const auto n = p.parse(text.data() + offset, piece);
        offset += n;
        if (n < piece || p.current() != start)
            break;
    }
    return offset;
}

// Calls parse() until the message is complete or failed, or no byte is taken any more.
std::size_t parse_all(message_parser& p, std::string_view text, std::size_t step = whole)
{
    std::size_t offset = 0;
    while (offset < text.size() && p.current() != state::complete && p.current() != state::failed) {
        const auto piece = std::min(step, text.size() - offset);
        const auto n = p.parse(text.data() + offset, piece);
        offset += n;
        if (n == 0 && p.current() != state::complete)
            break;
    }
    return offset;
}

std::string body_of(const message_parser& p)
{
    std::string body;
    for (const auto piece : p.body())
        body.append(piece);
    return body;
}

using field_list = std::vector<std::pair<std::string, std::string>>;

field_list fields_of(const message_parser& p)
{
    field_list fields;
    for (std::size_t i = 0; i < p.head().field_count(); ++i) {
        const auto f = p.head().field(i);
        fields.emplace_back(std::string{f.name}, std::string{f.value});
    }
    return fields;
}

// Parses a whole request that must be rejected; returns the parser's verdict.
proxy_error rejection_of(std::string_view text, message_parser::limits l = {})
{
    auto p = request_parser(l);
    parse_all(p, text);
    REQUIRE(p.current() == state::failed);
    CHECK_FALSE(p.error_reason().empty());
    return p.error();
}

proxy_error response_rejection_of(std::string_view text)
{
    auto p = response_parser();
    parse_all(p, text);
    REQUIRE(p.current() == state::failed);
    return p.error();
}

constexpr std::string_view simple_get = "GET /mcp?x=1 HTTP/1.1\r\n"
                                        "Host: example.com\r\n"
                                        "Accept: text/event-stream\r\n"
                                        "Mcp-Session-Id: abc-123\r\n"
                                        "\r\n";

} // namespace

// ---------------------------------------------------------------------------------------------
// Request heads

TEST_CASE("a simple GET request head is parsed into method, target, version and fields in order")
{
    auto p = request_parser();
    CHECK(p.current() == state::head);
    CHECK(p.parse(simple_get.data(), simple_get.size()) == simple_get.size());
    CHECK(p.head_complete());
    CHECK(p.current() == state::complete); // no body: complete with its head

    const auto& h = p.head();
    CHECK(h.method() == "GET");
    CHECK(p.method() == HTTP_GET);
    CHECK(h.target() == "/mcp?x=1");
    CHECK(h.version_major() == 1);
    CHECK(h.version_minor() == 1);
    CHECK(fields_of(p) == field_list{{"Host", "example.com"},
                                     {"Accept", "text/event-stream"},
                                     {"Mcp-Session-Id", "abc-123"}});
    CHECK(p.keep_alive());
    CHECK_FALSE(p.chunked());
    CHECK_FALSE(p.content_length());
    CHECK_FALSE(p.needs_eof());
    CHECK_FALSE(p.upgrade());
    CHECK(p.body().empty());
    CHECK(p.body_total() == 0);
}

TEST_CASE("release_memory() between messages gives the head's memory back; the next head parses as before")
{
    auto p = request_parser();
    CHECK(p.parse(simple_get.data(), simple_get.size()) == simple_get.size());
    CHECK(p.held_bytes() > 0);

    p.release_memory(); // complete, not between messages: the head's views must stay valid
    CHECK(p.head().target() == "/mcp?x=1");
    CHECK(p.held_bytes() > 0);

    p.next_message();
    CHECK(p.held_bytes() > 0); // kept for the next head, as a busy connection wants
    p.release_memory();
    CHECK(p.held_bytes() == 0);

    CHECK(p.parse(simple_get.data(), simple_get.size()) == simple_get.size());
    CHECK(p.current() == state::complete);
    CHECK(p.head().method() == "GET");
    CHECK(fields_of(p) == field_list{{"Host", "example.com"},
                                     {"Accept", "text/event-stream"},
                                     {"Mcp-Session-Id", "abc-123"}});
}

TEST_CASE("release_memory() in the middle of a head changes nothing")
{
    auto p = request_parser();
    const auto half = simple_get.size() / 2;
    CHECK(p.parse(simple_get.data(), half) == half);
    const auto held = p.held_bytes();
    p.release_memory();
    CHECK(p.held_bytes() == held);
    CHECK(p.parse(simple_get.data() + half, simple_get.size() - half) == simple_get.size() - half);
    CHECK(p.head().target() == "/mcp?x=1");
}

TEST_CASE("find() looks a field up by name in any case and returns the first one")
{
    auto p = request_parser();
    constexpr std::string_view text = "GET / HTTP/1.1\r\nHost: a\r\nX-Dup: one\r\nx-dup: two\r\n\r\n";
    REQUIRE(p.parse(text.data(), text.size()) == text.size());
    CHECK(p.head().find("host") == "a");
    CHECK(p.head().find("HOST") == "a");
    CHECK(p.head().find("hOsT") == "a");
    CHECK(p.head().find("X-DUP") == "one");
    CHECK_FALSE(p.head().find("mcp-session-id"));
    CHECK_FALSE(p.head().find("hos"));
}

TEST_CASE("known fields are found and counted without comparing names, trailers not among them")
{
    using turnout::http::field_name;
    auto p = request_parser();
    const std::string text = "POST /mcp HTTP/1.1\r\nX-Other: 1\r\nmcp-session-ID: s1\r\nHost: a\r\n"
                             "X-Forwarded-For: 10.0.0.1\r\nx-forwarded-for: 10.0.0.2\r\n"
                             "Transfer-Encoding: chunked\r\n\r\n"
                             "1\r\nx\r\n0\r\nHost: trailer\r\nMcp-Session-Id: t\r\n\r\n";
    for (const std::size_t step : {whole, std::size_t{1}, std::size_t{5}}) {
        CAPTURE(step);
        p.reset();
        CHECK(parse_all(p, text, step) == text.size());
        REQUIRE(p.current() == state::complete);
        const auto& head = p.head();
        CHECK(head.find(field_name::mcp_session_id) == "s1");
        CHECK(head.find(field_name::host) == "a");
        CHECK(head.find(field_name::x_forwarded_for) == "10.0.0.1");
        CHECK_FALSE(head.find(field_name::content_type));
        CHECK(head.count(field_name::x_forwarded_for) == 2);
        CHECK(head.count(field_name::host) == 1); // the trailer's Host is not a field of the head
        CHECK(head.count(field_name::mcp_session_id) == 1);
        CHECK(head.count(field_name::expect) == 0);
        CHECK(head.field(0).known == field_name::other);
        CHECK(head.field(1).known == field_name::mcp_session_id);
        CHECK(head.field(5).known == field_name::transfer_encoding);
    }
    // The next message starts with nothing known.
    p.next_message();
    constexpr std::string_view next = "GET / HTTP/1.1\r\nContent-Type: a/b\r\n\r\n";
    REQUIRE(p.parse(next.data(), next.size()) == next.size());
    CHECK_FALSE(p.head().find(field_name::host));
    CHECK(p.head().count(field_name::x_forwarded_for) == 0);
    CHECK(p.head().find(field_name::content_type) == "a/b");
}

TEST_CASE("a head fed one byte per parse() call gives the same result as in one piece")
{
    auto whole_parser = request_parser();
    REQUIRE(feed(whole_parser, simple_get) == simple_get.size());

    auto bytewise = request_parser();
    CHECK(feed(bytewise, simple_get, 1) == simple_get.size());
    CHECK(bytewise.current() == state::complete);
    CHECK(bytewise.head().method() == whole_parser.head().method());
    CHECK(bytewise.head().target() == whole_parser.head().target());
    CHECK(bytewise.head().version_minor() == 1);
    CHECK(fields_of(bytewise) == fields_of(whole_parser));
    CHECK(bytewise.keep_alive() == whole_parser.keep_alive());
}

TEST_CASE("header names and values split across parse() calls at any point are joined")
{
    auto reference = request_parser();
    REQUIRE(feed(reference, simple_get) == simple_get.size());

    for (std::size_t cut = 1; cut < simple_get.size(); ++cut) {
        CAPTURE(cut);
        auto p = request_parser();
        const auto first = p.parse(simple_get.data(), cut);
        CHECK(first == cut);
        CHECK(p.current() == state::head);
        CHECK(p.parse(simple_get.data() + cut, simple_get.size() - cut) == simple_get.size() - cut);
        CHECK(p.current() == state::complete);
        CHECK(p.head().method() == "GET");
        CHECK(p.head().target() == "/mcp?x=1");
        CHECK(fields_of(p) == fields_of(reference));
    }
}

TEST_CASE("an empty header value is kept as a field with an empty value")
{
    auto p = request_parser();
    constexpr std::string_view text = "GET / HTTP/1.1\r\nX-Empty:\r\nX-Spaces:   \r\nHost: a\r\n\r\n";
    REQUIRE(feed(p, text) == text.size());
    CHECK(fields_of(p) == field_list{{"X-Empty", ""}, {"X-Spaces", ""}, {"Host", "a"}});
    CHECK(p.head().find("x-empty") == "");

    auto bytewise = request_parser();
    REQUIRE(feed(bytewise, text, 1) == text.size());
    CHECK(fields_of(bytewise) == fields_of(p));
}

TEST_CASE("HTTP/1.0 requests are not keep-alive unless they ask, HTTP/1.1 ones unless they close")
{
    auto check_keep_alive = [](std::string_view text) {
        auto p = request_parser();
        REQUIRE(feed(p, text) == text.size());
        REQUIRE(p.head_complete());
        return p.keep_alive();
    };
    CHECK(check_keep_alive("GET / HTTP/1.1\r\nHost: a\r\n\r\n"));
    CHECK_FALSE(check_keep_alive("GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"));
    CHECK_FALSE(check_keep_alive("GET / HTTP/1.0\r\n\r\n"));
    CHECK(check_keep_alive("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"));
}

// ---------------------------------------------------------------------------------------------
// Request bodies

TEST_CASE("a Content-Length body: parse stops after the head, then the body views cover exactly the body")
{
    const std::string head = "POST /mcp HTTP/1.1\r\nHost: a\r\nContent-Length: 11\r\n\r\n";
    const std::string text = head + "hello world" + "GET /next HTTP/1.1\r\n";

    auto p = request_parser();
    CHECK(p.parse(text.data(), text.size()) == head.size());
    CHECK(p.current() == state::body);
    CHECK(p.method() == HTTP_POST);
    CHECK(p.content_length() == 11u);
    CHECK_FALSE(p.chunked());
    CHECK(p.body().empty());

    const auto rest = std::string_view{text}.substr(head.size());
    CHECK(p.parse(rest.data(), rest.size()) == 11);
    CHECK(p.current() == state::complete);
    CHECK(body_of(p) == "hello world");
    CHECK(p.body_size() == 11);
    CHECK(p.body_total() == 11);
    // Views into the caller's buffer, not copies.
    REQUIRE_FALSE(p.body().empty());
    CHECK(p.body().front().data() == text.data() + head.size());
    CHECK(p.body().back().data() + p.body().back().size() == text.data() + head.size() + 11);
    // Complete: nothing more is taken until next_message().
    CHECK(p.parse(rest.data() + 11, rest.size() - 11) == 0);
    CHECK(p.current() == state::complete);
}

TEST_CASE("a Content-Length body arriving in pieces is counted by body_size until clear_body and by body_total")
{
    const std::string_view text = "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 6\r\n\r\nabcdef";
    auto p = request_parser();
    const auto head = feed(p, text);
    REQUIRE(p.current() == state::body);

    CHECK(p.parse(text.data() + head, 2) == 2);
    CHECK(p.current() == state::body);
    CHECK(body_of(p) == "ab");
    CHECK(p.parse(text.data() + head + 2, 1) == 1);
    CHECK(body_of(p) == "abc");
    CHECK(p.body_size() == 3);
    p.clear_body();
    CHECK(p.body().empty());
    CHECK(p.body_size() == 0);
    CHECK(p.body_total() == 3);
    CHECK(p.parse(text.data() + head + 3, 3) == 3);
    CHECK(p.current() == state::complete);
    CHECK(body_of(p) == "def");
    CHECK(p.body_total() == 6);
}

TEST_CASE("a chunked body is handed out de-chunked and its trailer fields are not added to the head")
{
    const std::string head = "POST /mcp HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n";
    const std::string body = "5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\nX-Trailer: t\r\n\r\n";
    const std::string text = head + body;

    for (const std::size_t step : {whole, std::size_t{1}, std::size_t{7}}) {
        CAPTURE(step);
        auto p = request_parser();
        CHECK(feed(p, text, step) == head.size());
        REQUIRE(p.current() == state::body);
        CHECK(p.chunked());
        CHECK_FALSE(p.content_length());

        const auto rest = std::string_view{text}.substr(head.size());
        CHECK(parse_all(p, rest, step) == rest.size());
        CHECK(p.current() == state::complete);
        CHECK(body_of(p) == "hello world");
        CHECK(p.body_total() == 11);
        CHECK(fields_of(p) == field_list{{"Host", "a"}, {"Transfer-Encoding", "chunked"}});
        CHECK_FALSE(p.head().find("x-trailer"));
    }
}

TEST_CASE("a chunked request whose Transfer-Encoding ends in chunked is accepted")
{
    auto p = request_parser();
    const std::string_view text = "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n";
    CHECK(parse_all(p, text) == text.size());
    CHECK(p.current() == state::complete);
    CHECK(p.chunked());
    CHECK(body_of(p) == "abc");
}

// ---------------------------------------------------------------------------------------------
// Pipelining

TEST_CASE("pipelined requests in one buffer are parsed one at a time with next_message()")
{
    const std::string first = "POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc";
    const std::string second = "GET /b HTTP/1.1\r\nHost: y\r\n\r\n";
    const std::string text = first + second;

    auto p = request_parser();
    CHECK(parse_all(p, text) == first.size());
    CHECK(p.current() == state::complete);
    CHECK(p.head().target() == "/a");
    CHECK(body_of(p) == "abc");

    p.next_message();
    CHECK(p.current() == state::head);
    CHECK(p.head().field_count() == 0);
    CHECK(p.body().empty());
    CHECK(p.body_total() == 0);

    const auto rest = std::string_view{text}.substr(first.size());
    CHECK(p.parse(rest.data(), rest.size()) == second.size());
    CHECK(p.current() == state::complete);
    CHECK(p.head().method() == "GET");
    CHECK(p.head().target() == "/b");
    CHECK(p.head().find("host") == "y");
    CHECK_FALSE(p.content_length());
}

TEST_CASE("a bodiless request completes with its head and leaves the next request's bytes alone")
{
    const std::string first = "GET /a HTTP/1.1\r\nHost: x\r\n\r\n";
    const std::string second = "GET /b HTTP/1.1\r\nHost: y\r\n\r\n";
    const std::string text = first + second;

    auto p = request_parser();
    CHECK(p.parse(text.data(), text.size()) == first.size());
    CHECK(p.current() == state::complete);
    CHECK(p.head().target() == "/a");
    CHECK(p.body_total() == 0);
    const auto rest = std::string_view{text}.substr(first.size());
    CHECK(p.parse(rest.data(), rest.size()) == 0); // complete: waits for next_message()

    p.next_message();
    CHECK(p.parse(rest.data(), rest.size()) == second.size());
    CHECK(p.current() == state::complete);
    CHECK(p.head().target() == "/b");
}

TEST_CASE("a request without body completes with its head, with no further bytes")
{
    for (const std::string_view text : {"GET / HTTP/1.1\r\nHost: a\r\n\r\n",
                                        "DELETE /mcp HTTP/1.1\r\nHost: a\r\nMcp-Session-Id: s\r\n\r\n",
                                        "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n",
                                        "GET / HTTP/1.0\r\n\r\n"}) {
        CAPTURE(text);
        for (const std::size_t step : {whole, std::size_t{1}}) {
            CAPTURE(step);
            auto p = request_parser();
            CHECK(feed(p, text, step) == text.size());
            CHECK(p.current() == state::complete);
            CHECK(p.body().empty());
            CHECK(p.body_total() == 0);
            CHECK_FALSE(p.needs_eof());
        }
    }
}

TEST_CASE("reset() readies the parser for a new connection, even after a failure")
{
    auto p = request_parser();
    constexpr std::string_view bad = "GET / HTTP/1.1\r\nBad(Name: x\r\n\r\n";
    parse_all(p, bad);
    REQUIRE(p.current() == state::failed);
    CHECK(p.parse(simple_get.data(), simple_get.size()) == 0); // failure is final
    CHECK(p.current() == state::failed);

    p.reset();
    CHECK(p.current() == state::head);
    CHECK(p.error_reason().empty());
    CHECK(p.parse(simple_get.data(), simple_get.size()) == simple_get.size());
    CHECK(p.current() == state::complete);
    CHECK(p.head().target() == "/mcp?x=1");
}

// ---------------------------------------------------------------------------------------------
// Limits

TEST_CASE("a head over max_head_bytes fails with header_too_large")
{
    const std::string head = "GET / HTTP/1.1\r\nHost: a\r\nX-Big: " + std::string(200, 'x') + "\r\n\r\n";
    for (const std::size_t step : {whole, std::size_t{1}, std::size_t{16}}) {
        CAPTURE(step);
        auto p = request_parser({100, 8192});
        feed(p, head, step);
        CHECK(p.current() == state::failed);
        CHECK(p.error() == proxy_error::header_too_large);
    }
}

TEST_CASE("whitespace padding in a head counts against max_head_bytes")
{
    // Without the padding the head is 43 bytes; llhttp drops the spaces from the value.
    const std::string head = "GET / HTTP/1.1\r\nHost: a\r\nX-Pad: a" + std::string(100, ' ') + "\r\n\r\n";
    for (const std::size_t step : {whole, std::size_t{1}}) {
        CAPTURE(step);
        auto p = request_parser({64, 8192});
        feed(p, head, step);
        CHECK(p.current() == state::failed);
        CHECK(p.error() == proxy_error::header_too_large);
    }
}

TEST_CASE("a head of exactly max_head_bytes is accepted and its body does not count against the limit")
{
    const std::string head = "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 100\r\n\r\n";
    const std::string text = head + std::string(100, 'b');

    auto p = request_parser({head.size(), 8192});
    CHECK(parse_all(p, text) == text.size());
    CHECK(p.current() == state::complete);
    CHECK(p.body_total() == 100);

    auto smaller = request_parser({head.size() - 1, 8192});
    parse_all(smaller, text);
    CHECK(smaller.current() == state::failed);
    CHECK(smaller.error() == proxy_error::header_too_large);
}

TEST_CASE("set_limits() applies to the next head")
{
    const std::string big = "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nX: " + std::string(100, 'x') + "\r\n\r\nb";
    auto p = request_parser();
    REQUIRE(parse_all(p, big) == big.size());
    REQUIRE(p.current() == state::complete);
    p.next_message();
    p.set_limits({64, 8192});
    p.parse(big.data(), big.size());
    CHECK(p.current() == state::failed);
    CHECK(p.error() == proxy_error::header_too_large);
}

TEST_CASE("a request target over max_target_bytes fails with uri_too_long")
{
    const std::string at_limit = "GET /" + std::string(63, 'a') + " HTTP/1.1\r\nHost: a\r\n\r\n";
    const std::string over = "GET /" + std::string(64, 'a') + " HTTP/1.1\r\nHost: a\r\n\r\n";
    for (const std::size_t step : {whole, std::size_t{1}, std::size_t{10}}) {
        CAPTURE(step);
        auto ok = request_parser({16384, 64});
        CHECK(feed(ok, at_limit, step) == at_limit.size());
        CHECK(ok.current() == state::complete);
        CHECK(ok.head().target().size() == 64);

        auto p = request_parser({16384, 64});
        feed(p, over, step);
        CHECK(p.current() == state::failed);
        CHECK(p.error() == proxy_error::uri_too_long);
    }
}

// ---------------------------------------------------------------------------------------------
// Request smuggling and malformed framing: all fail with bad_request

TEST_CASE("Content-Length together with Transfer-Encoding: chunked is rejected")
{
    CHECK(rejection_of("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n"
                       "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n") == proxy_error::bad_request);
    CHECK(rejection_of("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n"
                       "Content-Length: 5\r\n\r\n0\r\n\r\n") == proxy_error::bad_request);
}

TEST_CASE("two Content-Length fields are rejected")
{
    CHECK(rejection_of("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!") ==
          proxy_error::bad_request);
    // llhttp rejects a repeated Content-Length even when the values agree, and a list.
    CHECK(rejection_of("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\nhello") ==
          proxy_error::bad_request);
    CHECK(rejection_of("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5, 5\r\n\r\nhello") ==
          proxy_error::bad_request);
}

TEST_CASE("a Content-Length that is not a decimal number is rejected")
{
    CHECK(rejection_of("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\n\r\n") == proxy_error::bad_request);
    CHECK(rejection_of("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1x\r\n\r\n") == proxy_error::bad_request);
}

TEST_CASE("an invalid chunk size is rejected")
{
    constexpr std::string_view head = "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n";
    for (const std::string_view chunks : {"zz\r\nhello\r\n0\r\n\r\n", "-1\r\n", "5 \r\nhello\r\n0\r\n\r\n",
                                          "ffffffffffffffffff\r\n"}) {
        CAPTURE(chunks);
        CHECK(rejection_of(std::string{head} + std::string{chunks}) == proxy_error::bad_request);
    }
}

TEST_CASE("a request Transfer-Encoding that does not end in chunked is rejected")
{
    // With its head alone: the head must not be reported complete.
    CHECK(rejection_of("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n") ==
          proxy_error::bad_request);
    CHECK(rejection_of("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\nxx") == proxy_error::bad_request);
    CHECK(rejection_of("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, gzip\r\n\r\nxx") ==
          proxy_error::bad_request);
    CHECK(rejection_of("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n"
                       "Transfer-Encoding: gzip\r\n\r\nxx") == proxy_error::bad_request);
}

TEST_CASE("a bare LF ending a header line is rejected")
{
    CHECK(rejection_of("GET / HTTP/1.1\r\nHost: a\nX: b\r\n\r\n") == proxy_error::bad_request);
    CHECK(rejection_of("GET / HTTP/1.1\nHost: a\n\n") == proxy_error::bad_request);
    CHECK(response_rejection_of("HTTP/1.1 200 OK\r\nContent-Length: 0\n\r\n") == proxy_error::bad_request);
}

TEST_CASE("a bare CR ending a header line is rejected")
{
    CHECK(rejection_of("GET / HTTP/1.1\r\nHost: a\rX: b\r\n\r\n") == proxy_error::bad_request);
    CHECK(rejection_of("GET / HTTP/1.1\rHost: a\r\n\r\n") == proxy_error::bad_request);
}

TEST_CASE("invalid characters in header names are rejected")
{
    static constexpr char separators_and_controls[] = "()<>@,;\\\"/[]?={}\x7f\x01\x00";
    for (const char c : std::string_view{separators_and_controls, sizeof separators_and_controls - 1}) {
        CAPTURE(static_cast<int>(static_cast<unsigned char>(c)));
        const auto text = std::string{"GET / HTTP/1.1\r\nHost: a\r\nX"} + c + "Y: v\r\n\r\n";
        CHECK(rejection_of(text) == proxy_error::bad_request);
    }
}

TEST_CASE("control characters in header values are rejected")
{
    CHECK(rejection_of("GET / HTTP/1.1\r\nHost: a\x01 b\r\n\r\n") == proxy_error::bad_request);
    static constexpr char with_nul[] = "GET / HTTP/1.1\r\nHost: a\0b\r\n\r\n";
    CHECK(rejection_of(std::string_view{with_nul, sizeof with_nul - 1}) == proxy_error::bad_request);
}

TEST_CASE("a field line starting with whitespace right after the request line is rejected")
{
    CHECK(rejection_of("GET / HTTP/1.1\r\n X: b\r\nHost: a\r\n\r\n") == proxy_error::bad_request);
}

TEST_CASE("a malformed request line is rejected")
{
    CHECK(rejection_of("GET / HTTP/1.1 \r\nHost: a\r\n\r\n") == proxy_error::bad_request);
    CHECK(rejection_of("GET / HTTP/9.9\r\nHost: a\r\n\r\n") == proxy_error::bad_request);
    CHECK(rejection_of("G@T / HTTP/1.1\r\nHost: a\r\n\r\n") == proxy_error::bad_request);
}

// ---------------------------------------------------------------------------------------------
// Responses

TEST_CASE("a response head gives status, reason, keep-alive and Content-Length")
{
    const std::string head = "HTTP/1.1 404 Not Found\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n";
    const std::string text = head + "{}";
    auto p = response_parser();
    CHECK(p.parse(text.data(), text.size()) == head.size());
    CHECK(p.current() == state::body);
    CHECK(p.head().status() == 404);
    CHECK(p.head().reason() == "Not Found");
    CHECK(p.head().version_minor() == 1);
    CHECK(p.head().find("content-type") == "application/json");
    CHECK(p.keep_alive());
    CHECK(p.content_length() == 2u);
    CHECK_FALSE(p.chunked());
    CHECK_FALSE(p.needs_eof());

    CHECK(p.parse(text.data() + head.size(), 2) == 2);
    CHECK(p.current() == state::complete);
    CHECK(body_of(p) == "{}");
    CHECK(p.keep_alive());
}

TEST_CASE("a response with Connection: close, or an HTTP/1.0 one, is not keep-alive")
{
    auto check_keep_alive = [](std::string_view text) {
        auto p = response_parser();
        parse_all(p, text);
        REQUIRE(p.current() == state::complete);
        return p.keep_alive();
    };
    CHECK_FALSE(check_keep_alive("HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\nX"));
    CHECK_FALSE(check_keep_alive("HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\nX"));
    CHECK(check_keep_alive("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\nX"));
}

TEST_CASE("a chunked response is de-chunked")
{
    const std::string_view text = "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
                                  "Transfer-Encoding: chunked\r\n\r\n"
                                  "7\r\ndata: 1\r\n1\r\n\n\r\n0\r\n\r\n";
    auto p = response_parser();
    feed(p, text);
    REQUIRE(p.current() == state::body);
    CHECK(p.chunked());
    CHECK_FALSE(p.content_length());
    CHECK_FALSE(p.needs_eof());
    CHECK(parse_all(p, text.substr(text.find("7\r\n"))) == text.size() - text.find("7\r\n"));
    CHECK(p.current() == state::complete);
    CHECK(body_of(p) == "data: 1\n");
    CHECK(p.keep_alive());
}

// llhttp_finish() hands back the HPE_PAUSED that on_message_complete returns: still complete.
TEST_CASE("a response without length runs to EOF and finish_at_eof() completes it")
{
    const std::string head = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\n";
    const std::string text = head + "abc";
    auto p = response_parser();
    CHECK(p.parse(text.data(), text.size()) == head.size());
    CHECK(p.current() == state::body);
    CHECK(p.needs_eof());
    CHECK_FALSE(p.content_length());
    CHECK_FALSE(p.chunked());

    CHECK(p.parse(text.data() + head.size(), 3) == 3);
    CHECK(p.current() == state::body);
    CHECK(body_of(p) == "abc");

    CHECK(p.finish_at_eof());
    CHECK(p.current() == state::complete);
    CHECK(p.body_total() == 3);
    CHECK_FALSE(p.keep_alive());
}

// Currently stays in state body: the parser is still paused right after the head, before llhttp
// has armed its EOF handling, so llhttp_finish() answers HPE_INVALID_EOF_STATE (reported).
TEST_CASE("a response without length completes at EOF even with an empty body")
{
    const std::string_view head = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\n";
    auto p = response_parser();
    CHECK(p.parse(head.data(), head.size()) == head.size());
    REQUIRE(p.current() == state::body);
    REQUIRE(p.needs_eof());
    p.finish_at_eof();
    CHECK(p.current() == state::complete);
    CHECK(p.body_total() == 0);
}

TEST_CASE("finish_at_eof() reports a truncated response as not complete")
{
    SUBCASE("Content-Length body cut short")
    {
        const std::string_view text = "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc";
        auto p = response_parser();
        parse_all(p, text);
        REQUIRE(p.current() == state::body);
        CHECK_FALSE(p.needs_eof());
        CHECK_FALSE(p.finish_at_eof());
        CHECK(p.current() != state::complete);
    }
    SUBCASE("chunked body cut short")
    {
        const std::string_view text = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab";
        auto p = response_parser();
        parse_all(p, text);
        REQUIRE(p.current() == state::body);
        CHECK_FALSE(p.finish_at_eof());
        CHECK(p.current() != state::complete);
    }
    SUBCASE("head cut short")
    {
        const std::string_view text = "HTTP/1.1 200 OK\r\nContent-Ty";
        auto p = response_parser();
        parse_all(p, text);
        REQUIRE(p.current() == state::head);
        CHECK_FALSE(p.finish_at_eof());
    }
}

TEST_CASE("after expect_no_body() a response with Content-Length completes right after its head")
{
    const std::string head = "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n";
    const std::string next = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi";
    const std::string text = head + next;

    auto p = response_parser();
    p.expect_no_body();
    CHECK(p.parse(text.data(), text.size()) == head.size());
    CHECK(p.current() == state::complete);
    CHECK(p.content_length() == 10u);
    CHECK(p.body().empty());
    CHECK(p.body_total() == 0);
    CHECK_FALSE(p.needs_eof());
    CHECK(p.keep_alive());

    // The next response on the connection has its body again.
    p.next_message();
    const auto rest = std::string_view{text}.substr(head.size());
    CHECK(parse_all(p, rest) == rest.size());
    CHECK(p.current() == state::complete);
    CHECK(body_of(p) == "hi");
}

TEST_CASE("204 and 304 responses have no body")
{
    for (const std::string_view status_line : {"HTTP/1.1 204 No Content\r\n", "HTTP/1.1 304 Not Modified\r\n"}) {
        CAPTURE(status_line);
        const std::string head = std::string{status_line} + "ETag: \"x\"\r\n\r\n";
        const std::string next = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi";

        SUBCASE("alone")
        {
            auto p = response_parser();
            CHECK(p.parse(head.data(), head.size()) == head.size());
            CHECK(p.current() == state::complete);
            CHECK_FALSE(p.needs_eof());
            CHECK_FALSE(p.content_length());
            CHECK_FALSE(p.chunked());
            CHECK(p.body_total() == 0);
            CHECK(p.keep_alive());
        }
        SUBCASE("followed by the next response, whose bytes are not taken as a body")
        {
            const std::string text = head + next;
            auto p = response_parser();
            CHECK(p.parse(text.data(), text.size()) == head.size());
            CHECK(p.current() == state::complete);
            CHECK(p.body_total() == 0);

            p.next_message();
            const auto rest = std::string_view{text}.substr(head.size());
            CHECK(parse_all(p, rest) == rest.size());
            CHECK(p.head().status() == 200);
            CHECK(body_of(p) == "hi");
        }
    }
}

TEST_CASE("a 100 Continue interim response and the final response in one buffer are parsed one after the other")
{
    const std::string interim = "HTTP/1.1 100 Continue\r\n\r\n";
    const std::string final_response = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi";
    const std::string text = interim + final_response;

    auto p = response_parser();
    CHECK(parse_all(p, text) == interim.size());
    CHECK(p.current() == state::complete);
    CHECK(p.head().status() == 100);
    CHECK(p.head().reason() == "Continue");
    CHECK_FALSE(p.needs_eof());
    CHECK(p.body_total() == 0);

    p.next_message();
    const auto rest = std::string_view{text}.substr(interim.size());
    CHECK(p.parse(rest.data(), rest.size()) == final_response.size() - 2);
    CHECK(p.current() == state::body);
    CHECK(p.head().status() == 200);
    CHECK(p.content_length() == 2u);
    CHECK(p.parse(rest.data() + rest.size() - 2, 2) == 2);
    CHECK(p.current() == state::complete);
    CHECK(body_of(p) == "hi");
}

TEST_CASE("a 100 Continue after expect_no_body() still leaves the HEAD response bodiless")
{
    const std::string interim = "HTTP/1.1 100 Continue\r\n\r\n";
    const std::string final_head = "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n";
    const std::string text = interim + final_head;

    auto p = response_parser();
    p.expect_no_body();
    CHECK(parse_all(p, text) == interim.size());
    CHECK(p.current() == state::complete);
    CHECK(p.head().status() == 100);

    p.next_message();
    p.expect_no_body();
    const auto rest = std::string_view{text}.substr(interim.size());
    CHECK(p.parse(rest.data(), rest.size()) == final_head.size());
    CHECK(p.current() == state::complete);
    CHECK(p.head().status() == 200);
    CHECK(p.body_total() == 0);
}

TEST_CASE("a malformed response is rejected")
{
    CHECK(response_rejection_of("HTTP/1.1 2x0 OK\r\n\r\n") == proxy_error::bad_request);
    CHECK(response_rejection_of("HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab") ==
          proxy_error::bad_request);
    CHECK(response_rejection_of("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n") ==
          proxy_error::bad_request);
    CHECK(response_rejection_of("garbage\r\n\r\n") == proxy_error::bad_request);
}

TEST_CASE("obs-fold in a request head is rejected (a field continued on a line starting with SP or HT)")
{
    CHECK(rejection_of("GET / HTTP/1.1\r\nHost: a\r\nX: b\r\n c\r\n\r\n") == proxy_error::bad_request);
    CHECK(rejection_of("GET / HTTP/1.1\r\nHost: a\r\nX:\r\n\tc\r\n\r\n") == proxy_error::bad_request);
    CHECK(rejection_of("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding:\r\n chunked\r\n\r\n0\r\n\r\n") ==
          proxy_error::bad_request);
}

TEST_CASE("a bare LF line ending anywhere in a request head is rejected, even split across reads")
{
    CHECK(rejection_of("GET / HTTP/1.1\nHost: a\r\n\r\n") == proxy_error::bad_request);
    CHECK(rejection_of("GET / HTTP/1.1\r\nHost: a\r\n\n") == proxy_error::bad_request);
    auto p = request_parser();
    feed(p, "GET / HTTP/1.1\r\nHost: a\r\n\n", 1);
    CHECK(p.current() == message_parser::state::failed);
}

TEST_CASE("a CRLF split between two reads is one line ending")
{
    auto p = request_parser();
    feed(p, "GET / HTTP/1.1\r\nHost: a\r\n\r\n", 1);
    CHECK(p.current() == message_parser::state::complete);
}

TEST_CASE("an empty header name or a space inside a name is rejected")
{
    CHECK(rejection_of("GET / HTTP/1.1\r\n: a\r\nHost: a\r\n\r\n") == proxy_error::bad_request);
    CHECK(rejection_of("GET / HTTP/1.1\r\nHo st: a\r\n\r\n") == proxy_error::bad_request);
    CHECK(rejection_of("GET / HTTP/1.1\r\nHost : a\r\n\r\n") == proxy_error::bad_request);
}
