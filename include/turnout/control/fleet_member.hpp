#pragma once
// This instance as a member of a fleet that shares etcd: a lease of [runtime] etcd_lease_ttl
// (granted once etcd answers, kept alive every third of its TTL) carries the rollout leader
// key and this instance's published figures, so both vanish when the instance dies. The
// leader key, PREFIX "leader", is taken by a transaction that succeeds only while it is
// absent; the others hear of its delete through the store's watch and campaign again. Whoever
// leads runs the fleet's rollouts (control/rollout_driver), the others only follow them.
// Runs on the control thread; every request is asynchronous but the revoke at stop.

#include "turnout/config/config.hpp"
#include "turnout/control/etcd_client.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>

#include <cstdint>
#include <map>
#include <string>

namespace turnout::control {

class fleet_member {
public:
    fleet_member(boost::asio::io_context& io, etcd::client& client, const config::runtime_config& runtime);

    /// Grants the lease and campaigns (retrying while etcd is away).
    void start();
    /// At shutdown or after a hand-over: the lease is revoked, so the leader key (when this
    /// instance held it) and the figures go at once instead of after the TTL.
    void stop();

    const std::string& instance() const noexcept { return instance_; }
    bool leading() const noexcept { return leading_; }
    /// The leading instance as last seen ("" while nobody is known to lead).
    const std::string& leader() const noexcept { return leader_; }
    const std::string& leader_key() const noexcept { return leader_key_; }

    /// A change of the leader key, from the store's watch.
    void on_leader_event(bool deleted, const etcd::key_value& kv);

    /// Puts this instance's figures (control/fleet_figures' JSON) under PREFIX
    /// "figures/INSTANCE", attached to the lease. Nothing while no lease is held.
    void publish(std::string figures);
    /// Reads every other instance's published figures; figures() has them once etcd answered.
    void refresh_figures();
    /// Instance name → its last published figures (this instance's own left out).
    const std::map<std::string, std::string>& figures() const noexcept { return figures_; }

private:
    void do_grant();
    void do_keepalive();
    void campaign();
    void on_campaign(std::string error, std::string body);
    void lead();
    void lose(const std::string& why);

    boost::asio::io_context& io_;
    etcd::client& client_;
    std::string instance_;
    std::string leader_key_;
    std::string figures_prefix_;
    std::int64_t ttl_s_;
    std::int64_t lease_ = 0; // 0: none held
    bool leading_ = false;
    bool campaigning_ = false;
    bool refreshing_ = false;
    bool publishing_ = false;
    bool stopped_ = false;
    std::string leader_;
    std::string last_error_; // said once per kind of failure
    std::map<std::string, std::string> figures_;
    boost::asio::steady_timer timer_;
};

/// [runtime] instance_name, or "HOSTNAME:PID".
std::string instance_name(const config::runtime_config& runtime);

} // namespace turnout::control
