#include "turnout/control/publisher.hpp"

#include "turnout/control/etcd_store.hpp"
#include "turnout/log/logging.hpp"
#include "turnout/net/endpoint.hpp"

#include <spdlog/spdlog.h>

#include <chrono>

namespace turnout::control {

publisher::publisher(boost::asio::io_context& io, runtime::shared_state& shared,
                     std::shared_ptr<const config::configuration> config, net::tls_contexts tls)
    : io_(io), shared_(shared), config_(std::move(config)), tls_(std::move(tls)), store_(make_store(*config_, io_))
{
}

void publisher::follow_store()
{
    store_->follow([this](runtime::runtime_state committed) { take_committed(std::move(committed)); });
}

void publisher::take_committed(runtime::runtime_state committed)
{
    auto previous = std::move(state_);
    state_ = runtime::reconcile(committed, *config_);
    try {
        publish(config_);
        operator_state_ = true;
    } catch (const std::exception& e) {
        // Another instance's backends do not build here (a name that does not resolve on this
        // host): this instance keeps serving what it had, and says so.
        state_ = std::move(previous);
        spdlog::error("the runtime state committed by another instance cannot be put in force here: {}", e.what());
    }
}

std::int64_t publisher::unix_ms()
{
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
}

void publisher::load_state()
{
    state_ = runtime::initial_state(*config_);
    if (const auto saved = store_->load()) {
        state_ = runtime::reconcile(*saved, *config_);
        operator_state_ = true;
    }
}

void publisher::publish()
{
    publish(config_);
}

void publisher::publish(std::shared_ptr<const config::configuration> config)
{
    install(build(std::move(config)));
}

std::shared_ptr<runtime::snapshot> publisher::build(std::shared_ptr<const config::configuration> config) const
{
    const auto format = log::parse_access_format(config->proxy.access_log_format).value_or(log::access_format::turnout);
    auto access_log = log::make_access_log(config->proxy.access_log, format == log::access_format::turnout);
    auto next = runtime::build_snapshot(std::move(config), state_, unix_ms(), shared_.backends, net::resolve,
                                             discovered_);
    next->access_log = std::move(access_log);
    next->access_format = format;
    next->listen_tls = tls_.listeners;
    for (auto& u : next->upstreams)
        for (auto& p : u.pools)
            for (const auto& pc : u.config.pools)
                if (pc.name == p.name)
                    p.tls = tls_.for_pool(pc);
    return next;
}

void publisher::install(std::shared_ptr<runtime::snapshot> next)
{
    runtime::mark_in_service(*next, shared_.backends);
    if (health_)
        health_->update(*next);
    shared_.snapshots.publish(std::move(next));
    // Sessions of backends that left are gone with their process: forget them (requests for
    // them answer 404 either way).
    shared_.backends.for_each([this](upstream::backend& b) {
        if (!b.in_service())
            shared_.sessions.erase_owner(b.id());
    });
}

admin::result publisher::commit(runtime::runtime_state next)
{
    // Built before it is stored: a shared store must never hold a state that does not build
    // (every instance would then refuse it), and a file one is spared the undo.
    std::shared_ptr<runtime::snapshot> built;
    auto previous = std::move(state_);
    state_ = std::move(next);
    try {
        built = build(config_);
    } catch (const std::exception& e) {
        state_ = std::move(previous);
        return admin::result::fail(400, e.what());
    }
    try {
        store_->save(state_);
    } catch (const store_refused& e) {
        state_ = std::move(previous);
        return admin::result::fail(e.status(), e.what());
    } catch (const std::exception& e) {
        state_ = std::move(previous);
        return admin::result::fail(
            500, std::string("the change was not applied: cannot write the state file: ") + e.what());
    }
    install(std::move(built));
    operator_state_ = true;
    return admin::result::ok();
}

void publisher::replace(std::shared_ptr<const config::configuration> next, net::tls_contexts tls)
{
    auto previous_state = state_;
    auto previous_tls = std::move(tls_);
    tls_ = std::move(tls);
    try {
        // Runtime changes win over the file for pools that still exist; with none, the file
        // is the whole truth.
        state_ = operator_state_ ? runtime::reconcile(state_, *next) : runtime::initial_state(*next);
        publish(next);
    } catch (...) {
        state_ = std::move(previous_state);
        tls_ = std::move(previous_tls);
        throw;
    }
    if (next->runtime.store != config_->runtime.store || next->runtime.etcd_endpoints != config_->runtime.etcd_endpoints ||
        next->runtime.etcd_prefix != config_->runtime.etcd_prefix ||
        (next->runtime.store == config::store_kind::etcd && next->proxy.state_file != config_->proxy.state_file))
        spdlog::warn("[runtime] and, with etcd, state_file changes take effect at the next restart");
    else if (next->proxy.state_file != config_->proxy.state_file)
        store_ = make_file_store(next->proxy.state_file);
    config_ = std::move(next);
}

} // namespace turnout::control
