#pragma once
// The runtime state of a fleet, in etcd: one key, PREFIX "state", holding the state file's
// JSON. A change is a compare-and-swap on the key's mod_revision that the state in force here
// came from (store_refused 409 when another instance changed it first, 503 while etcd is
// unreachable); a watch on the prefix brings every other instance's change here, in revision
// order. The local state file caches the last state seen: a start while etcd is down serves
// from it. On any lost connection, the follow loop re-reads the key (that covers a compacted
// revision too) and watches again from there. The watch covers PREFIX "leader" to PREFIX
// "state" — the leader key goes to the fleet member — but not PREFIX "figures/", which every
// instance writes every interval: only the leader reads those, when it needs them.

#include "turnout/config/config.hpp"
#include "turnout/control/etcd_client.hpp"
#include "turnout/control/fleet_member.hpp"
#include "turnout/control/state_store.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>

#include <cstdint>
#include <memory>
#include <string>

namespace turnout::control {

class etcd_store final : public state_store {
public:
    etcd_store(boost::asio::io_context& io, const config::runtime_config& runtime, std::string cache_path);

    std::optional<runtime::runtime_state> load() override;
    void save(const runtime::runtime_state& state) override;
    store_health health() const override { return {"etcd", connected_}; }
    void follow(changed_handler changed) override;
    void stop() override;
    fleet_member* fleet() noexcept override { return &member_; }

    /// The key holding the state.
    const std::string& key() const noexcept { return key_; }

private:
    void do_sync();
    void on_range(std::string error, std::string body);
    void do_watch(std::int64_t from_revision);
    void on_watch_message(const boost::json::value& v);
    void on_lost(const std::string& why);
    /// A state committed at kv.mod_revision: cached, then put in force (when it is newer).
    void take(const etcd::key_value& kv);
    void cache(const runtime::runtime_state& state);

    etcd::client client_;
    fleet_member member_;
    std::unique_ptr<state_store> cache_;
    std::string prefix_;
    std::string key_;
    std::int64_t applied_ = 0; // mod_revision of the state in force here (0: the key is absent)
    bool connected_ = false;
    bool stopped_ = false;
    bool outage_logged_ = false;
    changed_handler changed_;
    boost::asio::steady_timer retry_timer_;
};

/// The store [runtime] names: the state file, or etcd with the state file as its cache.
std::unique_ptr<state_store> make_store(const config::configuration& config, boost::asio::io_context& io);

} // namespace turnout::control
