#pragma once
// The process: loads the configuration, binds the listeners on every worker, runs the
// control thread (signals, status endpoint, reloads) and shuts down gracefully.

#include "turnout/admin/status_server.hpp"
#include "turnout/config/config.hpp"
#include "turnout/net/worker_pool.hpp"
#include "turnout/runtime/shared_state.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>

#include <atomic>
#include <memory>
#include <string>

namespace turnout {

class server {
public:
    /// Loads and validates the configuration; throws config::config_error.
    explicit server(std::string config_path);
    ~server();

    /// Binds, serves until SIGTERM/SIGINT and the drain that follows; returns the exit code.
    int run();

private:
    void bind_listeners();
    void start_status_server();
    void do_wait_signal();
    void on_signal(int signal_number);
    void reload();
    void begin_shutdown();
    void poll_drain();
    void finish_shutdown();

    void publish(std::shared_ptr<const config::configuration> config);
    void restore_sessions();
    void save_sessions();
    void do_expire_sessions();

    std::string config_path_;
    std::shared_ptr<const config::configuration> config_;
    std::unique_ptr<runtime::shared_state> shared_;
    boost::asio::io_context control_{1};
    boost::asio::steady_timer expiry_timer_{control_};
    boost::asio::signal_set signals_{control_};
    boost::asio::steady_timer drain_timer_{control_};
    std::chrono::steady_clock::time_point drain_deadline_;
    std::unique_ptr<net::worker_pool> workers_;
    std::unique_ptr<admin::status_server> status_;
    std::atomic<bool> draining_{false};
    bool aborting_ = false;
};

/// Validates a configuration the way `turnout -t` does: parse, check, resolve backends.
/// Throws config::config_error.
void check_configuration(const std::string& config_path);

} // namespace turnout
