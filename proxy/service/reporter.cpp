#include "turnout/service/reporter.hpp"

#include "turnout/net/worker_pool.hpp"
#include "turnout/runtime/shared_state.hpp"

#include <spdlog/spdlog.h>

#include <unistd.h>

namespace turnout::service {
namespace {

std::string plural(std::int64_t n, std::string_view one, std::string_view many)
{
    return std::to_string(n) + " " + std::string(n == 1 ? one : many);
}

} // namespace

live_counts count_live(const net::worker_pool& workers, const runtime::shared_state& shared)
{
    live_counts out;
    out.connections = workers.connection_count();
    out.sessions = shared.sessions.size();
    shared.backends.for_each([&out](const upstream::backend& b) {
        out.streams += b.counters().streams.load(std::memory_order_relaxed);
        out.in_flight += b.counters().in_flight.load(std::memory_order_relaxed);
    });
    return out;
}

std::string describe(const live_counts& c, bool draining)
{
    return std::string(draining ? "draining: " : "serving: ") +
           plural(static_cast<std::int64_t>(c.connections), "connection", "connections") + ", " +
           plural(c.streams, "stream", "streams") + ", " +
           plural(static_cast<std::int64_t>(c.sessions), "session", "sessions") + ", " +
           std::to_string(c.in_flight) + " in flight";
}

reporter::reporter(boost::asio::io_context& control, notifier n)
    : notifier_(std::move(n)), status_timer_(control), watchdog_timer_(control)
{}

std::string reporter::status_line()
{
    auto line = counts_ ? describe(counts_(), draining_) : std::string(draining_ ? "draining" : "starting");
    if (note_)
        if (const auto note = note_(); !note.empty())
            line += "; " + note;
    if (!reload_error_.empty())
        line += "; last reload failed: " + reload_error_;
    return line;
}

void reporter::ready(counts_source counts, bool take_over)
{
    counts_ = std::move(counts);
    if (!notifier_.enabled() || stopped_)
        return;
    last_status_ = status_line();
    if (take_over)
        notifier_.send(main_pid_message(::getpid()) + "\n" + ready_message(last_status_));
    else
        notifier_.ready(last_status_);
    do_update_status();
    if (const auto interval = notifier_.watchdog_interval()) {
        spdlog::info("service manager watchdog: pinging every {} ms", interval->count() / 2000);
        do_watchdog();
    }
}

// Once STOPPING=1 is out, a reload (SIGHUP during the drain) must not announce READY=1 again:
// the service is on its way out.
void reporter::reloading()
{
    if (notifier_.enabled() && !draining_ && !stopped_)
        notifier_.reloading("reloading the configuration");
}

void reporter::reloaded(std::string_view error)
{
    reload_error_ = error;
    if (!notifier_.enabled() || draining_ || stopped_)
        return;
    last_status_ = status_line();
    notifier_.ready(last_status_);
}

void reporter::stopping()
{
    draining_ = true;
    if (!notifier_.enabled() || stopped_)
        return;
    last_status_ = status_line();
    notifier_.stopping(last_status_);
}

void reporter::hand_over()
{
    stop();
}

void reporter::stop()
{
    stopped_ = true;
    status_timer_.cancel();
    watchdog_timer_.cancel();
}

void reporter::do_update_status()
{
    status_timer_.expires_after(status_interval);
    status_timer_.async_wait([this](boost::system::error_code ec) {
        if (ec || stopped_)
            return;
        if (auto line = status_line(); line != last_status_) {
            notifier_.status(line);
            last_status_ = std::move(line);
        }
        do_update_status();
    });
}

void reporter::do_watchdog()
{
    // Half the interval, as sd_watchdog_enabled(3) advises: one late ping is not a kill.
    notifier_.watchdog();
    watchdog_timer_.expires_after(*notifier_.watchdog_interval() / 2);
    watchdog_timer_.async_wait([this](boost::system::error_code ec) {
        if (!ec && !stopped_)
            do_watchdog();
    });
}

} // namespace turnout::service
