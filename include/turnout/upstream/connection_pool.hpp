#pragma once
// Keep-alive connections to backends, one pool per worker (no locks). A connection is taken
// for one exchange and put back when both messages ended cleanly; before reuse it is checked
// for a close or stray bytes from the backend, so a stale connection is not handed out.

#include "turnout/net/stream.hpp"
#include "turnout/upstream/backend.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>

#include <chrono>
#include <memory>
#include <unordered_map>
#include <vector>

namespace turnout::upstream {

/// One TCP connection to a backend, TLS or not. Counts itself in the backend's `connections`.
/// tls is the TLS client context it was made with (null: plain), kept alive with it, so that
/// the pool hands it out only for the same settings.
class upstream_connection {
public:
    upstream_connection(boost::asio::io_context& io, std::shared_ptr<backend> target,
                        std::shared_ptr<const void> tls = nullptr);
    ~upstream_connection();
    upstream_connection(const upstream_connection&) = delete;
    upstream_connection& operator=(const upstream_connection&) = delete;

    boost::asio::ip::tcp::socket& socket() noexcept { return stream_.next_layer(); }
    net::socket_stream& stream() noexcept { return stream_; }
    const void* tls_key() const noexcept { return tls_.get(); }
    backend& target() noexcept { return *target_; }
    const std::shared_ptr<backend>& target_ptr() const noexcept { return target_; }

    /// Whether this connection served an exchange before (a reused one may have been closed
    /// by the backend in the meantime).
    bool reused() const noexcept { return reused_; }
    void mark_reused() noexcept { reused_ = true; }

    std::chrono::steady_clock::time_point idle_since;

private:
    net::socket_stream stream_;
    std::shared_ptr<backend> target_;
    std::shared_ptr<const void> tls_;
    bool reused_ = false;
};

class connection_pool {
public:
    /// Idle connections are kept up to what recent load needed (a cap below the number of
    /// exchanges in flight at peak would close and reopen connections exactly then, and
    /// leave a TIME_WAIT socket per close); the sweep closes those unused for a minute.
    /// As HAProxy's pool-max-conn (unlimited by default) with its idle purge.
    explicit connection_pool(std::size_t max_idle_per_backend = 4096)
        : max_idle_per_backend_(max_idle_per_backend)
    {}

    /// An idle, still-open connection to b made with the same TLS settings, or null. `now` is
    /// the caller's clock reading (one per exchange step, not one per call).
    std::unique_ptr<upstream_connection> take(const backend& b, const void* tls_key,
                                              std::chrono::steady_clock::time_point now);

    /// Keeps c for reuse (or closes it when the backend already has enough idle ones).
    void put(std::unique_ptr<upstream_connection> c, std::chrono::steady_clock::time_point now);

    /// Closes connections idle since before cutoff, and those to backends no longer wanted.
    void sweep(std::chrono::steady_clock::time_point cutoff);

    /// Closes the idle connections to backends no longer wanted (removed, drained out).
    void drop_unwanted();

    void clear() { idle_.clear(); }
    std::size_t idle_count() const noexcept;

private:
    std::unordered_map<const backend*, std::vector<std::unique_ptr<upstream_connection>>> idle_;
    std::size_t max_idle_per_backend_;
};

} // namespace turnout::upstream
