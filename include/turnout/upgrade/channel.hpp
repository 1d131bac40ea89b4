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

/// Predecessor side, from the snapshot until it exits: every session the table learns or
/// forgets becomes a message to the successor. Called on worker threads after the table
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

    /// Sends make()'s bytes (the table snapshot), made and written under the lock that
    /// deltas take, so none overtakes the snapshot it amends; waits up to until.
    std::string send_first(const std::function<std::string()>& make, deadline until);
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

/// Starts binary with argv (argv[0] replaced by binary) and the environment of this process,
/// with child_fd as fd 3 and TURNOUT_UPGRADE_FD=3; every other inherited descriptor beyond
/// stderr is closed in the child. Returns the pid, or -1 with errno set.
pid_t spawn_successor(const std::string& binary, const std::vector<std::string>& argv, int child_fd);

/// "exited with status 1", "was killed by signal 9", ... for a waitpid status.
std::string describe_exit(int wait_status);

} // namespace turnout::upgrade
