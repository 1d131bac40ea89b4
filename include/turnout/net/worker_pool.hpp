#pragma once
// Shared-nothing event loops: one io_context per worker thread, each with its own acceptors,
// upstream keep-alive pool, balancer and snapshot cache (Beast's server-multi-io-context,
// Seastar's shards). Nothing on the request path locks; the control thread talks to a worker
// by posting to its io_context.

#include "turnout/net/buffer_cache.hpp"
#include "turnout/net/deadline_wheel.hpp"
#include "turnout/routing/stage.hpp"
#include "turnout/runtime/shared_state.hpp"
#include "turnout/upstream/balancer.hpp"
#include "turnout/upstream/connection_pool.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>

#include <atomic>
#include <memory>
#include <thread>
#include <unordered_set>
#include <utility>
#include <vector>

namespace turnout::net {

class listener;

/// What a worker needs of a client connection to shut down gracefully.
class connection_handle {
public:
    virtual ~connection_handle() = default;
    /// Finish the exchange in progress (if any), then close; an idle one closes now.
    virtual void drain() = 0;
    /// Close now.
    virtual void abort() = 0;
    /// The process handed its listeners to a successor: answer the next response with
    /// `Connection: close`, and leave an idle keep-alive connection to its client (closing
    /// it from here would race with a request the client is sending on it).
    virtual void retire() = 0;
    /// If this connection is streaming a response from one of targets, close it at `at`
    /// (drain deadline: streams end spread over a window, not all at once).
    virtual bool close_stream_from(const std::vector<const upstream::backend*>& targets,
                                   std::chrono::steady_clock::time_point at) = 0;
};

class worker {
public:
    worker(unsigned index, runtime::shared_state& shared);
    worker(const worker&) = delete;
    worker& operator=(const worker&) = delete;
    ~worker();

    unsigned index() const noexcept { return index_; }
    boost::asio::io_context& io() noexcept { return io_; }
    upstream::connection_pool& upstream_pool() noexcept { return upstream_pool_; }
    upstream::balancer& balancer() noexcept { return balancer_; }
    /// The routing stage of this worker's exchanges (over its balancer).
    routing::stage& router() noexcept { return router_; }
    runtime::shared_state& shared() noexcept { return shared_; }

    /// The newest published snapshot; one relaxed load when nothing changed.
    const std::shared_ptr<const runtime::snapshot>& snapshot();

    // Client connections, registered by themselves (worker thread only).
    void add(connection_handle* c);
    void remove(connection_handle* c);
    /// Open client connections; readable from any thread.
    std::size_t connection_count() const noexcept { return connection_count_.load(std::memory_order_relaxed); }

    bool draining() const noexcept { return draining_; }

    /// Read buffers, recycled: a connection holds a client buffer only while it reads a
    /// request and a response buffer only while it reads a response (or waits for one it
    /// asked for), so connections waiting for their next request, or on a silent stream,
    /// cost no buffer. An answer starts in 2 KiB (a head and a JSON-RPC body fit) and
    /// continues in one page, as nginx's proxy_buffer_size, when it keeps filling that.
    /// Request heads accumulate in the parser's own storage, so the client buffer only
    /// bounds one read (nginx reads heads through 1 KiB).
    static constexpr std::size_t client_buffer_size = 2048;
    static constexpr std::size_t response_start_size = 2048;
    static constexpr std::size_t response_buffer_size = 4096;
    buffer_cache& response_buffers() noexcept { return response_buffers_; }
    buffer_cache& client_buffers() noexcept { return client_buffers_; }

    /// Client reads parked with a buffer between requests (see downstream_connection): at
    /// most max_parked_reads at a time, so idle connections cost no buffer however many.
    static constexpr std::size_t max_parked_reads = 1024;
    static constexpr std::chrono::milliseconds park_time{200};
    bool take_park_slot() noexcept { return parked_reads_ < max_parked_reads ? (++parked_reads_, true) : false; }
    void give_park_slot() noexcept { --parked_reads_; }

    /// The deadlines of this worker's client connections (header, idle, response, stream).
    deadline_wheel& deadlines() noexcept { return deadlines_; }

    void add_listener(std::shared_ptr<listener> l);
    /// The listening sockets' fds (to hand to a successor). Valid until begin_drain/retire.
    std::vector<int> listener_fds() const;

    // From the control thread.
    void start();
    void begin_drain(); // stop accepting; connections finish their exchange and close
    void retire();      // stop accepting; connections end as their clients let them (upgrade)
    /// An upgrade began: every connection, open or accepted from now, answers its next
    /// exchange with `Connection: close`; the listeners keep accepting until retire().
    void retire_connections();
    /// The upgrade failed: connections accepted from now keep-alive again.
    void keep_connections();
    void abort_all();   // close every client connection now
    /// Closes the streams served by targets, each at a random moment within window.
    void close_streams(std::vector<const upstream::backend*> targets, std::chrono::milliseconds window);
    void stop();        // stop the loop (after abort_all or when empty)
    void join();

private:
    void do_sweep();

    // Order matters for destruction: io_ destroys the handlers still queued, which releases
    // the connections they own, which then deregister from connections_ — so connections_
    // must outlive io_, and every socket or timer must die before it.
    unsigned index_;
    runtime::shared_state& shared_;
    std::unordered_set<connection_handle*> connections_;
    std::atomic<std::size_t> connection_count_{0};
    std::shared_ptr<const runtime::snapshot> snapshot_;
    std::uint64_t snapshot_version_ = ~std::uint64_t{0};
    upstream::balancer balancer_;
    routing::stage router_{shared_, balancer_};
    bool draining_ = false;
    std::size_t parked_reads_ = 0;
    buffer_cache response_buffers_{response_start_size, response_buffer_size};
    buffer_cache client_buffers_{client_buffer_size, client_buffer_size};
    // One thread runs this loop and only it touches its sockets: the reactor's per-socket
    // locks are pure overhead. The scheduler stays locked: the control thread posts to it.
    boost::asio::io_context io_{BOOST_ASIO_CONCURRENCY_HINT_UNSAFE_IO};
    boost::asio::steady_timer sweep_timer_{io_};
    deadline_wheel deadlines_{io_};
    upstream::connection_pool upstream_pool_;
    std::vector<std::shared_ptr<listener>> listeners_;
    std::thread thread_;
};

class worker_pool {
public:
    worker_pool(unsigned count, runtime::shared_state& shared);

    std::size_t size() const noexcept { return workers_.size(); }
    worker& operator[](std::size_t i) noexcept { return *workers_[i]; }
    auto begin() noexcept { return workers_.begin(); }
    auto end() noexcept { return workers_.end(); }

    void start();
    void begin_drain();
    void retire();
    void retire_connections();
    void keep_connections();
    void abort_all();
    void close_streams(const std::vector<const upstream::backend*>& targets, std::chrono::milliseconds window);
    void stop();
    void join();
    std::size_t connection_count() const noexcept;
    /// Read buffers held by connections, over all workers: {client, response}.
    std::pair<std::size_t, std::size_t> buffers_held() const noexcept;

private:
    std::vector<std::unique_ptr<worker>> workers_;
};

} // namespace turnout::net
