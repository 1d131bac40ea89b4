#pragma once
// Zero-downtime upgrade (SPEC: `turnoutctl upgrade`, SIGUSR2), both sides. The running process
// (the predecessor) starts the new binary with one end of a socketpair, hands it every
// listening socket and the session table, and once the new process (the successor) serves,
// stops accepting and drains. While both serve, each tells the other every session it learns
// or forgets (session_relay). The protocol is in upgrade/handover.hpp.

#include "turnout/admin/control.hpp"
#include "turnout/edge/rate_table.hpp"
#include "turnout/net/worker_pool.hpp"
#include "turnout/runtime/shared_state.hpp"
#include "turnout/session/session_store.hpp"
#include "turnout/upgrade/channel.hpp"
#include "turnout/upgrade/peer_reader.hpp"
#include "turnout/upgrade/session_relay.hpp"

#include <boost/asio/io_context.hpp>

#include <atomic>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace turnout {

/// How the process was started, for an upgrade to start its successor the same way.
struct launch_info {
    std::vector<std::string> argv; // as given to main
    std::string binary;            // argv[0] made absolute: the default binary of an upgrade
    int upgrade_fd = -1;           // the successor's end of the hand-over (TURNOUT_UPGRADE_FD)
};

} // namespace turnout

namespace turnout::control {

/// A listening socket and the configuration address it serves.
struct listening_socket {
    upgrade::listener_kind kind;
    std::string address;
    int fd;
};

class upgrader {
public:
    upgrader(boost::asio::io_context& control, launch_info launch);
    ~upgrader();
    upgrader(const upgrader&) = delete;
    upgrader& operator=(const upgrader&) = delete;

    // ---- successor (started with an upgrade fd) ----
    bool taking_over() const noexcept { return launch_.upgrade_fd >= 0; }
    /// Says hello and receives the listeners and the session table (before the process
    /// builds its state). Throws std::runtime_error when that fails.
    session::saved_table take_over();
    /// The state the process built (after take_over(), which decides its hash seeds), before
    /// the workers start: takes the handed-over rate limit buckets into it.
    void attach(runtime::shared_state& shared);
    /// Handed-over fds for address of kind, in the order sent (taken out of the inherited).
    std::vector<int> adopt(upgrade::listener_kind kind, const std::string& address);
    /// Closes the handed-over sockets whose address the configuration no longer has.
    void close_unadopted();
    /// Before the workers start: sessions learned here go to the predecessor (version 3), and
    /// a lookup here that misses reads what the predecessor sent first.
    void link_predecessor();
    /// Once serving: says ready, then applies what the predecessor sends until it exits.
    void announce_ready();

    // ---- predecessor ----
    /// Starts binary (nullopt = the one running), hands it sockets and the session table and
    /// answers {"pid":N} once it serves; the caller then retires. From the first step on,
    /// every client connection serves one more exchange (then Connection: close); a failure
    /// restores keep-alive and leaves this process serving as before.
    admin::result hand_over(const std::optional<std::string>& binary,
                            const std::vector<listening_socket>& sockets, net::worker_pool& workers);
    pid_t successor() const noexcept { return successor_pid_; }
    /// Once a second: session changes the channel could not take at once; and after the
    /// hand-over, the sessions still in use here (touched), for the successor's expiry.
    void tick();
    /// Only the changes that wait (the drain loop, every 50 ms).
    void flush();

private:
    std::string run_hand_over(pid_t successor, upgrade::channel& ch,
                              const std::vector<listening_socket>& sockets);
    void on_successor_message(const upgrade::message& m);
    void read_successor();
    void unlink_successor();
    void send_touched();
    void apply_from_predecessor(const upgrade::message& m);
    /// Applies another process's learned/forgot without sending it back there; false for any
    /// other message. Any thread (under the peer's reader lock).
    bool apply_session_change(const upgrade::message& m, const upgrade::session_forwarder* peer);

    boost::asio::io_context& control_;
    runtime::shared_state* shared_ = nullptr;
    launch_info launch_;

    // Successor: the listeners handed over, until adopted; the channel to the predecessor.
    std::vector<listening_socket> inherited_;
    std::optional<edge::rate_table> inherited_rates_; // version 4, until attach()
    std::unique_ptr<upgrade::channel> predecessor_;
    std::uint32_t predecessor_version_ = 0; // the hand-over protocol version this process said hello with
    upgrade::session_forwarder* to_predecessor_ = nullptr; // version 3: sessions learned here
    upgrade::peer_reader* from_predecessor_ = nullptr;
    std::atomic<std::uint64_t> sessions_from_predecessor_{0};
    std::atomic<std::uint64_t> touches_from_predecessor_{0};

    // Predecessor: the process that took over (0 = none yet).
    pid_t successor_pid_ = 0;
    std::uint32_t successor_version_ = 0; // the hand-over protocol version it said hello with
    std::uint32_t touched_since_ = 0;     // now_s() of the last touched batch (or the snapshot)
    std::vector<std::unique_ptr<upgrade::channel>> successor_channels_;
    upgrade::session_forwarder* to_successor_ = nullptr;
    upgrade::peer_reader* from_successor_ = nullptr;
    std::atomic<bool> successor_ready_{false};
    std::atomic<std::uint64_t> sessions_from_successor_{0};

    // Never destroyed before exit: a worker may be inside one (readers: after a lookup missed).
    std::vector<std::unique_ptr<upgrade::session_forwarder>> forwarders_;
    std::vector<std::unique_ptr<upgrade::peer_reader>> readers_;
    // The session table's observer: every change goes to each process on the other side of a
    // hand-over (predecessor and successor), except the one it came from.
    upgrade::session_relay relay_;
};

} // namespace turnout::control
