#pragma once
// DNS discovery (SPEC.md "Fleets"): every dns:NAME:PORT and srv:_service._proto.NAME a pool
// lists is resolved on the control thread (control::dns_resolver) and asked again at its
// records' TTL, bounded by [proxy] dns_min_interval and dns_max_interval. What changed is
// put in force the way every backend change is — a new snapshot built by the publisher and
// published whole — with two rules of its own: a new address joins unhealthy until its
// probes pass (when its upstream has active checks), and a vanished one is drained, keeping
// its sessions until drain_timeout, then leaves. A failed resolution keeps the last good set
// and says so (status, metrics, the log); the name is asked again after dns_min_interval.
//
// The sets are this process's own: they are not committed to the runtime store (with etcd,
// each instance asks DNS itself, as each would resolve a host name in the configuration).
// An operator's drain of a discovered address is runtime state like any drain (committed,
// shared by a fleet); discovery only ends it once the address has left every name of its
// pool, so that an address handed later to another process starts undrained.

#include "turnout/config/config.hpp"
#include "turnout/control/dns_resolver.hpp"
#include "turnout/control/publisher.hpp"
#include "turnout/metrics/proxy_metrics.hpp"
#include "turnout/net/worker_pool.hpp"
#include "turnout/runtime/discovered.hpp"
#include "turnout/runtime/shared_state.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/json/object.hpp>

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace turnout::control {

class dns_discovery {
public:
    dns_discovery(boost::asio::io_context& control, publisher& p, runtime::shared_state& shared,
                  net::worker_pool& workers);
    ~dns_discovery();

    /// At start-up, before the session table is restored: every name of the configuration
    /// asked once, waiting at most bound in all, so that sessions pinned to discovered
    /// addresses find their backend. A name that fails or does not answer in time is logged
    /// and asked again once serving; nothing here throws.
    void resolve_before_serving(config::duration bound);
    /// Resolves every name of the configuration in force now (those resolve_before_serving
    /// answered: at their TTL), then each at its own pace.
    void start();
    /// After a reload: names that appeared are resolved now, those gone are forgotten (their
    /// addresses leave with them), a changed resolver is used from now on.
    void update();
    void stop();

    /// The resolver asked and, per name, what it resolved to, when, and the last error
    /// (GET /v1/status "discovery").
    boost::json::object status() const;
    /// The same for /metrics.
    std::vector<metrics::discovery_figures> figures() const;

private:
    struct name_state;

    void follow_configuration();
    void do_resolve(const std::string& text);
    void on_resolved(const std::string& text, dns_resolution r);
    /// Applies a good answer: joins, returns and departures. True when the set changed.
    bool apply(name_state& n, runtime::discovered_set& set, const std::vector<boost::asio::ip::tcp::endpoint>& found);
    void join_unhealthy(const name_state& n, const runtime::discovered_address& a);
    void schedule(name_state& n, config::duration delay);
    void do_watch_leaving();
    void on_leaving_deadline();
    /// Ends the operator drains of addresses that left every name of their pool (runtime
    /// state: committed like an admin change). Only for pools whose names all answered.
    void forget_stale_drains();
    bool in_flight() const;
    bool checked(const name_state& n) const;
    void publish();

    boost::asio::io_context& io_;
    publisher& publisher_;
    runtime::shared_state& shared_;
    net::worker_pool& workers_;
    std::optional<config::host_port> server_; // of resolver_
    std::unique_ptr<dns_resolver> resolver_;
    std::map<std::string, std::unique_ptr<name_state>, std::less<>> names_;
    runtime::discovered_sets sets_; // what the publisher builds from
    boost::asio::steady_timer leaving_timer_;
    bool stopped_ = false;
    bool serving_ = false; // start() ran: the store is followed, commits are allowed
};

} // namespace turnout::control
