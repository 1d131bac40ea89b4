#include "turnout/service/notifier.hpp"
#include "turnout/service/reporter.hpp"

#include <doctest/doctest.h>

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstddef>
#include <cstring>
#include <string>

using namespace turnout::service;

namespace {

constexpr auto path_offset = offsetof(sockaddr_un, sun_path);

/// A bound datagram socket with an abstract name unique to this process and test.
struct sink {
    explicit sink(const std::string& tag) : name("@turnout-unit-" + std::to_string(::getpid()) + "-" + tag)
    {
        fd = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        const auto address = parse_notify_socket(name);
        REQUIRE(address);
        REQUIRE(::bind(fd, reinterpret_cast<const sockaddr*>(&address->address), address->length) == 0);
    }
    ~sink() { ::close(fd); }

    /// The next datagram, or "" when none is waiting.
    std::string next() const
    {
        char buffer[4096];
        const auto n = ::recv(fd, buffer, sizeof buffer, MSG_DONTWAIT);
        return n > 0 ? std::string(buffer, static_cast<std::size_t>(n)) : std::string();
    }

    std::string name;
    int fd = -1;
};

} // namespace

TEST_CASE("a NOTIFY_SOCKET path becomes a NUL-terminated sun_path")
{
    const auto a = parse_notify_socket("/run/systemd/notify");
    REQUIRE(a);
    CHECK(a->address.sun_family == AF_UNIX);
    CHECK(std::string(a->address.sun_path) == "/run/systemd/notify");
    CHECK(a->length == path_offset + std::strlen("/run/systemd/notify") + 1);
}

TEST_CASE("a NOTIFY_SOCKET @name is abstract: leading NUL, length without terminator")
{
    const auto a = parse_notify_socket("@turnout/notify");
    REQUIRE(a);
    CHECK(a->address.sun_path[0] == '\0');
    CHECK(std::string(a->address.sun_path + 1, std::strlen("turnout/notify")) == "turnout/notify");
    CHECK(a->length == path_offset + 1 + std::strlen("turnout/notify"));
}

TEST_CASE("NOTIFY_SOCKET values that are neither are refused")
{
    CHECK_FALSE(parse_notify_socket(""));
    CHECK_FALSE(parse_notify_socket("@"));
    CHECK_FALSE(parse_notify_socket("/"));
    CHECK_FALSE(parse_notify_socket("run/notify"));
    CHECK_FALSE(parse_notify_socket("vsock:2:1234"));
    const std::string longest(sizeof(sockaddr_un{}.sun_path) - 1, 'x');
    CHECK(parse_notify_socket("/" + longest.substr(1)));
    CHECK_FALSE(parse_notify_socket("/" + longest));
    CHECK(parse_notify_socket("@" + longest));
    CHECK_FALSE(parse_notify_socket("@" + longest + "x"));
}

TEST_CASE("notify messages: one assignment per line, STATUS on one line")
{
    CHECK(ready_message() == "READY=1");
    CHECK(ready_message("serving") == "READY=1\nSTATUS=serving");
    CHECK(reloading_message(1234567) == "RELOADING=1\nMONOTONIC_USEC=1234567");
    CHECK(reloading_message(5, "reloading") == "RELOADING=1\nMONOTONIC_USEC=5\nSTATUS=reloading");
    CHECK(stopping_message() == "STOPPING=1");
    CHECK(status_message("bad\nconfig\r\nline") == "STATUS=bad config  line");
    CHECK(main_pid_message(4242) == "MAINPID=4242");
    CHECK(std::string(watchdog_message) == "WATCHDOG=1");
    CHECK(status_message(std::string(5000, 'x')).size() < 600);
}

TEST_CASE("the monotonic clock for MONOTONIC_USEC moves forward")
{
    const auto a = monotonic_usec();
    const auto b = monotonic_usec();
    CHECK(a > 0);
    CHECK(b >= a);
}

TEST_CASE("the watchdog is on for a positive WATCHDOG_USEC meant for this process")
{
    CHECK(parse_watchdog("2000000", nullptr, 10) == std::chrono::microseconds(2000000));
    CHECK(parse_watchdog("2000000", "10", 10) == std::chrono::microseconds(2000000));
    CHECK_FALSE(parse_watchdog("2000000", "11", 10)); // inherited from a parent
    CHECK_FALSE(parse_watchdog(nullptr, nullptr, 10));
    CHECK_FALSE(parse_watchdog("0", nullptr, 10));
    CHECK_FALSE(parse_watchdog("2s", nullptr, 10));
    CHECK_FALSE(parse_watchdog("", nullptr, 10));
    CHECK_FALSE(parse_watchdog("100", "ten", 10));
}

TEST_CASE("a notifier delivers each message as one datagram")
{
    sink s("deliver");
    notifier n(s.name, std::chrono::microseconds(100));
    REQUIRE(n.enabled());
    CHECK(n.watchdog_interval() == std::chrono::microseconds(100));
    CHECK(n.ready("up"));
    CHECK(n.main_pid(77));
    CHECK(n.watchdog());
    CHECK(s.next() == "READY=1\nSTATUS=up");
    CHECK(s.next() == "MAINPID=77");
    CHECK(s.next() == "WATCHDOG=1");
    CHECK(s.next().empty());
}

TEST_CASE("a notifier with a path socket delivers too")
{
    const std::string path = "/tmp/turnout-unit-notify-" + std::to_string(::getpid());
    ::unlink(path.c_str());
    const int fd = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    const auto address = parse_notify_socket(path);
    REQUIRE(address);
    REQUIRE(::bind(fd, reinterpret_cast<const sockaddr*>(&address->address), address->length) == 0);
    notifier n(path);
    CHECK(n.stopping());
    char buffer[64];
    const auto got = ::recv(fd, buffer, sizeof buffer, MSG_DONTWAIT);
    CHECK(std::string(buffer, got > 0 ? static_cast<std::size_t>(got) : 0) == "STOPPING=1");
    ::close(fd);
    ::unlink(path.c_str());
}

TEST_CASE("a notifier without a socket, or with nobody listening, never throws or blocks")
{
    notifier off;
    CHECK_FALSE(off.enabled());
    CHECK(off.ready());
    CHECK_FALSE(off.watchdog_interval());

    notifier bad("relative/path", std::chrono::microseconds(5));
    CHECK_FALSE(bad.enabled());
    CHECK_FALSE(bad.watchdog_interval()); // no socket, no pings

    notifier nobody("@turnout-unit-nobody-" + std::to_string(::getpid()));
    CHECK(nobody.enabled());
    CHECK_FALSE(nobody.ready()); // ECONNREFUSED: reported, not thrown
}

TEST_CASE("a moved notifier keeps the socket, the moved-from one is off")
{
    sink s("move");
    notifier a(s.name);
    notifier b(std::move(a));
    CHECK(b.enabled());
    CHECK_FALSE(a.enabled()); // NOLINT(bugprone-use-after-move): the point of the test
    CHECK(b.status("x"));
    CHECK(s.next() == "STATUS=x");
}

TEST_CASE("the status line names live counts, singular and plural")
{
    CHECK(describe({3, 1, 2, 0}, false) == "serving: 3 connections, 1 stream, 2 sessions, 0 in flight");
    CHECK(describe({1, 0, 1, 4}, true) == "draining: 1 connection, 0 streams, 1 session, 4 in flight");
}

// ---------------------------------------------------------------------------------------------
// reporter: what goes out when, on a real io_context

namespace {

/// Runs the io_context's ready handlers and timers for up to `for_ms`.
void run_for(boost::asio::io_context& io, int for_ms)
{
    io.restart();
    io.run_for(std::chrono::milliseconds(for_ms));
}

/// The next datagram, running io's timers until one arrives (at most 5 s: a loaded machine
/// may be slow, never wrong).
std::string next_within(boost::asio::io_context& io, const sink& s)
{
    for (int slice = 0; slice < 500; ++slice) {
        if (auto message = s.next(); !message.empty())
            return message;
        run_for(io, 10);
    }
    return {};
}

} // namespace

TEST_CASE("reporter: READY=1 with the status, RELOADING=1 and READY=1 around a reload, STOPPING=1, then silence")
{
    sink s("reporter");
    boost::asio::io_context io;
    live_counts counts{2, 1, 3, 0};
    reporter r(io, notifier(s.name));
    r.ready([&] { return counts; });
    CHECK(s.next() == "READY=1\nSTATUS=serving: 2 connections, 1 stream, 3 sessions, 0 in flight");
    r.reloading();
    const auto reloading = s.next();
    CHECK(reloading.starts_with("RELOADING=1\nMONOTONIC_USEC="));
    r.reloaded("bad.toml:3:1: boom");
    CHECK(s.next() == "READY=1\nSTATUS=serving: 2 connections, 1 stream, 3 sessions, 0 in flight; last reload failed: "
                      "bad.toml:3:1: boom");
    r.reloading();
    CHECK(s.next().starts_with("RELOADING=1"));
    r.reloaded();
    CHECK(s.next() == "READY=1\nSTATUS=serving: 2 connections, 1 stream, 3 sessions, 0 in flight");
    r.stopping();
    CHECK(s.next() == "STOPPING=1\nSTATUS=draining: 2 connections, 1 stream, 3 sessions, 0 in flight");
    r.reloading();
    r.reloaded();
    CHECK(s.next().empty()); // no READY=1 after STOPPING=1
    r.stop();
    run_for(io, 10);
    CHECK(s.next().empty());
}

TEST_CASE("reporter: a successor names itself main process in its READY=1")
{
    sink s("takeover");
    boost::asio::io_context io;
    reporter r(io, notifier(s.name));
    r.ready([] { return live_counts{}; }, /*take_over=*/true);
    CHECK(s.next() == "MAINPID=" + std::to_string(::getpid()) +
                          "\nREADY=1\nSTATUS=serving: 0 connections, 0 streams, 0 sessions, 0 in flight");
    r.stop();
}

TEST_CASE("reporter: after hand_over the old process says nothing, not even STOPPING=1 or watchdog pings")
{
    sink s("handover");
    boost::asio::io_context io;
    reporter r(io, notifier(s.name, std::chrono::milliseconds(20)));
    r.ready([] { return live_counts{}; });
    CHECK(s.next().starts_with("READY=1"));
    CHECK(s.next() == "WATCHDOG=1");
    CHECK(next_within(io, s) == "WATCHDOG=1"); // every 10 ms: half the interval
    while (!s.next().empty()) {
    }
    r.hand_over();
    r.stopping();
    r.reloading();
    r.reloaded();
    run_for(io, 40);
    CHECK(s.next().empty());
}
