#include "turnout/control/etcd_store.hpp"

#include "turnout/runtime/state_file.hpp"

#include <boost/asio/post.hpp>
#include <spdlog/spdlog.h>

namespace turnout::control {
namespace {

using namespace std::chrono_literals;

constexpr auto load_timeout = 1000ms;   // at start: etcd down must not hold the start-up long
constexpr auto commit_timeout = 2000ms; // an admin change waits this long at most
constexpr auto read_timeout = 2000ms;
constexpr auto retry_interval = 500ms;  // reconnect attempts while etcd is away

std::optional<runtime::runtime_state> decode(const etcd::key_value& kv)
{
    try {
        return runtime::from_json(kv.value);
    } catch (const std::exception& e) {
        spdlog::error("etcd: the state at {} (revision {}) is not a valid state ({}); keeping the state in force",
                      kv.key, kv.mod_revision, e.what());
        return std::nullopt;
    }
}

etcd::client_options client_options_of(const config::runtime_config& r)
{
    return {r.etcd_endpoints, r.etcd_tls,      r.etcd_ca_file,  r.etcd_cert_file,
            r.etcd_key_file,  r.etcd_username, r.etcd_password};
}

} // namespace

etcd_store::etcd_store(boost::asio::io_context& io, const config::runtime_config& runtime, std::string cache_path)
    : client_(io, client_options_of(runtime)), member_(io, client_, runtime), cache_(make_file_store(std::move(cache_path))),
      prefix_(runtime.etcd_prefix), key_(runtime.etcd_prefix + "state"), retry_timer_(io)
{
}

std::optional<runtime::runtime_state> etcd_store::load()
{
    try {
        const auto r = etcd::parse_range(client_.post("/v3/kv/range", etcd::range_request(key_), load_timeout));
        if (!r.kv) {
            spdlog::info("etcd: no fleet state at {} yet; starting from the local state", key_);
            return cache_->load();
        }
        if (auto state = decode(*r.kv)) {
            applied_ = r.kv->mod_revision;
            spdlog::info("runtime state loaded from etcd ({}, revision {})", key_, applied_);
            cache(*state);
            return state;
        }
    } catch (const std::exception& e) {
        spdlog::warn("etcd: {}; starting from the cached state, following etcd once it answers", e.what());
    }
    return cache_->load();
}

void etcd_store::save(const runtime::runtime_state& state)
{
    if (!connected_)
        throw store_refused(503, "the change was not applied: the runtime store (etcd) is unreachable; retry "
                                 "when status says store.connected is true");
    etcd::txn_result r;
    try {
        r = etcd::parse_txn(client_.post("/v3/kv/txn", etcd::compare_and_put_request(key_, runtime::to_json(state), applied_),
                                         commit_timeout));
    } catch (const std::exception& e) {
        // Sent or not, nothing is acknowledged; should it have been stored, the watch brings
        // it back once etcd answers again.
        on_lost(e.what());
        throw store_refused(503, std::string("the change was not applied: the runtime store (etcd) did not answer: ") +
                                     e.what());
    }
    if (!r.succeeded) {
        spdlog::info("etcd: the state changed since revision {} (now {}); change refused", applied_,
                     r.current ? r.current->mod_revision : 0);
        // Catch up right after this answer (the watch would, a moment later): a retry then
        // starts from the state another instance committed.
        if (r.current)
            boost::asio::post(retry_timer_.get_executor(), [this, kv = *r.current] { take(kv); });
        throw store_refused(409, "changed by another instance; retry (the change was computed from a state that "
                                 "is no longer current)");
    }
    applied_ = r.revision;
    cache(state);
}

void etcd_store::follow(changed_handler changed)
{
    changed_ = std::move(changed);
    do_sync();
    member_.start();
}

void etcd_store::stop()
{
    stopped_ = true;
    retry_timer_.cancel();
    client_.cancel_watch();
    member_.stop();
}

// (Re)connect: read the key as it is now, then watch from the revision after that read. The
// read is also the full re-read a compacted revision needs.
void etcd_store::do_sync()
{
    if (stopped_)
        return;
    client_.async_post("/v3/kv/range", etcd::range_request(key_), read_timeout,
                       [this](std::string error, std::string body) { on_range(std::move(error), std::move(body)); });
}

void etcd_store::on_range(std::string error, std::string body)
{
    if (stopped_)
        return;
    try {
        if (!error.empty())
            throw etcd::unreachable(error);
        const auto r = etcd::parse_range(body);
        if (r.kv)
            take(*r.kv);
        else if (applied_ != 0) {
            spdlog::warn("etcd: {} was deleted; keeping the state in force (the next change creates it)", key_);
            applied_ = 0;
        }
        do_watch(r.revision + 1);
    } catch (const std::exception& e) {
        on_lost(e.what());
    }
}

void etcd_store::do_watch(std::int64_t from_revision)
{
    client_.watch(
        etcd::watch_range_request(member_.leader_key(), etcd::prefix_end(key_), from_revision), [this](const boost::json::value& v) { on_watch_message(v); },
        [this](std::string error) { on_lost(error); });
}

void etcd_store::on_watch_message(const boost::json::value& v)
{
    const auto m = etcd::parse_watch_message(v); // throws protocol_error: the watch ends, then reconnects
    if (m.compact_revision > 0 || m.canceled) {
        spdlog::warn("etcd: the watch was cancelled ({}); reading the state afresh",
                     m.compact_revision > 0 ? "revision compacted to " + std::to_string(m.compact_revision)
                                            : m.cancel_reason);
        client_.cancel_watch();
        return do_sync();
    }
    if (m.created && !connected_) {
        connected_ = true;
        outage_logged_ = false;
        spdlog::info("etcd: connected; following {} (state at revision {})", prefix_, applied_);
    }
    for (const auto& e : m.events) {
        if (e.kv.key == member_.leader_key())
            member_.on_leader_event(e.deleted, e.kv);
        if (e.kv.key != key_)
            continue; // other keys are not the runtime state
        if (e.deleted) {
            spdlog::warn("etcd: {} was deleted at revision {}; keeping the state in force", key_, e.kv.mod_revision);
            applied_ = 0;
        } else {
            take(e.kv);
        }
    }
}

void etcd_store::on_lost(const std::string& why)
{
    if (stopped_)
        return;
    client_.cancel_watch();
    if (connected_ || !outage_logged_)
        spdlog::warn("etcd: {}; serving with the last state seen, admin changes refused until etcd answers", why);
    connected_ = false;
    outage_logged_ = true;
    retry_timer_.expires_after(retry_interval);
    retry_timer_.async_wait([this](boost::system::error_code ec) {
        if (!ec)
            do_sync();
    });
}

void etcd_store::take(const etcd::key_value& kv)
{
    // Revisions only grow: what is not newer than the state in force is in force already
    // (this instance's own commit, or an event a re-read already brought).
    if (kv.mod_revision <= applied_)
        return;
    auto state = decode(kv);
    applied_ = kv.mod_revision; // a bad value is skipped, not retried at every event
    if (!state)
        return;
    spdlog::info("etcd: state of revision {} in force", applied_);
    cache(*state);
    if (changed_)
        changed_(std::move(*state));
}

void etcd_store::cache(const runtime::runtime_state& state)
{
    try {
        cache_->save(state);
    } catch (const std::exception& e) {
        spdlog::error("etcd: cannot update the cached state: {}", e.what());
    }
}

std::unique_ptr<state_store> make_store(const config::configuration& config, boost::asio::io_context& io)
{
    if (config.runtime.store == config::store_kind::etcd)
        return std::make_unique<etcd_store>(io, config.runtime, config.proxy.state_file);
    return make_file_store(config.proxy.state_file);
}

} // namespace turnout::control
