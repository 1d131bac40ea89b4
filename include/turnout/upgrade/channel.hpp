#pragma once
// The predecessor's and the successor's end of the hand-over socketpair: whole messages in
// and out with a deadline, listening sockets passed as SCM_RIGHTS, and (predecessor side)
// the forwarding of sessions learned while it drains. The socket is non-blocking; the
// deadline-bound calls wait with poll(), so a peer that hangs cannot stall the caller past it.

#include "turnout/session/session_table.hpp"
#include "turnout/upgrade/handover.hpp"
#include "turnout/upstream/backend_registry.hpp"

#include <chrono>
#include <deque>
#include <functional>
#include <mutex>
#include <string>
#include <sys/types.h>
#include <vector>

namespace turnout::upgrade {

using deadline = std::chrono::steady_clock::time_point;

/// The environment variable naming the successor's end of the socketpair.
constexpr const char* fd_variable = "TURNOUT_UPGRADE_FD";

class channel {
public:
    /// Takes ownership of fd (made non-blocking).
    explicit channel(int fd);
    ~channel();
    channel(const channel&) = delete;
    channel& operator=(const channel&) = delete;

    int fd() const noexcept { return fd_; }

    /// Writes m (with passed_fd attached when >= 0) before until. Empty on success, else why.
    std::string send(const message& m, deadline until, int passed_fd = -1);
    /// Writes bytes (whole frames) before until.
    std::string send_bytes(std::string_view bytes, deadline until);
    /// Reads the next message before until. Empty on success, else why (peer gone, timeout,
    /// damaged stream).
    std::string receive(message& out, deadline until);
    /// The oldest fd received and not yet taken (fds arrive in the order they were sent), or -1.
    int take_fd();

    /// Waits until something can be read (or the peer's end is), at most until; false on
    /// timeout.
    bool wait_readable(deadline until);
    /// Reads what arrived, without blocking, into incoming(); false when the peer is gone.
    bool read_available();
    /// Messages received and not yet taken by receive() (so nothing buffered is lost when
    /// the reader switches from receive() to reading on an event loop).
    decoder& incoming() noexcept { return decoder_; }

private:
    int fd_;
    decoder decoder_;
    std::deque<int> received_fds_;
};

/// Every session the table learns or forgets becomes a message to the other process: the
/// predecessor's, from the snapshot until it exits; the successor's (version 3), from the
/// moment it serves until the predecessor exits. Called on worker threads after the table
/// released its shard lock; never blocks them: what the socket cannot take now waits in a
/// queue that flush() (control thread) and later calls empty.
class session_forwarder final : public session::session_observer {
public:
    session_forwarder(channel& ch, const upstream::backend_registry& registry)
        : channel_(ch), registry_(registry)
    {
    }

    void learned(const session::session_key& key, session::backend_id owner) override;
    void forgot(const session::session_key& key) override;

    /// Queues keys as touched messages of at most max_touched_keys each (control thread).
    /// False, queueing nothing, while more than max_backlog bytes wait for the successor:
    /// the caller keeps the keys for its next batch instead of piling them up here.
    bool touched(const std::vector<session::session_key>& keys);
    static constexpr std::size_t max_backlog = 16u << 20;

    /// Sends make()'s bytes (the table snapshot), made and written under the lock that
    /// deltas take, so none overtakes the snapshot it amends; waits up to until.
    std::string send_first(const std::function<std::string()>& make, deadline until);
    /// Sends m after every delta queued before it, waiting up to until: the one writer of a
    /// channel whose deltas may be written by workers at any moment (the successor's ready).
    std::string send(const message& m, deadline until);
    void flush();
    /// Stops forwarding (the successor failed or left).
    void stop();
    std::uint64_t forwarded() const;

private:
    void enqueue(const message& m);
    void write_pending(); // under mutex_

    channel& channel_;
    const upstream::backend_registry& registry_;
    mutable std::mutex mutex_;
    std::string pending_;
    bool stopped_ = false;
    std::uint64_t forwarded_ = 0;
};

/// The successor's environment: this process's, with TURNOUT_UPGRADE_FD=3 and
/// TURNOUT_UPGRADE_VERSION=<protocol_version>:<self>, and — when this process is the one the
/// service manager's watchdog watches (WATCHDOG_USEC set, WATCHDOG_PID unset or naming self)
/// — WATCHDOG_PID naming the successor, so that it pings once it is the main process (it would
/// otherwise inherit WATCHDOG_PID=<this pid> and keep its watchdog off). Built before fork:
/// set_pid() is all the child does with it, and is async-signal-safe. Not movable: envp()
/// points into it.
class successor_environment {
public:
    successor_environment(char** parent, pid_t self);
    successor_environment(const successor_environment&) = delete;
    successor_environment& operator=(const successor_environment&) = delete;

    /// Fills in the successor's pid (the child calls it with getpid() before exec).
    void set_pid(pid_t pid) noexcept;
    /// Whether WATCHDOG_PID is passed on (set_pid() changes it).
    bool watchdog() const noexcept { return watchdog_; }
    char** envp() noexcept { return pointers_.data(); }

private:
    std::string fd_assignment_;
    std::string version_assignment_;
    char watchdog_pid_[40] = {};
    bool watchdog_ = false;
    std::vector<char*> pointers_;
};

/// Starts binary with argv (argv[0] replaced by binary) and a successor_environment of this
/// process, with child_fd as fd 3; every other inherited descriptor beyond stderr is closed
/// in the child. Returns the pid, or -1 with errno set.
pid_t spawn_successor(const std::string& binary, const std::vector<std::string>& argv, int child_fd);

/// "exited with status 1", "was killed by signal 9", ... for a waitpid status.
std::string describe_exit(int wait_status);

} // namespace turnout::upgrade
