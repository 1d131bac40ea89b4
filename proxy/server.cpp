#include "turnout/server.hpp"

#include "turnout/http/downstream_connection.hpp"
#include "turnout/log/logging.hpp"
#include "turnout/net/endpoint.hpp"
#include "turnout/net/listener.hpp"
#include "turnout/runtime/state_file.hpp"
#include "turnout/session/session_store.hpp"
#include "turnout/version.hpp"

#include <spdlog/spdlog.h>

#include <csignal>
#include <random>
#include <thread>
#include <unistd.h>

namespace turnout {
namespace {

namespace asio = boost::asio;
constexpr auto drain_poll_interval = std::chrono::milliseconds(50);

unsigned worker_count(const config::proxy_config& proxy)
{
    if (proxy.workers > 0)
        return proxy.workers;
    return std::max(1u, std::thread::hardware_concurrency());
}

asio::ip::tcp::endpoint resolve_or_throw(const config::configuration& config,
                                         const config::host_port& address)
{
    boost::system::error_code ec;
    auto endpoint = net::resolve(address, ec);
    if (ec)
        throw config::config_error(config.path, 0, 0, "cannot resolve " + address.text + ": " + ec.message());
    return endpoint;
}

} // namespace

void check_configuration(const std::string& config_path)
{
    auto config = std::make_shared<const config::configuration>(config::load_file(config_path));
    upstream::backend_registry registry;
    runtime::build_snapshot(config, registry); // resolves every backend, reads key files
    net::build_tls_contexts(*config);          // reads and matches certificates and keys
    for (const auto& l : config->listeners)
        resolve_or_throw(*config, l.address);
}

namespace {

std::uint64_t fresh_seed()
{
    std::random_device rd;
    return (std::uint64_t{rd()} << 32) ^ rd();
}

} // namespace

server::server(std::string config_path, launch_info launch)
    : config_path_(std::move(config_path)),
      config_(std::make_shared<const config::configuration>(config::load_file(config_path_))),
      tls_(net::build_tls_contexts(*config_))
{
    launch_ = std::move(launch);
    log::setup_error_log(config_->proxy.log_level);
    std::optional<session::saved_table> saved;
    if (launch_.upgrade_fd >= 0) {
        saved = take_over(); // the running table, not the (older) file
    } else if (!config_->proxy.state_file.empty()) {
        try {
            saved = session::load_table(session::session_file_for(config_->proxy.state_file));
        } catch (const std::exception& e) {
            spdlog::error("{}; starting with an empty session table", e.what());
        }
    }
    // Keys are hashes: a restored table must keep hashing with the seed it was saved with.
    shared_ = std::make_unique<runtime::shared_state>(saved ? saved->seed : fresh_seed());
    load_runtime_state();
    publish(config_);
    if (saved) {
        const auto now = shared_->now_s();
        std::size_t restored = 0;
        for (const auto& s : saved->sessions) {
            const auto b = shared_->backends.find(s.owner);
            if (!b || !b->in_service())
                continue; // its backend left the configuration while we were down
            shared_->sessions.restore({s.key, now - std::min(s.age_s, now), b->id(), 0});
            ++restored;
        }
        spdlog::info("restored {} of {} saved session(s)", restored, saved->sessions.size());
    }
    workers_ = std::make_unique<net::worker_pool>(worker_count(config_->proxy), *shared_);
}

server::~server()
{
    close_unadopted();
    if (workers_) {
        workers_->abort_all();
        workers_->stop();
        workers_->join();
    }
}

void server::load_runtime_state()
{
    state_ = runtime::initial_state(*config_);
    const auto& path = config_->proxy.state_file;
    if (path.empty())
        return;
    try {
        if (const auto saved = runtime::load_state(path)) {
            state_ = runtime::reconcile(*saved, *config_);
            operator_state_ = true;
            spdlog::info("runtime state loaded from {}", path);
        }
    } catch (const std::exception& e) {
        // Keep the damaged file for a human to look at, and start from the configuration.
        const auto kept = path + ".damaged";
        std::rename(path.c_str(), kept.c_str());
        spdlog::error("{}; using the configuration's state (the damaged file is kept as {})", e.what(), kept);
    }
}

std::int64_t server::unix_ms()
{
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
}

void server::publish(std::shared_ptr<const config::configuration> config)
{
    auto access_log = log::make_access_log(config->proxy.access_log);
    auto next = runtime::build_snapshot(std::move(config), state_, unix_ms(), shared_->backends);
    next->access_log = std::move(access_log);
    next->listen_tls = tls_.listeners;
    for (auto& u : next->upstreams)
        for (auto& p : u.pools)
            for (const auto& pc : u.config.pools)
                if (pc.name == p.name)
                    p.tls = tls_.for_pool(pc);
    runtime::mark_in_service(*next, shared_->backends);
    if (health_)
        health_->update(*next);
    shared_->snapshots.publish(std::move(next));
    // Sessions of backends that left are gone with their process: forget them (requests for
    // them answer 404 either way).
    shared_->backends.for_each([this](upstream::backend& b) {
        if (!b.in_service())
            shared_->sessions.erase_owner(b.id());
    });
}

void server::do_expire_sessions()
{
    expiry_timer_.expires_after(std::chrono::seconds(1));
    expiry_timer_.async_wait([this](boost::system::error_code ec) {
        if (ec)
            return;
        // After a hand-over the successor owns the session table and decides when a session
        // expired; this process only tells it which sessions are still in use here. It keeps
        // its own entries until it exits (drain_timeout at most), so that a request still
        // arriving on one of its connections reaches the session's owner, not a hash choice.
        for (auto& f : forwarders_)
            f->flush(); // deltas the channel could not take at once
        if (successor_pid_ != 0) {
            send_touched();
            return do_expire_sessions();
        }
        shared_->sessions.expire(shared_->now_s(), [this](session::backend_id id) -> std::uint32_t {
            const auto* b = shared_->backends.get(id);
            return b ? b->session_idle_timeout_s() : 0;
        });
        do_expire_sessions();
    });
}

void server::save_sessions()
{
    // After a hand-over the successor owns the table (and saves it when it stops).
    if (config_->proxy.state_file.empty() || successor_pid_ != 0)
        return;
    const auto path = session::session_file_for(config_->proxy.state_file);
    try {
        save_table(path, shared_->sessions, shared_->backends, shared_->now_s());
        spdlog::info("saved {} session(s) to {}", shared_->sessions.size(), path);
    } catch (const std::exception& e) {
        spdlog::error("saving sessions: {}", e.what());
    }
}

int server::run()
{
    std::signal(SIGPIPE, SIG_IGN);
    // Before anything is announced: a stop signal right after "listening" must drain, not kill.
    signals_.add(SIGTERM);
    signals_.add(SIGINT);
    signals_.add(SIGHUP);
    signals_.add(SIGUSR2);
    bind_listeners();
    start_status_server();
    close_unadopted();
    start_admin_server();
    health_ = std::make_unique<health::health_checker>(control_, *shared_);
    health_->update(*shared_->snapshots.load());
    do_wait_signal();
    do_expire_sessions();
    do_watch_drains();
    link_predecessor();
    workers_->start();
    spdlog::info("turnout {} running with {} worker(s) as pid {}", version(), workers_->size(), ::getpid());
    // A successor names itself the service's main process (MAINPID=) with its READY=1.
    service_.ready([this] { return service::count_live(*workers_, *shared_); }, predecessor_ != nullptr);
    if (predecessor_)
        announce_ready();
    control_.run();
    workers_->join();
    save_sessions();
    spdlog::info("turnout stopped");
    return 0;
}

void server::bind_listeners()
{
    for (std::size_t index = 0; index < config_->listeners.size(); ++index) {
        const auto& l = config_->listeners[index];
        const auto handed = adopt(upgrade::listener_kind::proxy, l.address.text);
        if (!handed.empty()) {
            // Every handed-over socket keeps accepting, on some worker: closing one would
            // drop the connections waiting in its queue. Workers beyond them bind afresh.
            std::optional<asio::ip::tcp::endpoint> bound;
            const auto n = std::max(handed.size(), workers_->size());
            for (std::size_t i = 0; i < n; ++i) {
                auto* worker = &(*workers_)[i % workers_->size()];
                auto handler = [worker, index](asio::ip::tcp::socket socket) {
                    http::serve(*worker, std::move(socket), index);
                };
                auto listener = i < handed.size()
                                    ? std::make_shared<net::listener>(worker->io(), handed[i], handler)
                                    : std::make_shared<net::listener>(worker->io(), *bound, handler);
                bound = listener->local_endpoint();
                own_listeners_.push_back(
                    {upgrade::listener_kind::proxy, l.address.text, listener->native_handle()});
                worker->add_listener(std::move(listener));
            }
            spdlog::info("proxy listening on {}{} ({} socket(s) taken over)", net::to_string(*bound),
                         l.tls() ? " (TLS)" : "", handed.size());
            continue;
        }
        auto endpoint = resolve_or_throw(*config_, l.address);
        // The first worker binds (port 0 picks a port); the others share that exact port
        // through SO_REUSEPORT.
        for (auto& w : *workers_) {
            auto* worker = w.get();
            auto listener = std::make_shared<net::listener>(
                worker->io(), endpoint, [worker, index](asio::ip::tcp::socket socket) {
                    http::serve(*worker, std::move(socket), index);
                });
            endpoint = listener->local_endpoint();
            own_listeners_.push_back(
                {upgrade::listener_kind::proxy, l.address.text, listener->native_handle()});
            worker->add_listener(std::move(listener));
        }
        spdlog::info("proxy listening on {}{}", net::to_string(endpoint), l.tls() ? " (TLS)" : "");
    }
}

void server::start_status_server()
{
    if (!config_->proxy.status_address)
        return;
    const auto handed = adopt(upgrade::listener_kind::status, config_->proxy.status_address->text);
    if (!handed.empty()) {
        status_ = std::make_unique<admin::status_server>(control_, handed.front(), *this);
        for (std::size_t i = 1; i < handed.size(); ++i)
            ::close(handed[i]);
    } else {
        const auto endpoint = resolve_or_throw(*config_, *config_->proxy.status_address);
        status_ = std::make_unique<admin::status_server>(control_, endpoint, *this);
    }
    status_->start();
    spdlog::info("status listening on {}", net::to_string(status_->local_endpoint()));
}

void server::do_wait_signal()
{
    signals_.async_wait([this](boost::system::error_code ec, int signal_number) {
        if (ec)
            return;
        on_signal(signal_number);
        do_wait_signal();
    });
}

void server::start_admin_server()
{
    if (config_->proxy.admin_socket.empty())
        return;
    admin_ = std::make_unique<admin::admin_server>(control_, config_->proxy.admin_socket, *this);
    admin_->start();
    spdlog::info("admin socket at {}", config_->proxy.admin_socket);
}

void server::on_signal(int signal_number)
{
    if (signal_number == SIGHUP)
        return on_reload_signal();
    if (signal_number == SIGUSR2) {
        if (const auto r = upgrade(std::nullopt); r.status != 200)
            spdlog::error("upgrade (SIGUSR2) refused: {}", r.error);
        return;
    }
    if (draining_) {
        // A second stop signal: stop waiting for streams.
        spdlog::warn("second stop signal: closing every connection now");
        drain_deadline_ = std::chrono::steady_clock::now();
        return;
    }
    begin_shutdown();
}

void server::on_reload_signal()
{
    if (const auto r = reload(); r.status != 200)
        spdlog::error("reload failed, keeping the running configuration: {}", r.error);
}

admin::result server::reload()
{
    spdlog::info("reloading {}", config_path_);
    service_.reloading();
    auto previous_state = state_;
    auto previous_tls = tls_;
    try {
        auto next = std::make_shared<const config::configuration>(config::load_file(config_path_));
        // New handshakes use the new certificates; established connections keep the context
        // they were made with (their SSL objects hold a reference to it). A bad file fails the
        // whole reload, so the running certificates stay.
        tls_ = net::build_tls_contexts(*next);
        if (next->listeners.size() != config_->listeners.size() ||
            !std::equal(next->listeners.begin(), next->listeners.end(), config_->listeners.begin(),
                        [](const auto& a, const auto& b) { return a.address == b.address; }))
            spdlog::warn("reload: listener changes take effect at the next restart or upgrade");
        // Runtime changes win over the file for pools that still exist; with none, the file
        // is the whole truth.
        state_ = operator_state_ ? runtime::reconcile(state_, *next) : runtime::initial_state(*next);
        publish(next);
        spdlog::set_level(spdlog::level::from_str(next->proxy.log_level));
        config_ = std::move(next);
        spdlog::info("reload done");
        service_.reloaded();
        return admin::result::ok({{"reloaded", true}});
    } catch (const std::exception& e) {
        state_ = std::move(previous_state);
        tls_ = std::move(previous_tls);
        service_.reloaded(e.what());
        return admin::result::fail(400, e.what());
    }
}

void server::begin_shutdown()
{
    draining_ = true;
    service_.stopping();
    spdlog::info("draining: not accepting, waiting up to {} for {} connection(s)",
                 config::format_duration(config_->proxy.drain_timeout), workers_->connection_count());
    workers_->begin_drain();
    drain_deadline_ = std::chrono::steady_clock::now() + config_->proxy.drain_timeout;
    poll_drain();
}

void server::poll_drain()
{
    for (auto& f : forwarders_)
        f->flush(); // deltas the socket could not take at once
    const auto open = workers_->connection_count();
    if (open == 0)
        return finish_shutdown();
    if (successor_pid_ != 0 && std::chrono::steady_clock::now() >= next_drain_report_) {
        // After a hand-over nobody can ask this process for its status any more: say it.
        spdlog::info("upgrade: {} connection(s) still open here", open);
        next_drain_report_ = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    }
    if (std::chrono::steady_clock::now() >= drain_deadline_ && !aborting_) {
        spdlog::warn("drain timeout: closing {} connection(s)", open);
        aborting_ = true;
        workers_->abort_all();
    }
    drain_timer_.expires_after(drain_poll_interval);
    drain_timer_.async_wait([this](boost::system::error_code ec) {
        if (!ec)
            poll_drain();
    });
}

void server::finish_shutdown()
{
    service_.stop();
    workers_->stop();
    if (status_)
        status_->close();
    if (admin_)
        admin_->close();
    if (health_)
        health_->stop();
    drain_watch_timer_.cancel();
    admin_grace_timer_.cancel();
    signals_.cancel();
    drain_timer_.cancel();
    expiry_timer_.cancel();
    // The signal handler that got us here re-arms its wait after returning; stop explicitly.
    control_.stop();
}

} // namespace turnout
