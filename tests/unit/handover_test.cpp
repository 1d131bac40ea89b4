// The upgrade hand-over protocol: every message survives encoding, bytes may arrive in any
// pieces, and torn, oversized or foreign frames are clear errors, never a crash. Then the
// socket itself: a listening socket passed across, and session changes forwarded in order.

#include "turnout/session/session_store.hpp"
#include "turnout/upgrade/channel.hpp"
#include "turnout/upgrade/handover.hpp"

#include <doctest/doctest.h>

#include <boost/asio/ip/tcp.hpp>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <string>
#include <vector>

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

using namespace turnout::upgrade;
using turnout::session::session_key;

namespace {

std::vector<message> samples()
{
    return {
        hello{protocol_version, 4242},
        listener{listener_kind::proxy, "127.0.0.1:0", "127.0.0.1:38211"},
        listener{listener_kind::status, "[::1]:9901", "[::1]:9901"},
        listeners_done{3},
        sessions{std::string("TRNSESS1\0\x01\x02", 11)},
        sessions{},
        ready{4243},
        learned{{0x0123456789abcdefULL, 0xfedcba9876543210ULL}, "127.0.0.1:3001"},
        forgot{{1, 2}},
        touched{{{3, 4}, {0xffffffffffffffffULL, 5}}},
        touched{},
        rate_limits{std::string("\x01\0\0\0", 4)},
        rate_limits{},
    };
}

std::vector<message> decode_all(const std::string& bytes, std::size_t piece)
{
    decoder d;
    std::vector<message> out;
    for (std::size_t i = 0; i < bytes.size(); i += piece) {
        d.feed(std::string_view(bytes).substr(i, piece));
        message m;
        decoder::status s;
        while ((s = d.next(m)) == decoder::status::message)
            out.push_back(m);
        REQUIRE(s == decoder::status::need_more);
    }
    CHECK(d.pending() == 0);
    return out;
}

bool same(const message& a, const message& b)
{
    return encode(a) == encode(b);
}

std::string frame(std::uint32_t length, std::uint8_t type, std::string_view payload)
{
    std::string out(4, '\0');
    std::memcpy(out.data(), &length, 4);
    out += static_cast<char>(type);
    out += payload;
    return out;
}

decoder::status decode_one(const std::string& bytes, std::string* error = nullptr)
{
    decoder d;
    d.feed(bytes);
    message m;
    const auto s = d.next(m);
    if (error)
        *error = d.error();
    return s;
}

} // namespace

TEST_CASE("handover: every message round-trips, whole or byte by byte")
{
    std::string stream;
    for (const auto& m : samples())
        stream += encode(m);
    for (const std::size_t piece : {stream.size(), std::size_t{1}, std::size_t{3}, std::size_t{7}}) {
        const auto got = decode_all(stream, piece);
        REQUIRE(got.size() == samples().size());
        for (std::size_t i = 0; i < got.size(); ++i) {
            CHECK(same(got[i], samples()[i]));
            CHECK(got[i].index() == samples()[i].index());
        }
    }
    const auto l = std::get<learned>(decode_all(encode(samples()[7]), 64).at(0));
    CHECK(l.key == session_key{0x0123456789abcdefULL, 0xfedcba9876543210ULL});
    CHECK(l.owner == "127.0.0.1:3001");
    CHECK(std::get<hello>(decode_all(encode(samples()[0]), 64).at(0)).pid == 4242);
}

TEST_CASE("handover: a torn frame waits for more and is reported at end of stream")
{
    const auto bytes = encode(learned{{5, 6}, "127.0.0.1:3001"});
    for (std::size_t cut = 0; cut < bytes.size(); ++cut) {
        decoder d;
        d.feed(std::string_view(bytes).substr(0, cut));
        message m;
        CHECK(d.next(m) == decoder::status::need_more);
        CHECK(d.pending() == cut); // what a reader sees when the peer closes here
    }
}

TEST_CASE("handover: malformed frames are clear errors and the decoder stays failed")
{
    std::string error;
    // A payload shorter than its type needs (a hello is 8 bytes).
    CHECK(decode_one(frame(5, 1, std::string("\x01\0\0\0", 4)), &error) == decoder::status::error);
    CHECK(error.find("malformed") != std::string::npos);
    // Longer than its type allows: trailing bytes.
    CHECK(decode_one(frame(1 + 9, 5, std::string(9, 'x'))) == decoder::status::error);
    // A text field whose length runs past the frame.
    CHECK(decode_one(frame(1 + 16 + 2 + 3, 6,
                           std::string(16, 'k') + std::string("\xff\x00"
                                                              "abc",
                                                              5))) == decoder::status::error);
    // A listener of an unknown kind.
    CHECK(decode_one(frame(1 + 1 + 2 + 2, 2, std::string("\x07\0\0\0\0", 5))) == decoder::status::error);
    // Unknown type, empty frame, absurd length.
    CHECK(decode_one(frame(1, 99, "")) == decoder::status::error);
    CHECK(decode_one(frame(0, 1, "")) == decoder::status::error);
    CHECK(decode_one(frame(max_frame_bytes + 1, 4, ""), &error) == decoder::status::error);
    CHECK(error.find("damaged") != std::string::npos);

    decoder d;
    d.feed(frame(1, 99, ""));
    d.feed(encode(ready{1}));
    message m;
    CHECK(d.next(m) == decoder::status::error);
    CHECK(d.next(m) == decoder::status::error); // no resynchronising on garbage
}

TEST_CASE("handover: random garbage never crashes the decoder")
{
    std::uint64_t x = 0x9E3779B97F4A7C15ULL;
    for (int round = 0; round < 2000; ++round) {
        std::string bytes;
        const auto n = (x >> 7) % 64;
        for (std::uint64_t i = 0; i < n; ++i) {
            x ^= x << 13, x ^= x >> 7, x ^= x << 17;
            bytes += static_cast<char>(x & 0xFF);
        }
        // Small lengths, so that payload checks (not only the length check) get exercised.
        if (bytes.size() >= 5)
            bytes[1] = bytes[2] = bytes[3] = 0;
        decoder d;
        d.feed(bytes);
        message m;
        int guard = 0;
        while (d.next(m) == decoder::status::message && ++guard < 100) {
        }
    }
}

TEST_CASE("handover: the session table travels in session_store's format, seed included")
{
    turnout::upstream::backend_registry registry;
    const auto b = registry.obtain("127.0.0.1:3001", {boost::asio::ip::make_address("127.0.0.1"), 3001});
    turnout::session::session_table table(0xC0FFEE);
    const auto key = table.key_of("session-a");
    table.insert(key, b->id(), 100);
    const auto bytes = encode(sessions{turnout::session::encode_table(table, registry, 110)});
    const auto got = decode_all(bytes, 5);
    REQUIRE(got.size() == 1);
    const auto saved = turnout::session::decode_table(std::get<sessions>(got[0]).table, "test");
    CHECK(saved.seed == 0xC0FFEE);
    REQUIRE(saved.sessions.size() == 1);
    CHECK(saved.sessions[0].key == key);
    CHECK(saved.sessions[0].owner == "127.0.0.1:3001");
    CHECK(saved.sessions[0].age_s >= 10);
    CHECK_THROWS_AS(turnout::session::decode_table(std::get<sessions>(got[0]).table.substr(0, 30), "test"),
                    std::runtime_error);
}

TEST_CASE("handover: a listening socket passes over the channel and deltas follow the snapshot")
{
    int ends[2];
    REQUIRE(::socketpair(AF_UNIX, SOCK_STREAM, 0, ends) == 0);
    channel old_side(ends[0]);
    channel new_side(ends[1]);
    const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(5);

    // A real listening socket: the one received must be the same kernel socket (same port).
    const int listening = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::bind(listening, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0);
    REQUIRE(::listen(listening, 8) == 0);
    socklen_t length = sizeof address;
    ::getsockname(listening, reinterpret_cast<sockaddr*>(&address), &length);

    CHECK(old_side.send(listener{listener_kind::proxy, "127.0.0.1:0", "x"}, until, listening).empty());
    ::close(listening);
    message m;
    CHECK(new_side.receive(m, until).empty());
    CHECK(std::get<listener>(m).address == "127.0.0.1:0");
    const int received = new_side.take_fd();
    REQUIRE(received >= 0);
    CHECK(new_side.take_fd() == -1);
    sockaddr_in got{};
    length = sizeof got;
    ::getsockname(received, reinterpret_cast<sockaddr*>(&got), &length);
    CHECK(got.sin_port == address.sin_port);
    int accepting = 0;
    length = sizeof accepting;
    ::getsockopt(received, SOL_SOCKET, SO_ACCEPTCONN, &accepting, &length);
    CHECK(accepting == 1);
    ::close(received);

    // A session learned while the snapshot is being made still arrives after it.
    turnout::upstream::backend_registry registry;
    const auto b = registry.obtain("127.0.0.1:3001", {boost::asio::ip::make_address("127.0.0.1"), 3001});
    turnout::session::session_table table(7);
    session_forwarder forwarder(old_side, registry);
    table.observe(&forwarder);
    const auto early = table.key_of("early");
    table.insert(early, b->id(), 1);
    CHECK(forwarder
              .send_first(
                  [&] { return encode(sessions{turnout::session::encode_table(table, registry, 1)}); }, until)
              .empty());
    const auto late = table.key_of("late");
    table.insert(late, b->id(), 2);
    table.erase(early);
    table.observe(nullptr);
    table.insert(table.key_of("unobserved"), b->id(), 3);
    forwarder.flush();

    std::vector<message> got_messages;
    while (got_messages.size() < 4 &&
           new_side.receive(m, std::chrono::steady_clock::now() + std::chrono::seconds(2)).empty())
        got_messages.push_back(m);
    REQUIRE(got_messages.size() == 4);
    CHECK(std::holds_alternative<learned>(got_messages[0])); // early, before the snapshot was made
    CHECK(std::holds_alternative<sessions>(got_messages[1]));
    CHECK(std::get<learned>(got_messages[2]).key == late);
    CHECK(std::get<learned>(got_messages[2]).owner == "127.0.0.1:3001");
    CHECK(std::get<forgot>(got_messages[3]).key == early);
    CHECK(new_side.receive(m, std::chrono::steady_clock::now() + std::chrono::milliseconds(100)) ==
          "timed out waiting for the other process");
    CHECK(forwarder.forwarded() == 3);
}

TEST_CASE("handover: touched carries its keys; torn, oversized or miscounted batches are errors")
{
    touched t;
    for (std::uint64_t i = 1; i <= max_touched_keys; ++i)
        t.keys.push_back({i, ~i});
    const auto bytes = encode(t);
    CHECK(bytes.size() == 5 + 4 + 16 * max_touched_keys);
    const auto got = decode_all(bytes, 1000);
    REQUIRE(got.size() == 1);
    CHECK(std::get<touched>(got[0]).keys == t.keys);
    CHECK(name_of(got[0]) == "touched");

    // Torn: every cut waits for more.
    for (std::size_t cut = 0; cut < 64; ++cut) {
        decoder d;
        d.feed(std::string_view(bytes).substr(0, cut));
        message m;
        CHECK(d.next(m) == decoder::status::need_more);
    }
    // One key more than a batch may hold: refused, whatever the frame length says.
    t.keys.push_back({7, 7});
    std::string error;
    CHECK(decode_one(encode(t), &error) == decoder::status::error);
    CHECK(error.find("malformed") != std::string::npos);
    // A count that does not match the keys that follow (more, fewer, a partial key).
    auto count_frame = [](std::uint32_t count, std::size_t key_bytes) {
        std::string payload(4, '\0');
        std::memcpy(payload.data(), &count, 4);
        payload += std::string(key_bytes, 'k');
        return frame(static_cast<std::uint32_t>(1 + payload.size()), 8, payload);
    };
    CHECK(decode_one(count_frame(2, 16)) == decoder::status::error);
    CHECK(decode_one(count_frame(1, 32)) == decoder::status::error);
    CHECK(decode_one(count_frame(1, 15)) == decoder::status::error);
    CHECK(decode_one(count_frame(0xFFFFFFFFu, 16)) == decoder::status::error);
    CHECK(decode_one(frame(1 + 3, 8, "abc")) == decoder::status::error);
    CHECK(decode_one(count_frame(1, 16)) == decoder::status::message);
    CHECK(decode_one(count_frame(0, 0)) == decoder::status::message);
}

TEST_CASE("handover: the successor says hello with the version its predecessor announced, capped at its own")
{
    CHECK(successor_version(nullptr, 77) == 1); // a predecessor of version 1 names none
    CHECK(successor_version("", 77) == 1);
    CHECK(successor_version("1:77", 77) == 1);
    CHECK(successor_version("2:77", 77) == 2);
    CHECK(successor_version("3:77", 77) == 3); // learned/forgot both ways
    CHECK(successor_version("4:77", 77) == 4); // rate_limits
    CHECK(successor_version(announced_version(77).c_str(), 77) == protocol_version);
    CHECK(successor_version("99:77", 77) == protocol_version);
    CHECK(successor_version("0:77", 77) == 0);
    // Named by another process: inherited through a version-1 process, which passes on its
    // own environment whole. Its parent speaks version 1 only.
    CHECK(successor_version("2:76", 77) == 1);
    // Malformed.
    for (const char* bad : {"2", "2:", ":77", "2x:77", "2:77x", "2:-77", "99999999999999999999:77"})
        CHECK(successor_version(bad, 77) == 1);
    CHECK(speaks(1));
    CHECK(speaks(protocol_version));
    CHECK_FALSE(speaks(0));
    CHECK_FALSE(speaks(protocol_version + 1));
}

TEST_CASE("handover: the forwarder batches touched keys and holds back while the successor lags")
{
    int ends[2];
    REQUIRE(::socketpair(AF_UNIX, SOCK_STREAM, 0, ends) == 0);
    channel old_side(ends[0]);
    channel new_side(ends[1]);
    turnout::upstream::backend_registry registry;
    session_forwarder forwarder(old_side, registry);

    std::vector<session_key> keys;
    for (std::uint64_t i = 1; i <= max_touched_keys * 2 + 1; ++i)
        keys.push_back({i, i});
    CHECK(forwarder.touched(keys));
    std::vector<session_key> received;
    std::vector<std::size_t> batches;
    message m;
    while (received.size() < keys.size()) {
        forwarder.flush();
        if (!new_side.receive(m, std::chrono::steady_clock::now() + std::chrono::seconds(2)).empty())
            break;
        const auto& t = std::get<touched>(m);
        batches.push_back(t.keys.size());
        received.insert(received.end(), t.keys.begin(), t.keys.end());
    }
    CHECK(received == keys);
    CHECK(batches == std::vector<std::size_t>{max_touched_keys, max_touched_keys, 1});

    // A successor that reads nothing: once the backlog passes the cap, batches are refused
    // (the caller keeps their keys) instead of piling up.
    std::vector<session_key> big(max_touched_keys, session_key{1, 1});
    bool refused = false;
    for (int i = 0; i < 1000 && !refused; ++i)
        refused = !forwarder.touched(big);
    CHECK(refused);
    forwarder.stop();
    CHECK(forwarder.touched(big)); // stopped: nothing is owed to anyone
}

TEST_CASE("handover: the successor's environment names it as the watchdog's process")
{
    std::string e0 = "PATH=/usr/bin", e1 = "WATCHDOG_USEC=30000000", e2 = "WATCHDOG_PID=100",
                e3 = "TURNOUT_UPGRADE_FD=9", e4 = "NOTIFY_SOCKET=/run/systemd/notify",
                e5 = "TURNOUT_UPGRADE_VERSION=2:5"; // what this process inherited: replaced
    std::vector<char*> parent{e0.data(), e1.data(), e2.data(), e3.data(), e5.data(), e4.data(), nullptr};
    const auto as_strings = [](char** env) {
        std::vector<std::string> out;
        for (; *env; ++env)
            out.emplace_back(*env);
        return out;
    };

    // This process (100) is the one watched: the successor will be.
    successor_environment watched(parent.data(), 100);
    CHECK(watched.watchdog());
    watched.set_pid(4194304);
    CHECK(as_strings(watched.envp()) ==
          std::vector<std::string>{"PATH=/usr/bin", "WATCHDOG_USEC=30000000",
                                   "NOTIFY_SOCKET=/run/systemd/notify", "TURNOUT_UPGRADE_FD=3",
                                   "TURNOUT_UPGRADE_VERSION=" + announced_version(100),
                                   "WATCHDOG_PID=4194304"});
    watched.set_pid(7);
    CHECK(as_strings(watched.envp()).back() == "WATCHDOG_PID=7");

    // Another process is the one watched (WATCHDOG_PID names it): passed on unchanged.
    successor_environment other(parent.data(), 200);
    CHECK_FALSE(other.watchdog());
    other.set_pid(201);
    const auto env = as_strings(other.envp());
    CHECK(std::count(env.begin(), env.end(), "WATCHDOG_PID=100") == 1);
    CHECK(std::count(env.begin(), env.end(), "WATCHDOG_PID=201") == 0);

    // No watchdog at all: nothing added.
    std::vector<char*> plain{e0.data(), nullptr};
    successor_environment none(plain.data(), 100);
    CHECK_FALSE(none.watchdog());
    none.set_pid(101);
    CHECK(as_strings(none.envp()) ==
          std::vector<std::string>{"PATH=/usr/bin", "TURNOUT_UPGRADE_FD=3",
                                   "TURNOUT_UPGRADE_VERSION=" + announced_version(100)});
}

TEST_CASE("handover: a peer that closes mid-message is a clear error")
{
    int ends[2];
    REQUIRE(::socketpair(AF_UNIX, SOCK_STREAM, 0, ends) == 0);
    channel reader(ends[0]);
    const auto bytes = encode(ready{9});
    REQUIRE(::write(ends[1], bytes.data(), 3) == 3);
    ::close(ends[1]);
    message m;
    CHECK(reader.receive(m, std::chrono::steady_clock::now() + std::chrono::seconds(2)) ==
          "the other process closed the channel in the middle of a message");
}
