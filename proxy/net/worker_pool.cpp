#include "turnout/net/worker_pool.hpp"

#include "turnout/net/listener.hpp"

#include <boost/asio/post.hpp>
#include <spdlog/spdlog.h>

#include <chrono>
#include <random>

namespace turnout::net {

namespace {
constexpr auto sweep_interval = std::chrono::seconds(5);
constexpr auto upstream_idle_limit = std::chrono::seconds(60);

std::uint64_t random_seed()
{
    std::random_device rd;
    return (std::uint64_t{rd()} << 32) ^ rd();
}
} // namespace

worker::worker(unsigned index, runtime::shared_state& shared)
    : index_(index), shared_(shared), balancer_(random_seed())
{}

worker::~worker() { join(); }

const std::shared_ptr<const runtime::snapshot>& worker::snapshot()
{
    const auto v = shared_.snapshots.version();
    if (v != snapshot_version_) {
        snapshot_ = shared_.snapshots.load();
        snapshot_version_ = v;
    }
    return snapshot_;
}

void worker::add(connection_handle* c)
{
    connections_.insert(c);
    connection_count_.fetch_add(1, std::memory_order_relaxed);
}

void worker::remove(connection_handle* c)
{
    if (connections_.erase(c))
        connection_count_.fetch_sub(1, std::memory_order_relaxed);
}

void worker::add_listener(std::shared_ptr<listener> l) { listeners_.push_back(std::move(l)); }

void worker::start()
{
    for (auto& l : listeners_)
        l->start();
    do_sweep();
    thread_ = std::thread([this] { io_.run(); });
}

void worker::do_sweep()
{
    // Idle backend connections that sat unused for long, or were closed by the backend, go.
    sweep_timer_.expires_after(sweep_interval);
    sweep_timer_.async_wait([this](boost::system::error_code ec) {
        if (ec)
            return;
        upstream_pool_.sweep(std::chrono::steady_clock::now() - upstream_idle_limit);
        do_sweep();
    });
}

void worker::begin_drain()
{
    boost::asio::post(io_, [this] {
        draining_ = true;
        for (auto& l : listeners_)
            l->close();
        // drain() may remove the connection from the set: iterate over a copy.
        const std::vector<connection_handle*> open(connections_.begin(), connections_.end());
        for (auto* c : open)
            if (connections_.contains(c))
                c->drain();
    });
}

void worker::retire()
{
    boost::asio::post(io_, [this] {
        for (auto& l : listeners_)
            l->close(); // the kernel socket lives on in the successor, its queue included
    });
    retire_connections();
}

void worker::retire_connections()
{
    boost::asio::post(io_, [this] {
        draining_ = true; // connections accepted from now are retired as they start
        const std::vector<connection_handle*> open(connections_.begin(), connections_.end());
        for (auto* c : open)
            if (connections_.contains(c))
                c->retire();
    });
}

void worker::keep_connections()
{
    boost::asio::post(io_, [this] { draining_ = false; });
}

std::vector<int> worker::listener_fds() const
{
    std::vector<int> fds;
    for (const auto& l : listeners_)
        fds.push_back(l->native_handle());
    return fds;
}

void worker::abort_all()
{
    boost::asio::post(io_, [this] {
        for (auto& l : listeners_)
            l->close();
        const std::vector<connection_handle*> open(connections_.begin(), connections_.end());
        for (auto* c : open)
            if (connections_.contains(c))
                c->abort();
    });
}

void worker::close_streams(std::vector<const upstream::backend*> targets, std::chrono::milliseconds window)
{
    boost::asio::post(io_, [this, targets = std::move(targets), window] {
        upstream_pool_.drop_unwanted(); // idle keep-alive connections to them go now
        std::mt19937_64 rng(random_seed());
        const auto now = std::chrono::steady_clock::now();
        const auto span = std::max<std::int64_t>(1, window.count());
        std::size_t closing = 0;
        for (auto* c : connections_) {
            const auto at = now + std::chrono::milliseconds(static_cast<std::int64_t>(rng() % span));
            closing += c->close_stream_from(targets, at);
        }
        if (closing)
            spdlog::info("worker {}: closing {} drained stream(s) within {} ms", index_, closing, window.count());
    });
}

void worker::stop()
{
    boost::asio::post(io_, [this] {
        sweep_timer_.cancel();
        deadlines_.stop();
        upstream_pool_.clear();
        io_.stop();
    });
}

void worker::join()
{
    if (thread_.joinable())
        thread_.join();
}

worker_pool::worker_pool(unsigned count, runtime::shared_state& shared)
{
    for (unsigned i = 0; i < count; ++i)
        workers_.push_back(std::make_unique<worker>(i, shared));
}

void worker_pool::start()
{
    for (auto& w : workers_)
        w->start();
}

void worker_pool::begin_drain()
{
    for (auto& w : workers_)
        w->begin_drain();
}

void worker_pool::retire()
{
    for (auto& w : workers_)
        w->retire();
}

void worker_pool::retire_connections()
{
    for (auto& w : workers_)
        w->retire_connections();
}

void worker_pool::keep_connections()
{
    for (auto& w : workers_)
        w->keep_connections();
}

void worker_pool::abort_all()
{
    for (auto& w : workers_)
        w->abort_all();
}

void worker_pool::close_streams(const std::vector<const upstream::backend*>& targets, std::chrono::milliseconds window)
{
    for (auto& w : workers_)
        w->close_streams(targets, window);
}

void worker_pool::stop()
{
    for (auto& w : workers_)
        w->stop();
}

void worker_pool::join()
{
    for (auto& w : workers_)
        w->join();
}

std::size_t worker_pool::connection_count() const noexcept
{
    std::size_t n = 0;
    for (const auto& w : workers_)
        n += w->connection_count();
    return n;
}

std::pair<std::size_t, std::size_t> worker_pool::buffers_held() const noexcept
{
    std::pair<std::size_t, std::size_t> n{0, 0};
    for (const auto& w : workers_) {
        n.first += w->client_buffers().held();
        n.second += w->response_buffers().held();
    }
    return n;
}

} // namespace turnout::net
