#pragma once
// The process: loads the configuration, binds the listeners on every worker, runs the
// control thread (signals, status endpoint, reloads) and shuts down gracefully.

#include "turnout/admin/admin_server.hpp"
#include "turnout/admin/control.hpp"
#include "turnout/admin/status_server.hpp"
#include "turnout/config/config.hpp"
#include "turnout/health/health_checker.hpp"
#include "turnout/net/tls_context.hpp"
#include "turnout/net/worker_pool.hpp"
#include "turnout/runtime/shared_state.hpp"
#include "turnout/service/reporter.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>

#include <atomic>
#include <set>
#include <memory>
#include <string>

namespace turnout {

class server final : public admin::control {
public:
    /// Loads and validates the configuration; throws config::config_error.
    explicit server(std::string config_path);
    ~server();

    /// Binds, serves until SIGTERM/SIGINT and the drain that follows; returns the exit code.
    int run();

    // admin::control (control thread)
    boost::json::object status() const override;
    std::string metrics() const override;
    bool ready() const override { return !draining_.load(); }
    admin::result set_weights(std::string_view upstream,
                              const std::vector<std::pair<std::string, std::int64_t>>& weights) override;
    admin::result switch_to(std::string_view upstream, std::string_view pool, bool force) override;
    admin::result rollback(std::string_view upstream) override;
    admin::result drain(std::string_view upstream, std::string_view pool,
                        std::optional<config::duration> timeout) override;
    admin::result undrain(std::string_view upstream, std::string_view pool) override;
    admin::result set_backends(std::string_view upstream, std::string_view pool,
                               const std::vector<std::string>& addresses) override;
    admin::result reload() override;

private:
    void bind_listeners();
    void start_status_server();
    void do_wait_signal();
    void on_signal(int signal_number);
    void on_reload_signal();
    void begin_shutdown();
    void poll_drain();
    void finish_shutdown();

    void publish(std::shared_ptr<const config::configuration> config);
    void load_runtime_state();
    /// Persists next (state file), publishes it, and makes it current; a 500 result when it
    /// cannot be persisted (then nothing changes).
    admin::result commit(runtime::runtime_state next, std::string_view upstream);
    boost::json::object upstream_status(const runtime::upstream_state& u) const;
    void do_watch_drains();
    static std::int64_t unix_ms();
    void start_admin_server();
    void restore_sessions();
    void save_sessions();
    void do_expire_sessions();

    std::string config_path_;
    std::shared_ptr<const config::configuration> config_;
    net::tls_contexts tls_; // of config_; swapped whole by a reload whose files all load
    runtime::runtime_state state_;
    /// An operator changed something (now, or in a state file loaded at start): from then on
    /// the runtime state wins over the configuration's weights; before, the file rules.
    bool operator_state_ = false;
    std::set<std::pair<std::string, std::string>> expired_drains_; // (upstream, pool) enforced
    std::chrono::steady_clock::time_point started_ = std::chrono::steady_clock::now();
    std::unique_ptr<runtime::shared_state> shared_;
    boost::asio::io_context control_{1};
    service::reporter service_{control_, service::notifier::from_environment()};
    boost::asio::steady_timer expiry_timer_{control_};
    boost::asio::steady_timer drain_watch_timer_{control_};
    boost::asio::signal_set signals_{control_};
    boost::asio::steady_timer drain_timer_{control_};
    std::chrono::steady_clock::time_point drain_deadline_;
    std::unique_ptr<net::worker_pool> workers_;
    std::unique_ptr<admin::status_server> status_;
    std::unique_ptr<admin::admin_server> admin_;
    std::unique_ptr<health::health_checker> health_;
    std::atomic<bool> draining_{false};
    bool aborting_ = false;
};

/// Validates a configuration the way `turnout -t` does: parse, check, resolve backends.
/// Throws config::config_error.
void check_configuration(const std::string& config_path);

} // namespace turnout
