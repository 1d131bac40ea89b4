#pragma once
// What the process tells its service manager, and when (systemd Type=notify): READY=1 once
// everything listens, RELOADING=1 ... READY=1 around each reload (also a failed one, with a
// STATUS= that says so), STOPPING=1 when the drain starts, a STATUS= line with live counts
// whenever they changed, and WATCHDOG=1 pings when the manager asked for them. Runs on the
// control thread; without NOTIFY_SOCKET it sends nothing and arms no timer.

#include "turnout/service/notifier.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

namespace turnout::net {
class worker_pool;
}
namespace turnout::runtime {
class shared_state;
}

namespace turnout::service {

struct live_counts {
    std::size_t connections = 0; // client connections
    std::int64_t streams = 0;    // open SSE streams
    std::size_t sessions = 0;    // pinned sessions
    std::int64_t in_flight = 0;  // requests sent to backends, response not finished
};

/// Sums the live counters over every backend (control thread).
live_counts count_live(const net::worker_pool& workers, const runtime::shared_state& shared);

/// "serving: 3 connections, 1 stream, 2 sessions, 0 in flight" ("draining: ..." while draining).
std::string describe(const live_counts& counts, bool draining);

class reporter {
public:
    using counts_source = std::function<live_counts()>;
    /// A clause the STATUS= line ends with (empty: none), such as the runtime store's state.
    using note_source = std::function<std::string()>;
    /// How often live counts are looked at; STATUS= is sent only when the text changed.
    static constexpr auto status_interval = std::chrono::seconds(2);

    reporter(boost::asio::io_context& control, notifier n);

    /// READY=1 with the first STATUS=; starts the status updates and the watchdog.
    /// take_over: this process replaces a running one (binary upgrade) and names itself the
    /// service's main process in the same datagram (MAINPID=, needs NotifyAccess=all).
    void ready(counts_source counts, bool take_over = false);
    /// Before ready(): what each STATUS= line adds after the counts.
    void set_note(note_source note) { note_ = std::move(note); }
    /// This process handed the service to its successor (binary upgrade): from now on it tells
    /// the manager nothing — its drain is not the service stopping (STOPPING=1 would stop it).
    void hand_over();
    void reloading();
    /// READY=1 again; error non-empty: the reload failed, and STATUS= says so until the next
    /// successful one.
    void reloaded(std::string_view error = {});
    /// STOPPING=1: the drain started.
    void stopping();
    /// Cancels the timers (at the end of the drain).
    void stop();

private:
    std::string status_line();
    void do_update_status();
    void do_watchdog();

    notifier notifier_;
    counts_source counts_;
    note_source note_;
    boost::asio::steady_timer status_timer_;
    boost::asio::steady_timer watchdog_timer_;
    std::string last_status_;
    std::string reload_error_;
    bool draining_ = false;
    bool stopped_ = false; // stop() or hand_over(): nothing more is sent
};

} // namespace turnout::service
