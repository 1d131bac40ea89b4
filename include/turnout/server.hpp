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
#include "turnout/session/session_store.hpp"
#include "turnout/upgrade/channel.hpp"
#include "turnout/upgrade/peer_reader.hpp"
#include "turnout/upgrade/session_relay.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>

#include <atomic>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

namespace turnout {

/// How the process was started, for an upgrade to start its successor the same way.
struct launch_info {
    std::vector<std::string> argv; // as given to main
    std::string binary;            // argv[0] made absolute: the default binary of an upgrade
    int upgrade_fd = -1;           // the successor's end of the hand-over (TURNOUT_UPGRADE_FD)
};

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
                              const std::vector<std::pair<std::string, std::int64_t>>& weights) override;
    admin::result switch_to(std::string_view upstream, std::string_view pool, bool force) override;
    admin::result rollback(std::string_view upstream) override;
    admin::result drain(std::string_view upstream, std::string_view pool,
                        std::optional<config::duration> timeout) override;
    admin::result undrain(std::string_view upstream, std::string_view pool) override;
    admin::result set_backends(std::string_view upstream, std::string_view pool,
                               const std::vector<std::string>& addresses) override;
    admin::result reload() override;
    admin::result upgrade(const std::optional<std::string>& binary) override;

private:
    // zero-downtime upgrade (server_upgrade.cpp)
    struct inherited_listener {
        upgrade::listener_kind kind;
        std::string address;
        int fd;
    };
    std::optional<session::saved_table> take_over();
    /// Inherited fds for address of kind (removed from inherited_), in the order sent.
    std::vector<int> adopt(upgrade::listener_kind kind, const std::string& address);
    void close_unadopted();
    void announce_ready();
    void link_predecessor();
    void apply_from_predecessor(const upgrade::message& m);
    /// Applies another process's learned/forgot without sending it back there; false for
    /// any other message. Any thread (under the peer's reader lock).
    bool apply_session_change(const upgrade::message& m, const upgrade::session_forwarder* peer);
    std::string hand_over(pid_t successor, upgrade::channel& ch);
    void on_successor_message(const upgrade::message& m);
    void read_successor();
    void unlink_successor();
    void retire(pid_t successor);
    void send_touched();

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

    launch_info launch_;
    // Successor: the listeners handed over, until adopted; the channel to the predecessor.
    std::vector<inherited_listener> inherited_;
    // Every listening socket with the configuration address it serves, to hand over.
    std::vector<inherited_listener> own_listeners_;
    std::unique_ptr<upgrade::channel> predecessor_;
    std::uint32_t predecessor_version_ = 0; // the hand-over protocol version this process said hello with
    upgrade::session_forwarder* to_predecessor_ = nullptr; // version 3: sessions learned here
    upgrade::peer_reader* from_predecessor_ = nullptr;
    std::atomic<std::uint64_t> sessions_from_predecessor_{0};
    std::atomic<std::uint64_t> touches_from_predecessor_{0};
    // Predecessor: the process that took over (0 = none yet), and what forwards sessions to
    // it. Forwarders are never destroyed before exit: a worker may be inside one.
    pid_t successor_pid_ = 0;
    std::uint32_t successor_version_ = 0; // the hand-over protocol version it said hello with
    std::uint32_t touched_since_ = 0;     // now_s() of the last touched batch (or the snapshot)
    std::chrono::steady_clock::time_point next_drain_report_{};
    boost::asio::steady_timer admin_grace_timer_{control_};
    std::vector<std::unique_ptr<upgrade::channel>> successor_channels_;
    upgrade::session_forwarder* to_successor_ = nullptr;
    upgrade::peer_reader* from_successor_ = nullptr;
    std::atomic<bool> successor_ready_{false};
    std::atomic<std::uint64_t> sessions_from_successor_{0};
    // Never destroyed before exit: a worker may be inside one (readers: after a lookup missed).
    std::vector<std::unique_ptr<upgrade::session_forwarder>> forwarders_;
    std::vector<std::unique_ptr<upgrade::peer_reader>> readers_;
    // The session table's observer: every change goes to each process on the other side of
    // a hand-over (predecessor and successor), except the one it came from.
    upgrade::session_relay relay_;
};

/// Validates a configuration the way `turnout -t` does: parse, check, resolve backends.
/// Throws config::config_error.
void check_configuration(const std::string& config_path);

} // namespace turnout
