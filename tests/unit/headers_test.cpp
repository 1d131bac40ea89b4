#include "turnout/http/headers.hpp"

#include <doctest/doctest.h>

#include <string>
#include <string_view>
#include <utility>
#include <vector>

using turnout::http::for_each_token;
using turnout::http::has_token;
using turnout::http::starts_with_lowercase;
using turnout::http::iequals;
using turnout::http::classify_field;
using turnout::http::field_name;
using turnout::http::is_hop_by_hop;

namespace {

std::vector<std::string> tokens_of(std::string_view list)
{
    std::vector<std::string> tokens;
    for_each_token(list, [&](std::string_view token) { tokens.emplace_back(token); });
    return tokens;
}

} // namespace

TEST_CASE("iequals compares ASCII case-insensitively")
{
    CHECK(iequals("Content-Length", "content-length"));
    CHECK(iequals("MCP-SESSION-ID", "mcp-session-id"));
    CHECK(iequals("", ""));
    CHECK(iequals("a1-_", "A1-_"));
    CHECK_FALSE(iequals("content-length", "content-lengt"));
    CHECK_FALSE(iequals("host", "hosts"));
    CHECK_FALSE(iequals("host", "hust"));
    CHECK_FALSE(iequals("a", ""));
    // Only letters fold: '@' (0x40) and '`' (0x60) differ by 32 but are not the same character.
    CHECK_FALSE(iequals("@", "`"));
    CHECK_FALSE(iequals("[", "{"));
}

TEST_CASE("has_token finds a token in a comma-separated list in any case")
{
    CHECK(has_token("close", "close"));
    CHECK(has_token("Close", "close"));
    CHECK(has_token("keep-alive, Upgrade", "upgrade"));
    CHECK(has_token("gzip, chunked", "chunked"));
    CHECK(has_token("gzip,CHUNKED", "chunked"));
    CHECK_FALSE(has_token("gzip", "chunked"));
    CHECK_FALSE(has_token("", "close"));
    CHECK_FALSE(has_token("closed", "close"));
    CHECK_FALSE(has_token("xclose", "close"));
    CHECK_FALSE(has_token("close-ish, keep-alive", "close"));
}

TEST_CASE("has_token ignores spaces and tabs around items")
{
    CHECK(has_token("  close  ", "close"));
    CHECK(has_token("\tclose\t", "close"));
    CHECK(has_token("keep-alive ,\t close \t, te", "close"));
    CHECK(has_token("a,\t\tTE", "te"));
}

TEST_CASE("has_token skips empty items")
{
    CHECK(has_token(",close", "close"));
    CHECK(has_token("close,", "close"));
    CHECK(has_token(" , ,close, ,", "close"));
    CHECK_FALSE(has_token(",,,", "close"));
    CHECK_FALSE(has_token(" , \t, ", ""));
    CHECK_FALSE(has_token("a,,b", ""));
}

TEST_CASE("for_each_token yields each non-empty item trimmed, in order")
{
    CHECK(tokens_of("a, b ,c") == std::vector<std::string>{"a", "b", "c"});
    CHECK(tokens_of("\tgzip,\t chunked \t") == std::vector<std::string>{"gzip", "chunked"});
    CHECK(tokens_of(" , a,, ,b, ") == std::vector<std::string>{"a", "b"});
    CHECK(tokens_of("one") == std::vector<std::string>{"one"});
    CHECK(tokens_of("inner space, kept") == std::vector<std::string>{"inner space", "kept"});
    CHECK(tokens_of("").empty());
    CHECK(tokens_of(",").empty());
    CHECK(tokens_of(" \t ").empty());
}

TEST_CASE("is_hop_by_hop names the seven connection-specific fields in any case")
{
    for (const std::string_view name : {"Connection", "Keep-Alive", "Proxy-Connection", "TE", "Trailer",
                                        "Transfer-Encoding", "Upgrade"}) {
        CAPTURE(name);
        CHECK(is_hop_by_hop(name));
        std::string lower{name};
        for (auto& c : lower)
            c = static_cast<char>(c >= 'A' && c <= 'Z' ? c + 32 : c);
        CHECK(is_hop_by_hop(lower));
        std::string upper{name};
        for (auto& c : upper)
            c = static_cast<char>(c >= 'a' && c <= 'z' ? c - 32 : c);
        CHECK(is_hop_by_hop(upper));
    }
}

TEST_CASE("is_hop_by_hop leaves end-to-end fields alone")
{
    for (const std::string_view name : {"Content-Length", "Content-Type", "Host", "Mcp-Session-Id", "te-foo",
                                        "Trailers", "Transfer-Encodings", "connections", "Keep", "Proxy",
                                        "Upgrade-Insecure-Requests", "Proxy-Authorization", "Accept", "t", "",
                                        "Authorization", "Cache-Control"}) {
        CAPTURE(name);
        CHECK_FALSE(is_hop_by_hop(name));
    }
}

TEST_CASE("classify_field recognises the names turnout acts on, in any case, and nothing else")
{
    const std::pair<std::string_view, field_name> known[] = {
        {"Connection", field_name::connection},
        {"KEEP-ALIVE", field_name::keep_alive},
        {"proxy-connection", field_name::proxy_connection},
        {"Te", field_name::te},
        {"trailer", field_name::trailer},
        {"Transfer-Encoding", field_name::transfer_encoding},
        {"upgrade", field_name::upgrade},
        {"HOST", field_name::host},
        {"Expect", field_name::expect},
        {"content-type", field_name::content_type},
        {"Content-Length", field_name::content_length},
        {"MCP-SESSION-ID", field_name::mcp_session_id},
        {"X-Forwarded-For", field_name::x_forwarded_for},
        {"x-forwarded-proto", field_name::x_forwarded_proto},
        {"X-FORWARDED-HOST", field_name::x_forwarded_host},
    };
    for (const auto& [name, id] : known) {
        CAPTURE(name);
        CHECK(classify_field(name) == id);
    }
    // Same lengths as known names, near misses, empty, and longer than any known name.
    for (const std::string_view name : {"", "t", "tf", "hosts", "hast", "Accept", "expecT1", "content-typo",
                                        "Mcp-Session-Ix", "X-Forwarded-Fox", "X-Forwarded-Port", "x-forwarded-",
                                        "Upgrade-Insecure-Requests", "Proxy-Authorization",
                                        "a-header-name-longer-than-thirty-two-characters"}) {
        CAPTURE(name);
        CHECK(classify_field(name) == field_name::other);
    }
    // Case folding applies to letters only: bytes that fold onto '-' or a letter do not match.
    for (const std::string_view name : {"content\rtype", "x-forwarded\rfor", "ho\x13t", "Mcp-Session\x0dId"}) {
        CAPTURE(name);
        CHECK(classify_field(name) == field_name::other);
    }
}

TEST_CASE("starts_with_lowercase compares a prefix in any case")
{
    CHECK(starts_with_lowercase("application/json", "application/json"));
    CHECK(starts_with_lowercase("Application/JSON; charset=utf-8", "application/json"));
    CHECK(starts_with_lowercase("TEXT/EVENT-STREAM", "text/event-stream"));
    CHECK(starts_with_lowercase("anything", ""));
    CHECK_FALSE(starts_with_lowercase("application/jso", "application/json"));
    CHECK_FALSE(starts_with_lowercase("application/jsonx", "text/event-stream"));
    CHECK_FALSE(starts_with_lowercase("", "a"));
    CHECK_FALSE(starts_with_lowercase("application\\json", "application/json"));
}
