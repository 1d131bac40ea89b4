// DNS discovery's pure parts: dns:/srv: names and [proxy] dns settings in the configuration,
// the DNS answer walker and SRV priorities, how a snapshot lists discovered and leaving
// addresses, and operator drains of discovered addresses (operations, reconcile, snapshot).
#include "turnout/config/config.hpp"
#include "turnout/control/dns_answer.hpp"
#include "turnout/control/operations.hpp"
#include "turnout/runtime/snapshot.hpp"

#include <doctest/doctest.h>

#include <string>
#include <vector>

using namespace std::chrono_literals;
using namespace turnout;

namespace {

std::string pool_with(std::string_view backends, std::string_view proxy = "")
{
    return std::string(proxy) + R"(
[[listen]]
address = "127.0.0.1:0"

[[upstream]]
name = "mcp"

  [[upstream.pool]]
  name = "blue"
  weight = 100
  backends = )" + std::string(backends) + "\n";
}

config::config_error error_of(const std::string& text)
{
    try {
        (void)config::parse(text, "conf.toml");
    } catch (const config::config_error& e) {
        return e;
    }
    FAIL("expected a config_error for:\n" << text);
    return {"", 0, 0, ""};
}

// A DNS message: header, one question, then the answers given as raw records.
struct message_builder {
    std::vector<unsigned char> bytes;

    explicit message_builder(unsigned answers)
    {
        bytes = {0x12, 0x34, 0x81, 0x80, 0, 1, 0, static_cast<unsigned char>(answers), 0, 0, 0, 0};
        name("mcp.test");
        bytes.insert(bytes.end(), {0, 1, 0, 1});
    }
    void name(std::string_view n)
    {
        while (!n.empty()) {
            const auto dot = n.find('.');
            const auto label = n.substr(0, dot);
            bytes.push_back(static_cast<unsigned char>(label.size()));
            bytes.insert(bytes.end(), label.begin(), label.end());
            n = dot == std::string_view::npos ? std::string_view{} : n.substr(dot + 1);
        }
        bytes.push_back(0);
    }
    void record(std::uint16_t type, std::uint32_t ttl, const std::vector<unsigned char>& rdata)
    {
        bytes.insert(bytes.end(), {0xc0, 12}); // the question's name, compressed
        bytes.insert(bytes.end(), {static_cast<unsigned char>(type >> 8), static_cast<unsigned char>(type), 0, 1});
        for (int shift = 24; shift >= 0; shift -= 8)
            bytes.push_back(static_cast<unsigned char>(ttl >> shift));
        bytes.push_back(static_cast<unsigned char>(rdata.size() >> 8));
        bytes.push_back(static_cast<unsigned char>(rdata.size()));
        bytes.insert(bytes.end(), rdata.begin(), rdata.end());
    }
};

} // namespace

TEST_CASE("dns: and srv: backends are read as discovery names beside written addresses")
{
    const auto c = config::parse(
        pool_with(R"(["127.0.0.1:3001", "dns:mcp-blue.default.svc:3000", "srv:_mcp._tcp.mcp-blue.default.svc"])"),
        "conf.toml");
    const auto& pool = c.upstreams[0].pools[0];
    REQUIRE(pool.backends.size() == 1);
    REQUIRE(pool.discovered.size() == 2);
    CHECK(pool.discovered[0].type == config::discovery_name::kind::address);
    CHECK(pool.discovered[0].name == "mcp-blue.default.svc");
    CHECK(pool.discovered[0].port == 3000);
    CHECK(pool.discovered[1].type == config::discovery_name::kind::service);
    CHECK(pool.discovered[1].name == "_mcp._tcp.mcp-blue.default.svc");
    CHECK(c.proxy.dns_min_interval == 1s);
    CHECK(c.proxy.dns_max_interval == 30s);
    CHECK_FALSE(c.proxy.resolver);
}

TEST_CASE("bad discovery names are config errors at their position")
{
    const std::pair<std::string_view, std::string_view> cases[] = {
        {R"(["dns:mcp.test"])", "expected dns:NAME:PORT"},
        {R"(["dns:mcp.test:0"])", "expected dns:NAME:PORT"},
        {R"(["dns:mcp.test:70000"])", "expected dns:NAME:PORT"},
        {R"(["dns:bad name:80"])", "expected dns:NAME:PORT"},
        {R"(["dns:127.0.0.1:80"])", "names an IP address"},
        {R"(["srv:mcp.test"])", "expected srv:_service._proto.NAME"},
        {R"(["srv:_mcp._udp.mcp.test"])", "must be _tcp"},
        {R"(["dns:a.test:80", "dns:a.test:80"])", "duplicate backend"},
    };
    for (const auto& [backends, message] : cases) {
        CAPTURE(backends);
        const auto e = error_of(pool_with(backends));
        CHECK(e.line() == 11); // the backends line of pool_with's document
        CHECK(e.column() > 1);
        CHECK(std::string(e.what()).find(message) != std::string::npos);
    }
}

TEST_CASE("[proxy] dns_min_interval, dns_max_interval and resolver are read and checked")
{
    const auto c = config::parse(
        pool_with(R"(["dns:a.test:80"])", "[proxy]\ndns_min_interval = \"2s\"\ndns_max_interval = \"10s\"\n"
                                          "resolver = \"127.0.0.1:5353\"\n"),
        "conf.toml");
    CHECK(c.proxy.dns_min_interval == 2s);
    CHECK(c.proxy.dns_max_interval == 10s);
    REQUIRE(c.proxy.resolver);
    CHECK(c.proxy.resolver->port == 5353);

    // A minimum above the default ceiling raises it rather than contradicting it.
    CHECK(config::parse(pool_with("[]", "[proxy]\ndns_min_interval = \"60s\"\n"), "c.toml").proxy.dns_max_interval ==
          60s);

    const auto inverted = error_of(pool_with("[]", "[proxy]\ndns_min_interval = \"5s\"\ndns_max_interval = \"1s\"\n"));
    CHECK(inverted.line() == 3);
    CHECK(std::string(inverted.what()).find("must not be shorter than dns_min_interval") != std::string::npos);
    CHECK(std::string(error_of(pool_with("[]", "[proxy]\ndns_min_interval = \"10ms\"\n")).what()).find("dns_min_interval") !=
          std::string::npos);
    for (const auto* resolver : {"dns.example:53", "127.0.0.1", "127.0.0.1:0"}) {
        CAPTURE(resolver);
        const auto e = error_of(pool_with("[]", std::string("[proxy]\nresolver = \"") + resolver + "\"\n"));
        CHECK(e.line() == 2);
        CHECK(std::string(e.what()).find("expected the DNS server as IP:PORT") != std::string::npos);
    }
}

TEST_CASE("the DNS answer walker takes A, AAAA and SRV records with their TTLs and skips others")
{
    message_builder a(3);
    a.record(5, 600, {3, 'w', 'w', 'w', 0xc0, 12}); // a CNAME on the way: skipped
    a.record(1, 30, {10, 0, 0, 7});
    a.record(1, 5, {10, 0, 0, 8});
    const auto records = control::parse_dns_answer(a.bytes.data(), a.bytes.size(), control::dns_type::a);
    REQUIRE(records);
    REQUIRE(records->size() == 2);
    CHECK((*records)[0].address.to_string() == "10.0.0.7");
    CHECK((*records)[0].ttl == 30);
    CHECK((*records)[1].ttl == 5);

    message_builder aaaa(1);
    std::vector<unsigned char> v6(16, 0);
    v6[0] = 0xfd;
    v6[15] = 7;
    aaaa.record(28, 60, v6);
    const auto six = control::parse_dns_answer(aaaa.bytes.data(), aaaa.bytes.size(), control::dns_type::aaaa);
    REQUIRE(six);
    REQUIRE(six->size() == 1);
    CHECK((*six)[0].address.to_string() == "fd00::7");

    message_builder srv(1);
    std::vector<unsigned char> rdata{0, 10, 0, 5, 0x0b, 0xb8}; // priority 10, weight 5, port 3000
    rdata.insert(rdata.end(), {2, 'b', '1', 0xc0, 12});        // b1.mcp.test
    srv.record(33, 15, rdata);
    const auto services = control::parse_dns_answer(srv.bytes.data(), srv.bytes.size(), control::dns_type::srv);
    REQUIRE(services);
    REQUIRE(services->size() == 1);
    CHECK((*services)[0].priority == 10);
    CHECK((*services)[0].weight == 5);
    CHECK((*services)[0].port == 3000);
    CHECK((*services)[0].target == "b1.mcp.test");
    CHECK((*services)[0].ttl == 15);
}

TEST_CASE("a malformed DNS answer is refused, never read past its end")
{
    message_builder a(1);
    a.record(1, 30, {10, 0, 0, 7});
    for (std::size_t cut = 0; cut < a.bytes.size(); ++cut) {
        CAPTURE(cut);
        CHECK_FALSE(control::parse_dns_answer(a.bytes.data(), cut, control::dns_type::a));
    }
    message_builder short_a(1);
    short_a.record(1, 30, {10, 0, 0}); // an A record of 3 bytes
    CHECK_FALSE(control::parse_dns_answer(short_a.bytes.data(), short_a.bytes.size(), control::dns_type::a));
    message_builder looping(1);
    looping.bytes.insert(looping.bytes.end(), {0xc0, static_cast<unsigned char>(looping.bytes.size())}); // points at itself
    looping.bytes.insert(looping.bytes.end(), {0, 1, 0, 1, 0, 0, 0, 1, 0, 4, 1, 2, 3, 4});
    CHECK_FALSE(control::parse_dns_answer(looping.bytes.data(), looping.bytes.size(), control::dns_type::a));
}

TEST_CASE("a snapshot lists a name's addresses after the written ones, and leaving ones drained")
{
    auto c = std::make_shared<const config::configuration>(
        config::parse(pool_with(R"(["127.0.0.1:3001", "dns:mcp.test:3000"])"), "conf.toml"));
    upstream::backend_registry registry;
    const auto resolve = [](const config::host_port& a, boost::system::error_code&) {
        return boost::asio::ip::tcp::endpoint(boost::asio::ip::make_address(a.host), a.port);
    };
    const auto ep = [](const char* ip) { return boost::asio::ip::tcp::endpoint(boost::asio::ip::make_address(ip), 3000); };
    runtime::discovered_sets found;
    found["dns:mcp.test:3000"].current = {{"10.0.0.7:3000", ep("10.0.0.7")}, {"127.0.0.1:3001", ep("127.0.0.1")}};
    found["dns:mcp.test:3000"].leaving = {{{"10.0.0.8:3000", ep("10.0.0.8")}, 5000}};
    const auto state = runtime::initial_state(*c);

    const auto before = runtime::build_snapshot(c, state, 1000, registry, resolve, &found);
    const auto& pool = before->upstreams[0].pools[0];
    REQUIRE(pool.backends.size() == 3); // 127.0.0.1:3001 once, though written and found
    CHECK(pool.backends[0]->address() == "127.0.0.1:3001");
    CHECK(pool.backends[1]->address() == "10.0.0.7:3000");
    CHECK(pool.backends[2]->address() == "10.0.0.8:3000");
    REQUIRE(pool.drained_backends.size() == 1);
    CHECK(pool.drained_backends[0].address == "10.0.0.8:3000");
    CHECK_FALSE(pool.drained_backends[0].expired);
    runtime::mark_in_service(*before, registry);
    CHECK(registry.find("10.0.0.8:3000")->draining());
    CHECK_FALSE(registry.find("10.0.0.8:3000")->retired());
    CHECK_FALSE(registry.find("10.0.0.7:3000")->draining());

    // Without the sets (not resolved yet, or nothing found) only the written backend is there.
    const auto none = runtime::build_snapshot(c, state, 1000, registry, resolve, nullptr);
    CHECK(none->upstreams[0].pools[0].backends.size() == 1);
}

namespace {

control::dns_record srv(std::uint16_t priority, std::string target, std::uint16_t port = 3000)
{
    control::dns_record r;
    r.type = control::dns_type::srv;
    r.priority = priority;
    r.weight = 10;
    r.port = port;
    r.target = std::move(target);
    return r;
}

std::vector<std::string> targets(const std::vector<control::dns_record>& records)
{
    std::vector<std::string> out;
    for (const auto& r : records)
        out.push_back(r.target);
    return out;
}

boost::asio::ip::tcp::endpoint literal(const config::host_port& a, boost::system::error_code&)
{
    return {boost::asio::ip::make_address(a.host), a.port};
}

boost::asio::ip::tcp::endpoint ep(const char* ip)
{
    return {boost::asio::ip::make_address(ip), 3000};
}

} // namespace

TEST_CASE("SRV records are used by priority: lowest value first, the others as fallbacks in order")
{
    const auto classes =
        control::srv_by_priority({srv(20, "c.test"), srv(10, "a.test"), srv(30, "."), srv(10, "b.test"), srv(20, "d.test")});
    REQUIRE(classes.size() == 2); // priority 30 names only "." (not offered): no class
    CHECK(targets(classes[0]) == std::vector<std::string>{"a.test", "b.test"});
    CHECK(targets(classes[1]) == std::vector<std::string>{"c.test", "d.test"});
    CHECK(control::srv_by_priority({}).empty());
    CHECK(control::srv_by_priority({srv(0, ".")}).empty());
}

namespace {

/// mcp/blue lists 127.0.0.1:3001 and dns:mcp.test:3000, which found 10.0.0.7 and 10.0.0.8.
struct discovered_fixture {
    std::shared_ptr<const config::configuration> config = std::make_shared<const config::configuration>(
        config::parse(pool_with(R"(["127.0.0.1:3001", "dns:mcp.test:3000"])", "[proxy]\ndrain_timeout = \"30s\"\n"),
                      "conf.toml"));
    upstream::backend_registry registry;
    runtime::discovered_sets found = [] {
        runtime::discovered_sets f;
        f["dns:mcp.test:3000"].current = {{"10.0.0.7:3000", ep("10.0.0.7")}, {"10.0.0.8:3000", ep("10.0.0.8")}};
        return f;
    }();
    runtime::runtime_state state = runtime::initial_state(*config);

    std::shared_ptr<runtime::snapshot> build(std::int64_t now_ms)
    {
        auto s = runtime::build_snapshot(config, state, now_ms, registry, literal, &found);
        runtime::mark_in_service(*s, registry);
        return s;
    }
};

} // namespace

TEST_CASE("an operator drains and undrains one discovered address; an unknown one is still refused")
{
    discovered_fixture f;
    const auto live = f.build(0);
    const control::operations ops(f.state, *live, *f.config);
    auto d = ops.drain_backend("mcp", "blue", "10.0.0.8:3000", std::nullopt, 1'000'000);
    REQUIRE(d.ok());
    CHECK(d.next.find("mcp")->find("blue")->drained_backends ==
          std::vector<runtime::backend_drain>{{"10.0.0.8:3000", 1'030'000}});
    CHECK(ops.drain_backend("mcp", "blue", "10.0.0.9:3000", std::nullopt, 0).status == 404);

    f.state = d.next;
    const auto drained = f.build(1'000'000);
    CHECK(f.registry.find("10.0.0.8:3000")->draining());
    CHECK_FALSE(f.registry.find("10.0.0.8:3000")->retired());
    CHECK_FALSE(f.registry.find("10.0.0.7:3000")->draining());

    // DNS still lists it: it stays drained at every rebuild, and retires at its deadline.
    f.build(1'030'001);
    CHECK(f.registry.find("10.0.0.8:3000")->retired());

    // Undrain works for it, and also once DNS no longer lists it (the drain is then stale).
    f.found["dns:mcp.test:3000"].current.pop_back();
    const auto gone = f.build(1'030'001);
    const control::operations later(f.state, *gone, *f.config);
    CHECK(later.drain_backend("mcp", "blue", "10.0.0.8:3000", std::nullopt, 0).status == 404);
    d = later.undrain_backend("mcp", "blue", "10.0.0.8:3000");
    REQUIRE(d.ok());
    CHECK(d.next.find("mcp")->find("blue")->drained_backends.empty());
}

TEST_CASE("a drained discovered address that leaves its name drains until the earlier deadline")
{
    discovered_fixture f;
    f.state.find("mcp")->find("blue")->drained_backends = {{"10.0.0.8:3000", 5'000}};
    auto& set = f.found["dns:mcp.test:3000"];
    set.current.pop_back();
    set.leaving = {{{"10.0.0.8:3000", ep("10.0.0.8")}, 90'000}};
    auto s = f.build(1'000);
    const auto& pool = s->upstreams[0].pools[0];
    REQUIRE(pool.drained_backends.size() == 1); // one drain, not the name's and the operator's
    CHECK(pool.drained_backends[0].deadline_ms == 5'000);
    // The operator's drain is over: leaving the name does not bring its sessions back.
    s = f.build(6'000);
    CHECK(s->upstreams[0].pools[0].drained_backends[0].expired);
    CHECK(f.registry.find("10.0.0.8:3000")->retired());
}

TEST_CASE("reconcile keeps the drains of a pool with DNS names: which addresses it lists is DNS's to say")
{
    discovered_fixture f;
    auto saved = f.state;
    saved.find("mcp")->find("blue")->drained_backends = {{"10.0.0.8:3000", 5'000}, {"127.0.0.1:3001", 6'000}};
    const auto kept = runtime::reconcile(saved, *f.config);
    CHECK(kept.find("mcp")->find("blue")->drained_backends == saved.find("mcp")->find("blue")->drained_backends);

    // Without names, a drain of an address the pool does not list goes, as before.
    const auto plain = config::parse(pool_with(R"(["127.0.0.1:3001"])"), "conf.toml");
    CHECK(runtime::reconcile(saved, plain).find("mcp")->find("blue")->drained_backends ==
          std::vector<runtime::backend_drain>{{"127.0.0.1:3001", 6'000}});
}
