#pragma once
// The process: loads the configuration, binds the listeners on every worker, runs the control
// thread and shuts down gracefully. A composition of the control plane's pieces (control/):
// it implements admin::control by asking control::operations for a decision and committing it
// through control::publisher; reloads, upgrades, signals, drain deadlines and the status
// report are each their own piece.

#include "turnout/admin/admin_server.hpp"
#include "turnout/admin/control.hpp"
#include "turnout/admin/status_server.hpp"
#include "turnout/config/config.hpp"
#include "turnout/control/dns_discovery.hpp"
#include "turnout/control/drain_deadlines.hpp"
#include "turnout/control/operations.hpp"
#include "turnout/control/pid_file.hpp"
#include "turnout/control/publisher.hpp"
#include "turnout/control/reloader.hpp"
#include "turnout/control/rollout_driver.hpp"
#include "turnout/control/signals.hpp"
#include "turnout/control/upgrader.hpp"
#include "turnout/health/health_checker.hpp"
#include "turnout/net/worker_pool.hpp"
#include "turnout/runtime/shared_state.hpp"
#include "turnout/service/reporter.hpp"
#include "turnout/session/session_store.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>

#include <atomic>
#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace turnout {

class server final : public admin::control {
public:
    /// Loads and validates the configuration; throws config::config_error.
    /// With launch.upgrade_fd set, takes the listeners and the session table over from the
    /// process at the other end (and throws std::runtime_error when that fails).
    explicit server(std::string config_path, launch_info launch = {});
    ~server();

    /// Binds, serves until SIGTERM/SIGINT and the drain that follows; returns the exit code.
    int run();

    // admin::control (control thread)
    boost::json::object status() const override;
    std::string metrics() const override;
    bool ready() const override { return !draining_.load(); }
    admin::result set_weights(std::string_view upstream,
                              const std::vector<std::pair<std::string, std::int64_t>>& weights, bool force) override;
    admin::result switch_to(std::string_view upstream, std::string_view pool, bool force) override;
    admin::result rollback(std::string_view upstream) override;
    admin::result drain(std::string_view upstream, std::string_view pool,
                        std::optional<config::duration> timeout) override;
    admin::result undrain(std::string_view upstream, std::string_view pool) override;
    admin::result drain_backend(std::string_view upstream, std::string_view pool, std::string_view address,
                                std::optional<config::duration> timeout) override;
    admin::result undrain_backend(std::string_view upstream, std::string_view pool,
                                  std::string_view address) override;
    admin::result set_backends(std::string_view upstream, std::string_view pool,
                               const std::vector<std::string>& addresses) override;
    admin::result watch_switch(std::string_view upstream, std::string_view pool, bool force,
                               config::duration watch) override;
    admin::result start_rollout(std::string_view upstream, const ::turnout::control::rollout_request& r) override;
    admin::result rollout(std::string_view upstream) override;
    admin::result rollout_command(std::string_view upstream, ::turnout::control::rollout_command c) override;
    admin::result reload() override;
    admin::result upgrade(const std::optional<std::string>& binary) override;

private:
    /// Asks the operations (over the state in force and the live snapshot) for a decision.
    template <class Decide> admin::result change(std::string_view upstream, Decide decide);
    /// Commits an operation's decision; the answer carries the upstream's new status.
    admin::result commit(const ::turnout::control::decision& d, std::string_view upstream);
    /// A manual weights/switch/rollback: decided, then the upstream's running rollout paused.
    template <class Decide> admin::result manual_change(std::string_view upstream, std::string_view what, Decide decide);

    void restore_sessions(const session::saved_table& saved);
    /// The runtime store's state for the STATUS= line (empty with a state file).
    std::string store_note() const;
    void save_sessions();
    void bind_listeners();
    void start_status_server();
    void start_admin_server();
    void do_expire_sessions();
    void on_stop_signal();
    void begin_shutdown();
    void poll_drain();
    void finish_shutdown();
    /// After a hand-over: stop accepting, give the admin socket up, drain what is left.
    void retire(pid_t successor);

    std::shared_ptr<const config::configuration> loaded_; // the configuration at start
    net::tls_contexts loaded_tls_;                        // its TLS contexts, until published
    std::chrono::steady_clock::time_point started_ = std::chrono::steady_clock::now();
    boost::asio::io_context control_{1};
    service::reporter service_{control_, service::notifier::from_environment()};
    ::turnout::control::upgrader upgrader_;
    std::unique_ptr<runtime::shared_state> shared_;
    std::unique_ptr<::turnout::control::publisher> publisher_;
    std::unique_ptr<::turnout::control::reloader> reloader_;
    ::turnout::control::signals signals_{control_};
    boost::asio::steady_timer expiry_timer_{control_};
    boost::asio::steady_timer drain_timer_{control_};
    boost::asio::steady_timer admin_grace_timer_{control_};
    std::chrono::steady_clock::time_point drain_deadline_;
    std::chrono::steady_clock::time_point next_drain_report_{};
    std::unique_ptr<net::worker_pool> workers_;
    std::unique_ptr<::turnout::control::drain_deadlines> drains_;
    std::unique_ptr<::turnout::control::rollout_driver> rollouts_;
    std::unique_ptr<::turnout::control::dns_discovery> discovery_; // dns:/srv: backends
    std::unique_ptr<admin::status_server> status_;
    std::unique_ptr<admin::admin_server> admin_;
    std::unique_ptr<health::health_checker> health_;
    std::unique_ptr<::turnout::control::pid_file> pid_file_;
    // Every listening socket with the configuration address it serves, to hand over.
    std::vector<::turnout::control::listening_socket> own_listeners_;
    std::atomic<bool> draining_{false};
    bool aborting_ = false;
};

/// Validates a configuration the way `turnout -t` does: parse, check, resolve backends.
/// Throws config::config_error.
void check_configuration(const std::string& config_path);

} // namespace turnout
