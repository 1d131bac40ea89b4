// Both processes of an upgrade know every session while both serve: the session relay hands
// each change to every peer but the one it came from, and a lookup that misses reads what a
// peer sent before giving up (the race of a session pinned by the other process an instant
// before its client's next request reaches this one).

#include "turnout/session/session_table.hpp"
#include "turnout/upgrade/channel.hpp"
#include "turnout/upgrade/peer_reader.hpp"
#include "turnout/upgrade/session_relay.hpp"
#include "turnout/upstream/backend_registry.hpp"

#include <doctest/doctest.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/address.hpp>

#include <chrono>
#include <memory>
#include <optional>

#include <sys/socket.h>

using namespace turnout::upgrade;
using turnout::session::session_key;

namespace {

using namespace std::chrono_literals;

deadline soon(std::chrono::milliseconds ms = 2000ms)
{
    return std::chrono::steady_clock::now() + ms;
}

/// This process's end of a channel to another process, and that process's end.
struct link {
    link()
    {
        int ends[2];
        REQUIRE(::socketpair(AF_UNIX, SOCK_STREAM, 0, ends) == 0);
        here = std::make_unique<channel>(ends[0]);
        there = std::make_unique<channel>(ends[1]);
    }
    std::unique_ptr<channel> here;
    std::unique_ptr<channel> there;

    /// The next message the other process receives, or nullopt after a short wait.
    std::optional<message> next_there(std::chrono::milliseconds wait = 1000ms)
    {
        message m;
        if (!there->receive(m, soon(wait)).empty())
            return std::nullopt;
        return m;
    }
};

/// A process with two peers (a predecessor and a successor), each linked through the relay.
struct process {
    boost::asio::io_context io;
    turnout::upstream::backend_registry registry;
    std::shared_ptr<turnout::upstream::backend> backend =
        registry.obtain("127.0.0.1:3001", {boost::asio::ip::make_address("127.0.0.1"), 3001});
    turnout::session::session_table table{7};
    session_relay relay;
    link a, b;
    session_forwarder to_a{*a.here, registry}, to_b{*b.here, registry};
    peer_reader from_a{io, *a.here, [this](const message& m) { apply(m, &to_a); }};
    peer_reader from_b{io, *b.here, [this](const message& m) { apply(m, &to_b); }};

    process()
    {
        REQUIRE(relay.add(&to_a, &from_a));
        REQUIRE(relay.add(&to_b, &from_b));
        table.observe(&relay);
    }
    ~process() { table.observe(nullptr); }

    void apply(const message& m, const session_forwarder* peer)
    {
        session_relay::from_peer(peer, [&] {
            if (const auto* l = std::get_if<learned>(&m))
                table.insert(l->key, registry.find(l->owner)->id(), 1);
            else if (const auto* f = std::get_if<forgot>(&m))
                table.erase(f->key);
        });
    }
};

} // namespace

TEST_CASE("relay: a session learned here goes to every peer")
{
    process p;
    const auto key = p.table.key_of("here");
    p.table.insert(key, p.backend->id(), 1);
    for (auto* l : {&p.a, &p.b}) {
        const auto m = l->next_there();
        REQUIRE(m);
        CHECK(std::get<learned>(*m).key == key);
        CHECK(std::get<learned>(*m).owner == "127.0.0.1:3001");
    }
    p.table.erase(key);
    CHECK(std::get<forgot>(*p.a.next_there()).key == key);
    CHECK(std::get<forgot>(*p.b.next_there()).key == key);
}

TEST_CASE("relay: a change applied from a peer goes to the other peers, never back to it")
{
    process p;
    const auto key = p.table.key_of("from a");
    p.apply(learned{key, "127.0.0.1:3001"}, &p.to_a);
    CHECK(p.table.find(key, 1) == p.backend->id());
    CHECK(std::get<learned>(*p.b.next_there()).key == key);
    CHECK_FALSE(p.a.next_there(100ms)); // no echo: it would come back as a learn, forever

    p.apply(forgot{key}, &p.to_b);
    CHECK(std::get<forgot>(*p.a.next_there()).key == key);
    CHECK_FALSE(p.b.next_there(100ms));
}

TEST_CASE("relay: a lookup that misses reads what a peer sent first, without the event loop")
{
    process p;
    const auto key = p.table.key_of("pinned over there an instant ago");
    // The other process pinned the session and told us before its client saw the session id;
    // nothing here has read it yet (the io_context never runs in this test).
    REQUIRE(p.a.there->send(learned{key, "127.0.0.1:3001"}, soon()).empty());
    CHECK(p.table.find(key, 1) == p.backend->id());
    CHECK(std::get<learned>(*p.b.next_there()).key == key); // passed on to the other peer
    CHECK_FALSE(p.a.next_there(100ms));

    // A key nobody knows stays unknown, and a peer that left is not read any more.
    CHECK_FALSE(p.table.find(p.table.key_of("nobody's"), 1));
    p.relay.remove(&p.from_a);
    p.from_a.close();
    const auto late = p.table.key_of("late");
    REQUIRE(p.a.there->send(learned{late, "127.0.0.1:3001"}, soon()).empty());
    CHECK_FALSE(p.table.find(late, 1));
    p.table.insert(p.table.key_of("after"), p.backend->id(), 1);
    CHECK_FALSE(p.a.next_there(100ms)); // only b hears of it
    CHECK(std::get<learned>(*p.b.next_there()).key == p.table.key_of("after"));
}

TEST_CASE("relay: waiting for ready applies the session changes that come before it")
{
    process p;
    bool ready_seen = false;
    peer_reader reader(p.io, *p.a.here, [&](const message& m) {
        if (std::holds_alternative<ready>(m))
            ready_seen = true;
        else
            p.apply(m, &p.to_a);
    });
    const auto key = p.table.key_of("before ready");
    REQUIRE(p.a.there->send(learned{key, "127.0.0.1:3001"}, soon()).empty());
    REQUIRE(p.a.there->send(ready{42}, soon()).empty());
    CHECK(reader.wait([&] { return ready_seen; }, soon()).empty());
    CHECK(p.table.find(key, 1) == p.backend->id());
    ready_seen = false;
    CHECK(reader.wait([&] { return ready_seen; }, soon(50ms)) == "timed out waiting for the other process");
    p.a.there.reset(); // the other process exits
    CHECK(reader.wait([&] { return ready_seen; }, soon()) == "the other process closed the channel");
}
