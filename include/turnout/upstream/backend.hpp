#pragma once
// One backend process: its address and its live counters. Backends are shared between
// snapshots (a reload keeps the same object for the same address), so counters are exact
// across reloads. Counters are relaxed atomics: workers update them without locks, status
// reads them.

#include <boost/asio/ip/tcp.hpp>

#include <atomic>
#include <cstdint>
#include <string>

namespace turnout::upstream {

struct backend_counters {
    std::atomic<std::int64_t> in_flight{0};   // requests sent, response not finished
    std::atomic<std::int64_t> connections{0}; // open TCP connections to the backend
    std::atomic<std::int64_t> streams{0};     // open text/event-stream responses
    std::atomic<std::int64_t> sessions{0};    // sessions pinned to the backend
    std::atomic<std::uint64_t> requests_total{0};
    std::atomic<std::uint64_t> errors_total{0}; // connect failures, resets, garbage, timeouts
};

class backend {
public:
    backend(std::string address, boost::asio::ip::tcp::endpoint endpoint, std::uint16_t id = 0)
        : address_(std::move(address)), endpoint_(endpoint), id_(id)
    {}
    backend(const backend&) = delete;
    backend& operator=(const backend&) = delete;

    /// As written in the configuration ("127.0.0.1:3001").
    const std::string& address() const noexcept { return address_; }
    const boost::asio::ip::tcp::endpoint& endpoint() const noexcept { return endpoint_; }
    /// Its id in the backend registry (what session table entries store).
    std::uint16_t id() const noexcept { return id_; }

    /// Whether the current configuration still lists it. Sessions of a backend that left
    /// answer 404: its process, and so their state, is no longer ours to reach.
    bool in_service() const noexcept { return in_service_.load(std::memory_order_relaxed); }
    void set_in_service(bool s) noexcept { in_service_.store(s, std::memory_order_relaxed); }

    /// Seconds a session of this backend may stay unused (no open stream) before it is
    /// forgotten; from its upstream's session_idle_timeout. 0 = never.
    std::uint32_t session_idle_timeout_s() const noexcept
    {
        return session_idle_timeout_s_.load(std::memory_order_relaxed);
    }
    void set_session_idle_timeout_s(std::uint32_t s) noexcept
    {
        session_idle_timeout_s_.store(s, std::memory_order_relaxed);
    }

    bool healthy() const noexcept { return healthy_.load(std::memory_order_relaxed); }
    void set_healthy(bool h) noexcept { healthy_.store(h, std::memory_order_relaxed); }

    bool draining() const noexcept { return draining_.load(std::memory_order_relaxed); }
    void set_draining(bool d) noexcept { draining_.store(d, std::memory_order_relaxed); }

    /// Every pool listing it has drained past its deadline: nothing new goes there, and no
    /// keep-alive connection to it is kept.
    bool retired() const noexcept { return retired_.load(std::memory_order_relaxed); }
    void set_retired(bool r) noexcept { retired_.store(r, std::memory_order_relaxed); }

    /// Worth keeping idle connections to.
    bool wanted() const noexcept { return in_service() && !retired(); }

    /// May take new sessions.
    bool available() const noexcept { return healthy() && !draining(); }

    backend_counters& counters() noexcept { return counters_; }
    const backend_counters& counters() const noexcept { return counters_; }

private:
    std::string address_;
    boost::asio::ip::tcp::endpoint endpoint_;
    std::uint16_t id_;
    std::atomic<bool> in_service_{true};
    std::atomic<bool> retired_{false};
    std::atomic<std::uint32_t> session_idle_timeout_s_{1800};
    std::atomic<bool> healthy_{true};
    std::atomic<bool> draining_{false};
    backend_counters counters_;
};

} // namespace turnout::upstream
