// Edge protection: the Origin/Host rule, the rate limiter's buckets and bounds, the stream
// counts, and the gate that applies them in order.

#include "turnout/edge/client_key.hpp"
#include "turnout/edge/gate.hpp"
#include "turnout/edge/origin.hpp"
#include "turnout/edge/origin_policy.hpp"
#include "turnout/edge/rate_table.hpp"

#include <doctest/doctest.h>

#include <cstring>
#include <limits>
#include <memory>
#include <string>
#include <vector>

using namespace turnout;
using http::message_parser;
using http::proxy_error;

namespace {

// Parsed request heads, kept alive for the views into them.
struct heads {
    const http::message_head& request(std::string text)
    {
        auto& p = *parsers.emplace_back(std::make_unique<message_parser>(message_parser::kind::request, message_parser::limits{}));
        texts.push_back(std::move(text));
        p.parse(texts.back().data(), texts.back().size());
        REQUIRE(p.head_complete());
        return p.head();
    }
    std::vector<std::unique_ptr<message_parser>> parsers;
    std::vector<std::string> texts;
};

std::string get(std::string_view host, std::string_view extra = "")
{
    return "GET /mcp HTTP/1.1\r\nHost: " + std::string(host) + "\r\n" + std::string(extra) + "\r\n";
}

std::optional<proxy_error> check(const config::listen_config& l, const http::message_head& h, bool https = false)
{
    return edge::check_origin(l, h, https);
}

} // namespace

TEST_CASE("origins are parsed and normalized: scheme, host, port with defaults")
{
    CHECK(edge::normalize_origin("HTTPS://App.Example.com") == "https://app.example.com");
    CHECK(edge::normalize_origin("https://app.example.com:443") == "https://app.example.com");
    CHECK(edge::normalize_origin("http://127.0.0.1:8080") == "http://127.0.0.1:8080");
    CHECK(edge::normalize_origin("http://[::1]:80") == "http://[::1]");
    CHECK(edge::normalize_origin("null").empty());
    CHECK(edge::normalize_origin("ftp://x").empty());
    CHECK(edge::normalize_origin("https://x/path").empty());
    CHECK(edge::normalize_origin("https://user@x").empty());
    CHECK(edge::normalize_origin("https://x:0").empty());
    CHECK(edge::normalize_origin("https://x:99999").empty());
    CHECK(edge::normalize_origin("https://").empty());
}

TEST_CASE("Origin: absent passes, the request's own origin passes, another site is 403")
{
    heads h;
    config::listen_config l;
    CHECK_FALSE(check(l, h.request(get("127.0.0.1:8080"))));
    CHECK_FALSE(check(l, h.request(get("127.0.0.1:8080", "Origin: http://127.0.0.1:8080\r\n"))));
    CHECK_FALSE(check(l, h.request(get("LocalHost", "Origin: http://localhost:80\r\n"))));
    CHECK_FALSE(check(l, h.request(get("a.example", "Origin: https://a.example\r\n")), true));
    CHECK(check(l, h.request(get("127.0.0.1:8080", "Origin: https://evil.example\r\n"))) == proxy_error::origin_not_allowed);
    // Same host, another port or scheme: another origin.
    CHECK(check(l, h.request(get("127.0.0.1:8080", "Origin: http://127.0.0.1:9090\r\n"))) == proxy_error::origin_not_allowed);
    CHECK(check(l, h.request(get("a.example", "Origin: http://a.example\r\n")), true) == proxy_error::origin_not_allowed);
    CHECK(check(l, h.request(get("a.example", "Origin: null\r\n"))) == proxy_error::origin_not_allowed);
    CHECK(check(l, h.request(get("a.example", "Origin: \r\n"))) == proxy_error::origin_not_allowed);
}

TEST_CASE("Origin: allowed_origins lets listed sites in, \"*\" turns the check off")
{
    heads h;
    config::listen_config l;
    l.allowed_origins = {edge::normalize_origin("https://App.example.com:443"), "http://localhost:3000"};
    CHECK_FALSE(check(l, h.request(get("mcp.internal", "Origin: https://app.example.com\r\n"))));
    CHECK_FALSE(check(l, h.request(get("mcp.internal", "Origin: HTTPS://APP.EXAMPLE.COM:443\r\n"))));
    CHECK_FALSE(check(l, h.request(get("mcp.internal", "Origin: http://localhost:3000\r\n"))));
    CHECK(check(l, h.request(get("mcp.internal", "Origin: http://localhost:3001\r\n"))) == proxy_error::origin_not_allowed);
    CHECK(check(l, h.request(get("mcp.internal", "Origin: https://" + std::string(400, 'a') + "\r\n"))) ==
          proxy_error::origin_not_allowed);
    l.any_origin = true;
    CHECK_FALSE(check(l, h.request(get("mcp.internal", "Origin: https://evil.example\r\n"))));
}

TEST_CASE("Host: allowed_hosts answers 421 to other hosts, by name or name:port")
{
    heads h;
    config::listen_config l;
    CHECK_FALSE(check(l, h.request(get("evil.example.com"))));
    l.allowed_hosts = {"localhost", "127.0.0.1:8080"};
    CHECK_FALSE(check(l, h.request(get("LOCALHOST:1234"))));
    CHECK_FALSE(check(l, h.request(get("127.0.0.1:8080"))));
    CHECK(check(l, h.request(get("127.0.0.1:8081"))) == proxy_error::host_not_allowed);
    CHECK(check(l, h.request(get("evil.example.com"))) == proxy_error::host_not_allowed);
    // The rebinding attack: Host and Origin both the attacker's (its own origin, so only the Host list stops it).
    CHECK(check(l, h.request(get("evil.example.com", "Origin: http://evil.example.com\r\n"))) == proxy_error::host_not_allowed);
    l.any_origin = true; // allowed_origins = ["*"] leaves the Host check on
    CHECK(check(l, h.request(get("evil.example.com"))) == proxy_error::host_not_allowed);
}

TEST_CASE("rate limiter: burst, then refusal with Retry-After, then refill")
{
    edge::rate_limiter r;
    constexpr std::int64_t t0 = 5'000'000;
    // 2 per second, burst 3.
    for (int i = 0; i < 3; ++i)
        CHECK(r.take(42, 2, 1000, 3, t0).allowed);
    const auto refused = r.take(42, 2, 1000, 3, t0);
    CHECK_FALSE(refused.allowed);
    CHECK(refused.retry_after_s == 1);
    CHECK(r.take(7, 2, 1000, 3, t0).allowed); // another client has its own bucket
    CHECK_FALSE(r.take(42, 2, 1000, 3, t0 + 400).allowed);
    CHECK(r.take(42, 2, 1000, 3, t0 + 500).allowed); // one token back after 500 ms
    CHECK_FALSE(r.take(42, 2, 1000, 3, t0 + 500).allowed);
    CHECK(r.take(42, 2, 1000, 3, t0 + 60'000).allowed); // rested: full again, not more
    CHECK(r.take(42, 2, 1000, 3, t0 + 60'000).allowed);
    CHECK(r.take(42, 2, 1000, 3, t0 + 60'000).allowed);
    CHECK_FALSE(r.take(42, 2, 1000, 3, t0 + 60'000).allowed);
}

TEST_CASE("rate limiter: Retry-After covers the wait for one token at slow rates")
{
    edge::rate_limiter r;
    CHECK(r.take(1, 1, 60'000, 1, 0).allowed); // 1 a minute
    const auto refused = r.take(1, 1, 60'000, 1, 1000);
    CHECK_FALSE(refused.allowed);
    CHECK(refused.retry_after_s == 59);
}

TEST_CASE("rate limiter: memory is bounded whatever the number of clients")
{
    edge::rate_limiter r;
    const auto capacity = edge::rate_limiter::shard_count * edge::rate_limiter::slots_per_shard;
    for (std::uint64_t k = 0; k < 4 * capacity; ++k)
        r.take(edge::hash_client_key(std::to_string(k), 99), 1, 1000, 1, 0);
    CHECK(r.tracked() <= capacity);
    CHECK(r.tracked() > capacity / 2);
}

TEST_CASE("rate limiter: an emptied bucket outlives a flood of new keys (they evict the most rested)")
{
    edge::rate_limiter r;
    const auto busy = edge::hash_client_key("busy", 5);
    for (int i = 0; i < 5; ++i)
        CHECK(r.take(busy, 1, 60'000, 5, 0).allowed);
    CHECK_FALSE(r.take(busy, 1, 60'000, 5, 0).allowed);
    for (std::uint64_t k = 0; k < 100000; ++k)
        r.take(edge::hash_client_key(std::to_string(k), 5), 1, 60'000, 5, 0); // each keeps 4 of 5
    CHECK_FALSE(r.take(busy, 1, 60'000, 5, 0).allowed); // still limited: not evicted
}

TEST_CASE("stream limiter: counts per key up to the limit, slots give back on release and destruction")
{
    edge::stream_limiter s;
    {
        auto a = s.acquire(9, 2);
        auto b = s.acquire(9, 2);
        CHECK(a);
        CHECK(b);
        CHECK_FALSE(s.acquire(9, 2));
        CHECK(s.acquire(10, 2)); // another client (released at once)
        CHECK(s.open(9) == 2);
        a.release();
        CHECK(s.open(9) == 1);
        auto c = s.acquire(9, 2);
        CHECK(c);
        edge::stream_slot moved = std::move(c);
        CHECK(s.open(9) == 2);
        moved = {}; // assignment gives the old slot back
        CHECK(s.open(9) == 1);
    }
    CHECK(s.open(9) == 0);
    CHECK(s.clients() == 0); // no entry outlives its last stream
}

TEST_CASE("gate: Host, then Origin, then rate limit, then streams; counted by reason")
{
    heads h;
    edge::shared e{1234};
    config::listen_config l;
    l.allowed_hosts = {"localhost"};
    l.rate_limit = config::rate_limit_config{.requests = 1, .per = std::chrono::seconds(10), .burst = 2};
    l.max_streams_per_client = 1;
    edge::stream_slot slot;

    auto refused = edge::admit(e, l, 0, h.request(get("evil")), false, "10.0.0.1", 0, slot);
    REQUIRE(refused);
    CHECK(refused->error == proxy_error::host_not_allowed);
    refused = edge::admit(e, l, 0, h.request(get("localhost", "Origin: http://evil\r\n")), false, "10.0.0.1", 0, slot);
    REQUIRE(refused);
    CHECK(refused->error == proxy_error::origin_not_allowed);

    const auto stream = get("localhost", "Accept: application/json, text/event-stream\r\n");
    CHECK_FALSE(edge::admit(e, l, 0, h.request(stream), false, "10.0.0.1", 0, slot));
    CHECK(slot);
    edge::stream_slot second;
    refused = edge::admit(e, l, 0, h.request(stream), false, "10.0.0.1", 0, second);
    REQUIRE(refused);
    CHECK(refused->error == proxy_error::too_many_streams);
    refused = edge::admit(e, l, 0, h.request(get("localhost")), false, "10.0.0.1", 0, second);
    REQUIRE(refused);
    CHECK(refused->error == proxy_error::rate_limited);
    CHECK(refused->retry_after_s == 10);
    CHECK_FALSE(edge::admit(e, l, 0, h.request(get("localhost")), false, "10.0.0.2", 0, second));
    CHECK_FALSE(edge::admit(e, l, 1, h.request(get("localhost")), false, "10.0.0.1", 0, second)); // another listener

    CHECK(e.counted.host_rejected == 1);
    CHECK(e.counted.origin_rejected == 1);
    CHECK(e.counted.streams_limited == 1);
    CHECK(e.counted.rate_limited == 1);
}

TEST_CASE("gate: a header key falls back to the address when the header is missing")
{
    heads h;
    edge::shared e{77};
    config::listen_config l;
    l.rate_limit = config::rate_limit_config{.requests = 1, .per = std::chrono::seconds(60), .burst = 1,
                                             .key = {config::client_key_config::kind::header, "X-Api-Key"}};
    edge::stream_slot slot;
    CHECK_FALSE(edge::admit(e, l, 0, h.request(get("h", "X-Api-Key: one\r\n")), false, "10.0.0.1", 0, slot));
    CHECK(edge::admit(e, l, 0, h.request(get("h", "x-api-key: one\r\n")), false, "10.0.0.9", 0, slot));
    CHECK_FALSE(edge::admit(e, l, 0, h.request(get("h", "X-Api-Key: two\r\n")), false, "10.0.0.1", 0, slot));
    CHECK_FALSE(edge::admit(e, l, 0, h.request(get("h")), false, "10.0.0.1", 0, slot));
    CHECK(edge::admit(e, l, 0, h.request(get("h")), false, "10.0.0.1", 0, slot));
}

TEST_CASE("opens_stream: GET accepting text/event-stream only")
{
    heads h;
    CHECK(edge::opens_stream(h.request(get("h", "Accept: text/event-stream\r\n"))));
    CHECK(edge::opens_stream(h.request(get("h", "accept: application/json, TEXT/EVENT-STREAM\r\n"))));
    CHECK_FALSE(edge::opens_stream(h.request(get("h", "Accept: application/json\r\n"))));
    CHECK_FALSE(edge::opens_stream(h.request(get("h"))));
    CHECK_FALSE(edge::opens_stream(
        h.request("POST /mcp HTTP/1.1\r\nHost: h\r\nAccept: text/event-stream\r\nContent-Length: 0\r\n\r\n")));
}

TEST_CASE("rate table: a client limited before an upgrade is still limited after it (seed and buckets carried)")
{
    heads h;
    edge::shared before{1234};
    config::listen_config l;
    l.rate_limit = config::rate_limit_config{.requests = 1, .per = std::chrono::seconds(3600), .burst = 2};
    edge::stream_slot slot;
    const auto request = get("h");
    constexpr std::int64_t t0 = 9'000'000;
    CHECK_FALSE(edge::admit(before, l, 0, h.request(request), false, "10.0.0.1", t0, slot));
    CHECK_FALSE(edge::admit(before, l, 0, h.request(request), false, "10.0.0.1", t0, slot));
    REQUIRE(edge::admit(before, l, 0, h.request(request), false, "10.0.0.1", t0, slot));
    CHECK_FALSE(edge::admit(before, l, 0, h.request(request), false, "10.0.0.2", t0, slot)); // one token left

    std::string why;
    const auto table = edge::decode_rate_table(edge::encode_rate_table(before), why);
    REQUIRE_MESSAGE(table, why);
    CHECK(table->seed == 1234);
    CHECK(table->buckets.size() == 2);
    edge::shared after{999}; // another process: another seed, until it adopts the old one
    CHECK(edge::adopt_rate_table(after, *table, t0 + 10) == 2);
    CHECK(after.seed == 1234);
    const auto refused = edge::admit(after, l, 0, h.request(request), false, "10.0.0.1", t0 + 10, slot);
    REQUIRE(refused);
    CHECK(refused->error == proxy_error::rate_limited);
    CHECK_FALSE(edge::admit(after, l, 0, h.request(request), false, "10.0.0.2", t0 + 10, slot));
    CHECK(edge::admit(after, l, 0, h.request(request), false, "10.0.0.2", t0 + 10, slot));
    CHECK_FALSE(edge::admit(after, l, 0, h.request(request), false, "10.0.0.3", t0 + 10, slot)); // new: full

    // A bucket stamped in the future (another clock) counts from now, not from then.
    edge::rate_table ahead{.seed = 5, .buckets = {{.key = 43, .tokens = 0, .last_ms = t0 + 3'600'000}}};
    edge::shared later{5};
    CHECK(edge::adopt_rate_table(later, ahead, t0) == 1);
    CHECK(later.rates.take(43, 1, 1000, 1, t0 + 1000).allowed);
}

TEST_CASE("rate table: torn, oversized, miscounted, other-format or impossible tables are refused whole")
{
    edge::shared e{7};
    e.rates.take(41, 1, 1000, 5, 0);
    e.rates.take(99, 1, 1000, 5, 0);
    const auto good = edge::encode_rate_table(e);
    REQUIRE(good.size() == 16 + 2 * 24);
    std::string why;
    CHECK(edge::decode_rate_table(good, why));

    const auto refused = [&](std::string bytes) {
        why.clear();
        const bool ok = edge::decode_rate_table(bytes, why).has_value();
        return !ok && !why.empty();
    };
    CHECK(refused(""));
    CHECK(refused(good.substr(0, 15)));
    CHECK(refused(good.substr(0, good.size() - 1)));
    CHECK(refused(good + "x"));
    auto other_format = good;
    other_format[0] = 2;
    CHECK(refused(other_format));
    CHECK(why.find("format 2") != std::string::npos);
    auto huge_count = good;
    const std::uint32_t count = 0xFFFFFFFF;
    std::memcpy(huge_count.data() + 12, &count, 4);
    CHECK(refused(huge_count));
    auto nan = good;
    const double not_a_number = std::numeric_limits<double>::quiet_NaN();
    std::memcpy(nan.data() + 16 + 8, &not_a_number, 8);
    CHECK(refused(nan));
    auto negative = good;
    const double minus = -1;
    std::memcpy(negative.data() + 16 + 8, &minus, 8);
    CHECK(refused(negative));
    auto even_key = good;
    even_key[16] = static_cast<char>(even_key[16] & ~1);
    CHECK(refused(even_key));
    // The largest table a limiter can hold passes. Restored in another order than the buckets
    // took their slots, a few whose probe window is full find no place: they start over full,
    // as an evicted bucket would (failing open, never closed).
    const auto slots = edge::rate_limiter::shard_count * edge::rate_limiter::slots_per_shard;
    edge::shared full{8};
    for (std::uint64_t k = 0; k < 4 * slots; ++k)
        full.rates.take(edge::hash_client_key(std::to_string(k), 8), 1, 1000, 1, 0);
    REQUIRE(full.rates.tracked() == slots);
    const auto table = edge::decode_rate_table(edge::encode_rate_table(full), why);
    REQUIRE(table);
    edge::shared again{9};
    const auto restored = edge::adopt_rate_table(again, *table, 0);
    CHECK(restored == again.rates.tracked());
    CHECK(restored >= slots - slots / 200);
    // A table with room in every window comes back whole.
    edge::shared half{10};
    for (std::uint64_t k = 0; k < slots / 4; ++k)
        half.rates.take(edge::hash_client_key(std::to_string(k), 10), 1, 1000, 1, 0);
    const auto half_table = edge::decode_rate_table(edge::encode_rate_table(half), why);
    REQUIRE(half_table);
    edge::shared half_again{11};
    CHECK(edge::adopt_rate_table(half_again, *half_table, 0) == half.rates.tracked());
}
