#pragma once
// Runs the rollouts: every 100 ms on the control thread it checks each running rollout's
// canary for a crash, and once per `interval` samples both pools' counters, judges the
// interval and commits what the plan decides (weights, steps, rollback) through the
// publisher — the same path as an operator's change, so the state file has it first. New
// events of any rollout (also those an operator caused) go to the log and the webhook.
// The analysis reads counters the workers keep anyway: a rollout costs the data path nothing.
// In a fleet (a shared etcd store) only the instance that leads drives the rollouts, on the
// whole fleet's figures: every instance publishes its counts of the pools being judged twice
// per interval, the leader reads them back; the others follow the state and only log the
// events (the leader sends the webhooks). A new leader resumes the step where the state says
// it stands, with the hold time that was left, judging from a fresh interval.

#include "turnout/control/fleet_figures.hpp"
#include "turnout/control/fleet_member.hpp"
#include "turnout/control/publisher.hpp"
#include "turnout/control/rollout_analysis.hpp"
#include "turnout/control/webhook.hpp"
#include "turnout/runtime/shared_state.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>

#include <array>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <tuple>

namespace turnout::control {

class rollout_driver {
public:
    /// drained(upstream, pool): a rollback drained pool (its deadline is to be enforced).
    using drained_handler = std::function<void(std::string_view upstream, std::string_view pool)>;
    using verdict_counts = std::array<std::uint64_t, 3>; // by runtime::verdict

    rollout_driver(boost::asio::io_context& io, publisher& p, runtime::shared_state& shared, drained_handler drained);

    /// The rollouts in the state at start were announced by the process before (the events
    /// of a restart's or an upgrade's predecessor are not sent again).
    void start();
    /// After a hand-over or at shutdown: this process no longer decides anything.
    void stop();

    /// The old pool's figures right now, for a watched switch's baseline: its whole history
    /// in this process (all it forwarded).
    runtime::pool_figures lifetime_figures(std::string_view upstream, std::string_view pool) const;

    /// Interval verdicts given so far, per upstream (turnout_rollout_interval_verdicts_total).
    const std::map<std::string, verdict_counts, std::less<>>& verdicts() const noexcept { return verdicts_; }

    /// phase, step, events_total: what a rollout's transitions change.
    using rollout_mark = std::tuple<runtime::rollout_phase, std::size_t, std::uint64_t>;

private:
    using clock = std::chrono::steady_clock;
    struct tracker {
        std::string pool;
        std::int64_t started_ms = -1;
        bool sampling = false;
        fleet_sample canary, baseline; // this instance's counts alone, outside a fleet
        pool_sample crash_base;          // this instance's: a crash is what it saw itself
        clock::time_point interval_start;
        std::uint64_t events_seen = 0;
        std::optional<rollout_mark> seen; // the rollout as this driver last left it
    };

    void do_poll();
    void poll();
    void drive(const runtime::upstream_runtime& u, const runtime::upstream_state& live, tracker& t, clock::time_point now);
    /// notify: send the events to the webhook too (outside a fleet, or leading it).
    void announce(const runtime::upstream_runtime& u, tracker& t, bool notify);
    /// The canary's and the baseline's counts, over the fleet when in one.
    std::pair<fleet_sample, fleet_sample> sample(std::string_view upstream, const runtime::rollout_runtime& r,
                                                 const pool_sample& canary, const pool_sample& baseline) const;
    /// In a fleet: this instance's counts of the pools being judged go to etcd (and the leader
    /// reads everyone's) twice per shortest running interval.
    void publish_figures(clock::time_point now);
    /// false when the publisher refused it (logged).
    bool commit(runtime::runtime_state next, std::string_view upstream, bool drained);

    boost::asio::steady_timer timer_;
    publisher& publisher_;
    runtime::shared_state& shared_;
    drained_handler drained_;
    webhook_sender webhooks_;
    std::map<std::string, tracker, std::less<>> trackers_;
    std::map<std::string, verdict_counts, std::less<>> verdicts_;
    std::string last_refusal_; // the last refusal logged, so an outage is said once
    fleet_member* fleet_ = nullptr;
    clock::time_point next_publish_{};
    bool stopped_ = false;
};

} // namespace turnout::control
