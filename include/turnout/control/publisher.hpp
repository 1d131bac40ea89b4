#pragma once
// The running configuration and runtime state, and the one way they reach the workers: built
// into a snapshot (backend addresses resolved here, on the control plane) and published.
// commit() is the one path of an operator's change — store first, then publish — whatever
// operation decided it; a reload replaces the configuration under the same rules.

#include "turnout/admin/control.hpp"
#include "turnout/config/config.hpp"
#include "turnout/control/state_store.hpp"
#include "turnout/health/health_checker.hpp"
#include "turnout/net/tls_context.hpp"
#include "turnout/runtime/discovered.hpp"
#include "turnout/runtime/runtime_state.hpp"
#include "turnout/runtime/shared_state.hpp"

#include <boost/asio/io_context.hpp>

#include <cstdint>
#include <memory>

namespace turnout::control {

class publisher {
public:
    /// tls: the contexts built from config (net::build_tls_contexts). io: the control thread's,
    /// where a shared store ([runtime] store = "etcd") follows the fleet's changes.
    publisher(boost::asio::io_context& io, runtime::shared_state& shared,
              std::shared_ptr<const config::configuration> config, net::tls_contexts tls);

    const config::configuration& config() const noexcept { return *config_; }
    const runtime::runtime_state& state() const noexcept { return state_; }
    /// The prober to tell of each publication (null until it exists).
    void set_health(health::health_checker* h) noexcept { health_ = h; }
    /// What DNS discovery found, read by every build from then on (null: nothing yet).
    void set_discovered(const runtime::discovered_sets* found) noexcept { discovered_ = found; }

    /// The stored state reconciled with the configuration, or the configuration's own.
    void load_state();
    /// Builds and publishes the snapshot of the configuration and state in force. Throws
    /// config::config_error (a backend that does not resolve, an unreadable key file).
    void publish();
    /// Builds next's snapshot, stores next, then publishes it and makes it current. 400 when
    /// its snapshot cannot be built, 500 when it cannot be stored, 409/503 when a shared store
    /// refuses it (changed by another instance / unreachable); then nothing changed.
    admin::result commit(runtime::runtime_state next);
    /// From run() on: states committed by other instances are put in force here as they come.
    void follow_store();
    /// At shutdown or after a hand-over.
    void stop_store() { store_->stop(); }
    store_health store_status() const { return store_->health(); }
    /// This instance in a fleet; null with a file store.
    fleet_member* fleet() const noexcept { return store_->fleet(); }
    /// A reload: the next configuration, with the TLS contexts built from it. The runtime
    /// state follows it (reconciled once an operator changed something). Throws, changing
    /// nothing, when the snapshot cannot be built.
    void replace(std::shared_ptr<const config::configuration> next, net::tls_contexts tls);

    /// Unix time in ms (drain deadlines are wall clock: they survive a restart).
    static std::int64_t unix_ms();

private:
    void publish(std::shared_ptr<const config::configuration> config);
    std::shared_ptr<runtime::snapshot> build(std::shared_ptr<const config::configuration> config) const;
    void install(std::shared_ptr<runtime::snapshot> next);
    /// A state another instance committed: reconciled with this configuration and published.
    void take_committed(runtime::runtime_state committed);

    boost::asio::io_context& io_;
    runtime::shared_state& shared_;
    std::shared_ptr<const config::configuration> config_;
    net::tls_contexts tls_; // of config_; swapped whole by a reload whose files all load
    runtime::runtime_state state_;
    std::unique_ptr<state_store> store_;
    /// An operator changed something (now, or in a stored state loaded at start): from then on
    /// the runtime state wins over the configuration's weights; before, the file rules.
    bool operator_state_ = false;
    health::health_checker* health_ = nullptr;
    const runtime::discovered_sets* discovered_ = nullptr;
};

} // namespace turnout::control
