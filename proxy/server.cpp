#include "turnout/server.hpp"

#include "turnout/net/io_backend.hpp"

#include "turnout/control/pool_facts.hpp"
#include "turnout/control/rollout_operations.hpp"
#include "turnout/control/rollout_status.hpp"

#include "turnout/control/status_report.hpp"
#include "turnout/net/downstream_connection.hpp"
#include "turnout/log/logging.hpp"
#include "turnout/metrics/proxy_metrics.hpp"
#include "turnout/net/endpoint.hpp"
#include "turnout/net/listener.hpp"
#include "turnout/nginx/loader.hpp"
#include "turnout/version.hpp"

#include <boost/asio/post.hpp>
#include <spdlog/spdlog.h>

#include <csignal>
#include <random>
#include <thread>
#include <unistd.h>

namespace turnout {

// Inside server, `control` names its base class admin::control.
namespace ctrl = ::turnout::control;

namespace {

namespace asio = boost::asio;
constexpr auto drain_poll_interval = std::chrono::milliseconds(50);
constexpr auto admin_grace = std::chrono::seconds(1);
/// How long start-up waits for DNS discovery's first answers: about what one query may take
/// with the resolver's retries (dns_resolver: 1 s, 2 tries), an SRV name's targets after it.
constexpr auto first_resolution_bound = std::chrono::seconds(3);

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

std::uint64_t fresh_seed()
{
    std::random_device rd;
    return (std::uint64_t{rd()} << 32) ^ rd();
}

} // namespace

void check_configuration(const std::string& config_path)
{
    auto config = std::make_shared<const config::configuration>(nginx::load_configuration(config_path));
    upstream::backend_registry registry;
    runtime::build_snapshot(config, registry, net::resolve); // resolves every backend, reads key files
    net::build_tls_contexts(*config);                        // reads and matches certificates and keys
    for (const auto& l : config->listeners)
        resolve_or_throw(*config, l.address);
}

server::server(std::string config_path, launch_info launch)
    : loaded_(std::make_shared<const config::configuration>(nginx::load_configuration(config_path))),
      loaded_tls_(net::build_tls_contexts(*loaded_)), upgrader_(control_, std::move(launch))
{
    log::setup_error_log(loaded_->proxy.log_level);
    std::optional<session::saved_table> saved;
    if (upgrader_.taking_over()) {
        saved = upgrader_.take_over(); // the running table, not the (older) file
    } else if (!loaded_->proxy.state_file.empty()) {
        try {
            saved = session::load_table(session::session_file_for(loaded_->proxy.state_file));
        } catch (const std::exception& e) {
            spdlog::error("{}; starting with an empty session table", e.what());
        }
    }
    // Keys are hashes: a restored table must keep hashing with the seed it was saved with.
    shared_ = std::make_unique<runtime::shared_state>(saved ? saved->seed : fresh_seed());
    upgrader_.attach(*shared_);
    publisher_ = std::make_unique<ctrl::publisher>(control_, *shared_, loaded_, std::move(loaded_tls_));
    reloader_ = std::make_unique<ctrl::reloader>(std::move(config_path), *publisher_, service_);
    publisher_->load_state();
    publisher_->publish();
    workers_ = std::make_unique<net::worker_pool>(worker_count(loaded_->proxy), *shared_);
    drains_ = std::make_unique<ctrl::drain_deadlines>(control_, *publisher_, *shared_, *workers_);
    rollouts_ = std::make_unique<ctrl::rollout_driver>(
        control_, *publisher_, *shared_,
        [this](std::string_view upstream, std::string_view pool) { drains_->reset(upstream, pool); });
    discovery_ = std::make_unique<ctrl::dns_discovery>(control_, *publisher_, *shared_, *workers_);
    // Discovered backends exist only once DNS answered: ask before restoring the sessions
    // pinned to them (bounded: a silent resolver delays the start by that much at most).
    discovery_->resolve_before_serving(first_resolution_bound);
    if (saved)
        restore_sessions(*saved);
}

server::~server()
{
    upgrader_.close_unadopted();
    if (workers_) {
        workers_->abort_all();
        workers_->stop();
        workers_->join();
    }
}

void server::restore_sessions(const session::saved_table& saved)
{
    const auto now = shared_->now_s();
    std::size_t restored = 0;
    for (const auto& s : saved.sessions) {
        const auto b = shared_->backends.find(s.owner);
        if (!b || !b->in_service())
            continue; // its backend left the configuration while we were down
        shared_->sessions.restore({s.key, now - std::min(s.age_s, now), b->id(), 0});
        ++restored;
    }
    spdlog::info("restored {} of {} saved session(s)", restored, saved.sessions.size());
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
        upgrader_.tick();
        if (upgrader_.successor() != 0)
            return do_expire_sessions();
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
    if (publisher_->config().proxy.state_file.empty() || upgrader_.successor() != 0)
        return;
    const auto path = session::session_file_for(publisher_->config().proxy.state_file);
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
    signals_.install();
    bind_listeners();
    start_status_server();
    upgrader_.close_unadopted();
    start_admin_server();
    health_ = std::make_unique<health::health_checker>(control_, *shared_);
    publisher_->set_health(health_.get());
    health_->update(*shared_->snapshots.load());
    signals_.start({[this] { on_stop_signal(); },
                    [this] {
                        if (const auto r = reload(); r.status != 200)
                            spdlog::error("reload failed, keeping the running configuration: {}", r.error);
                    },
                    [this] {
                        if (const auto r = upgrade(std::nullopt); r.status != 200)
                            spdlog::error("upgrade (SIGUSR2) refused: {}", r.error);
                    },
                    [] { spdlog::info("SIGUSR1: reopened {} access log file(s)", log::reopen_log_files()); }});
    do_expire_sessions();
    publisher_->follow_store();
    drains_->start();
    rollouts_->start();
    discovery_->start(); // after the health checker: addresses found join with their probes
    upgrader_.link_predecessor();
    workers_->start();
    // Once serving: `turnout -s` must not reach a process that cannot take its signal yet.
    pid_file_ = std::make_unique<ctrl::pid_file>(publisher_->config().proxy.pid_file);
    spdlog::info("turnout {} running with {} worker(s) as pid {} on {}", version(), workers_->size(), ::getpid(),
                 net::to_string(net::built_io_backend()));
    if (const auto note = net::io_backend_note(); !note.empty())
        spdlog::warn("running on epoll (turnout-epoll): {}", note);
    service_.set_note([this] { return store_note(); });
    // A successor names itself the service's main process (MAINPID=) with its READY=1.
    service_.ready([this] { return service::count_live(*workers_, *shared_); }, upgrader_.taking_over());
    if (upgrader_.taking_over())
        upgrader_.announce_ready();
    control_.run();
    workers_->join();
    save_sessions();
    pid_file_.reset();
    spdlog::info("turnout stopped");
    return 0;
}

void server::bind_listeners()
{
    for (std::size_t index = 0; index < publisher_->config().listeners.size(); ++index) {
        const auto& l = publisher_->config().listeners[index];
        const auto handed = upgrader_.adopt(upgrade::listener_kind::proxy, l.address.text);
        if (!handed.empty()) {
            // Every handed-over socket keeps accepting, on some worker: closing one would
            // drop the connections waiting in its queue. Workers beyond them bind afresh.
            std::optional<asio::ip::tcp::endpoint> bound;
            const auto n = std::max(handed.size(), workers_->size());
            for (std::size_t i = 0; i < n; ++i) {
                auto* worker = &(*workers_)[i % workers_->size()];
                auto handler = [worker, index](asio::ip::tcp::socket socket) {
                    net::serve(*worker, std::move(socket), index);
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
        auto endpoint = resolve_or_throw(publisher_->config(), l.address);
        // The first worker binds (port 0 picks a port); the others share that exact port
        // through SO_REUSEPORT.
        for (auto& w : *workers_) {
            auto* worker = w.get();
            auto listener = std::make_shared<net::listener>(
                worker->io(), endpoint, [worker, index](asio::ip::tcp::socket socket) {
                    net::serve(*worker, std::move(socket), index);
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
    if (!publisher_->config().proxy.status_address)
        return;
    const auto handed =
        upgrader_.adopt(upgrade::listener_kind::status, publisher_->config().proxy.status_address->text);
    if (!handed.empty()) {
        status_ = std::make_unique<admin::status_server>(control_, handed.front(), *this);
        for (std::size_t i = 1; i < handed.size(); ++i)
            ::close(handed[i]);
    } else {
        const auto endpoint =
            resolve_or_throw(publisher_->config(), *publisher_->config().proxy.status_address);
        status_ = std::make_unique<admin::status_server>(control_, endpoint, *this);
    }
    status_->start();
    spdlog::info("status listening on {}", net::to_string(status_->local_endpoint()));
}

void server::start_admin_server()
{
    if (publisher_->config().proxy.admin_socket.empty())
        return;
    admin_ = std::make_unique<admin::admin_server>(control_, publisher_->config().proxy.admin_socket, *this);
    admin_->start();
    spdlog::info("admin socket at {}", publisher_->config().proxy.admin_socket);
}

// ---- admin::control --------------------------------------------------------------------------

boost::json::object server::status() const
{
    const auto uptime =
        std::chrono::duration_cast<std::chrono::seconds>(std::chrono::steady_clock::now() - started_);
    auto doc = ctrl::status_report(*shared_->snapshots.load(), publisher_->state(),
                                   {uptime.count(), static_cast<std::int64_t>(::getpid()), draining_.load(),
                                    workers_ ? workers_->connection_count() : 0, shared_->sessions.size()});
    const auto store = publisher_->store_status();
    doc["store"] = {{"kind", store.kind}, {"connected", store.connected}};
    doc["discovery"] = discovery_->status();
    if (const auto* fleet = publisher_->fleet())
        doc["fleet"] = {{"instance", fleet->instance()}, {"leader", fleet->leader()}, {"leading", fleet->leading()}};
    return doc;
}

std::string server::store_note() const
{
    const auto* fleet = publisher_->fleet();
    if (!fleet)
        return {}; // a local state file has no state worth a word
    const auto store = publisher_->store_status();
    std::string note = "store " + std::string(store.kind) +
                       (store.connected ? " connected" : " disconnected (serving cached state)");
    if (fleet->leading())
        note += ", leading the rollouts";
    return note;
}

std::string server::metrics() const
{
    const auto uptime =
        std::chrono::duration_cast<std::chrono::seconds>(std::chrono::steady_clock::now() - started_);
    const auto [client_buffers, backend_buffers] =
        workers_ ? workers_->buffers_held() : std::pair<std::size_t, std::size_t>{};
    const auto discovery = discovery_->figures();
    return metrics::render(*shared_->snapshots.load(),
                           {uptime.count(), draining_.load(), workers_ ? workers_->connection_count() : 0,
                            client_buffers, backend_buffers, shared_->sessions.size(), &shared_->edge.counted,
                            publisher_->store_status().connected, &discovery},
                           {&publisher_->state(), &rollouts_->verdicts(), ctrl::pool_tool_names});
}

template <class Decide> admin::result server::change(std::string_view upstream, Decide decide)
{
    const auto live = shared_->snapshots.load();
    const ctrl::operations ops(publisher_->state(), *live, publisher_->config());
    return commit(decide(ops), upstream);
}

admin::result server::commit(const ctrl::decision& d, std::string_view upstream)
{
    if (!d.ok())
        return admin::result::fail(d.status, d.error);
    spdlog::info("admin: {}", d.summary);
    if (auto r = publisher_->commit(d.next); r.status != 200)
        return r;
    const auto snapshot = shared_->snapshots.load();
    if (const auto* u = snapshot->find(upstream))
        return admin::result::ok(ctrl::upstream_status(*u, publisher_->state()));
    return admin::result::ok();
}

template <class Decide>
admin::result server::manual_change(std::string_view upstream, std::string_view what, Decide decide)
{
    return change(upstream, [&](const ctrl::operations& ops) {
        auto d = decide(ops);
        if (d.ok())
            ctrl::rollout_operations::pause_for_manual_change(d.next, upstream, what, ctrl::publisher::unix_ms());
        return d;
    });
}

admin::result server::set_weights(std::string_view upstream,
                                  const std::vector<std::pair<std::string, std::int64_t>>& weights, bool force)
{
    return manual_change(upstream, "weights change",
                         [&](const ctrl::operations& ops) { return ops.set_weights(upstream, weights, force); });
}

admin::result server::switch_to(std::string_view upstream, std::string_view pool, bool force)
{
    return manual_change(upstream, "switch",
                         [&](const ctrl::operations& ops) { return ops.switch_to(upstream, pool, force); });
}

admin::result server::rollback(std::string_view upstream)
{
    return manual_change(upstream, "rollback", [&](const ctrl::operations& ops) { return ops.rollback(upstream); });
}

admin::result server::watch_switch(std::string_view upstream, std::string_view pool, bool force,
                                   config::duration watch)
{
    const auto live = shared_->snapshots.load();
    const ctrl::rollout_operations ops(publisher_->state(), *live, publisher_->config());
    const auto* current = publisher_->state().find(upstream);
    const auto* old_pool = current ? ctrl::rollout_operations::default_baseline(*current, pool) : nullptr;
    const auto before = old_pool ? rollouts_->lifetime_figures(upstream, old_pool->name) : runtime::pool_figures{};
    return commit(ops.watch_switch(upstream, pool, force, watch.count(), before, ctrl::publisher::unix_ms()), upstream);
}

admin::result server::start_rollout(std::string_view upstream, const ctrl::rollout_request& r)
{
    const auto live = shared_->snapshots.load();
    const ctrl::rollout_operations ops(publisher_->state(), *live, publisher_->config());
    auto result = commit(ops.start(upstream, r, ctrl::publisher::unix_ms()), upstream);
    if (result.status == 200)
        drains_->reset(upstream, r.pool); // started undrained
    return result;
}

admin::result server::rollout(std::string_view upstream)
{
    const auto* u = publisher_->state().find(upstream);
    if (!u)
        return admin::result::fail(404, "no upstream named '" + std::string(upstream) + "'");
    boost::json::object body{{"upstream", u->name}, {"rollout", ctrl::rollout_status(u->rollout)}};
    return admin::result::ok(std::move(body));
}

admin::result server::rollout_command(std::string_view upstream, ctrl::rollout_command c)
{
    const auto live = shared_->snapshots.load();
    const ctrl::rollout_operations ops(publisher_->state(), *live, publisher_->config());
    auto result = commit(ops.command(upstream, c, ctrl::publisher::unix_ms()), upstream);
    if (result.status == 200 && c == ctrl::rollout_command::abort)
        if (const auto* u = publisher_->state().find(upstream); u && u->rollout)
            drains_->reset(upstream, u->rollout->pool);
    return result;
}

admin::result server::drain(std::string_view upstream, std::string_view pool,
                            std::optional<config::duration> timeout)
{
    auto r = change(upstream, [&](const ctrl::operations& ops) {
        return ops.drain(upstream, pool, timeout, ctrl::publisher::unix_ms());
    });
    if (r.status == 200)
        drains_->reset(upstream, pool);
    return r;
}

admin::result server::undrain(std::string_view upstream, std::string_view pool)
{
    auto r = change(upstream, [&](const ctrl::operations& ops) { return ops.undrain(upstream, pool); });
    if (r.status == 200)
        drains_->reset(upstream, pool);
    return r;
}

admin::result server::drain_backend(std::string_view upstream, std::string_view pool, std::string_view address,
                                    std::optional<config::duration> timeout)
{
    auto r = change(upstream, [&](const ctrl::operations& ops) {
        return ops.drain_backend(upstream, pool, address, timeout, ctrl::publisher::unix_ms());
    });
    if (r.status == 200)
        drains_->reset(upstream, pool, address);
    return r;
}

admin::result server::undrain_backend(std::string_view upstream, std::string_view pool, std::string_view address)
{
    auto r = change(upstream,
                    [&](const ctrl::operations& ops) { return ops.undrain_backend(upstream, pool, address); });
    if (r.status == 200)
        drains_->reset(upstream, pool, address);
    return r;
}

admin::result server::set_backends(std::string_view upstream, std::string_view pool,
                                   const std::vector<std::string>& addresses)
{
    const auto live = shared_->snapshots.load();
    const ctrl::operations ops(publisher_->state(), *live, publisher_->config());
    auto d = ops.set_backends(upstream, pool, addresses);
    if (!d.ok())
        return commit(d, upstream);
    // DNS here, on the control plane: the snapshot is then built from what resolved.
    std::vector<std::pair<std::string, boost::asio::ip::tcp::endpoint>> unseen;
    for (const auto& text : addresses) {
        boost::system::error_code ec;
        const auto endpoint = net::resolve(*config::parse_host_port(text), ec);
        if (ec)
            return admin::result::fail(400, "cannot resolve backend " + text + ": " + ec.message());
        if (!shared_->backends.find(text))
            unseen.emplace_back(text, endpoint);
    }
    // With active checks on, a backend never seen before takes nothing until a probe passed:
    // nothing goes to an environment that was never verified.
    const auto* configured = publisher_->config().find_upstream(upstream);
    if (configured && configured->health && configured->health->kind != config::health_kind::none)
        for (const auto& [text, endpoint] : unseen)
            shared_->backends.obtain(text, endpoint)->set_healthy(false);
    return commit(d, upstream);
}

admin::result server::reload()
{
    auto result = reloader_->reload();
    if (result.status == 200)
        discovery_->update(); // names added or removed, another resolver
    return result;
}

admin::result server::upgrade(const std::optional<std::string>& binary)
{
    if (draining_ && upgrader_.successor() == 0)
        return admin::result::fail(409, "turnout is shutting down");
    auto sockets = own_listeners_;
    if (status_ && publisher_->config().proxy.status_address)
        sockets.push_back({upgrade::listener_kind::status, publisher_->config().proxy.status_address->text,
                           status_->native_handle()});
    auto r = upgrader_.hand_over(binary, sockets, *workers_);
    if (r.status == 200) {
        // After this answer is on its way: the admin socket's file belongs to the successor now.
        asio::post(control_, [this, pid = upgrader_.successor()] { retire(pid); });
    }
    return r;
}

void server::retire(pid_t successor)
{
    // The successor is the service's main process now: this one must not tell the service
    // manager it is stopping (under NotifyAccess=all that would stop the whole service).
    service_.hand_over();
    draining_ = true;
    rollouts_->stop(); // the successor runs the rollouts from the state file now
    discovery_->stop(); // and asks DNS itself
    publisher_->stop_store(); // and follows the fleet's changes
    spdlog::info(
        "upgrade: pid {} serves now; this process stops accepting and drains {} connection(s) for up to {}",
        successor, workers_->connection_count(),
        config::format_duration(publisher_->config().proxy.drain_timeout));
    // New admin clients reach the successor's socket file already; those that connected to
    // ours before it was replaced (waiting in our backlog while the hand-over ran) still get
    // an answer within a short grace, instead of a reset. close() unlinks only the socket
    // file this process created, never the successor's.
    admin_grace_timer_.expires_after(admin_grace);
    admin_grace_timer_.async_wait([this](boost::system::error_code ec) {
        if (!ec && admin_)
            admin_->close();
    });
    if (status_)
        status_->close();
    workers_->retire();
    drain_deadline_ = std::chrono::steady_clock::now() + publisher_->config().proxy.drain_timeout;
    poll_drain();
}

// ---- shutdown -------------------------------------------------------------------------------

void server::on_stop_signal()
{
    if (draining_) {
        // A second stop signal: stop waiting for streams.
        spdlog::warn("second stop signal: closing every connection now");
        drain_deadline_ = std::chrono::steady_clock::now();
        return;
    }
    begin_shutdown();
}

void server::begin_shutdown()
{
    draining_ = true;
    service_.stopping();
    spdlog::info("draining: not accepting, waiting up to {} for {} connection(s)",
                 config::format_duration(publisher_->config().proxy.drain_timeout),
                 workers_->connection_count());
    workers_->begin_drain();
    drain_deadline_ = std::chrono::steady_clock::now() + publisher_->config().proxy.drain_timeout;
    poll_drain();
}

void server::poll_drain()
{
    upgrader_.flush(); // session changes the channel could not take at once
    const auto open = workers_->connection_count();
    if (open == 0)
        return finish_shutdown();
    if (upgrader_.successor() != 0 && std::chrono::steady_clock::now() >= next_drain_report_) {
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
    if (drains_)
        drains_->stop();
    if (rollouts_)
        rollouts_->stop();
    if (discovery_)
        discovery_->stop();
    if (publisher_)
        publisher_->stop_store();
    admin_grace_timer_.cancel();
    signals_.cancel();
    drain_timer_.cancel();
    expiry_timer_.cancel();
    // The signal handler that got us here re-arms its wait after returning; stop explicitly.
    control_.stop();
}

} // namespace turnout
