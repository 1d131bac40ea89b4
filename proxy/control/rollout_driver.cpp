#include "turnout/control/rollout_driver.hpp"

#include "turnout/control/rollout_plan.hpp"

#include <boost/json/object.hpp>
#include <boost/json/serialize.hpp>

#include <spdlog/spdlog.h>

#include <algorithm>

namespace turnout::control {
namespace {

constexpr std::chrono::milliseconds poll_interval{100};

// A rollout's transitions (a step, a failed interval, pause, resume, the end): each records an
// event. Verdicts that change nothing else (pass, inconclusive) do not restart the interval,
// so two drivers (a fleet without leadership) cannot keep restarting each other's.
rollout_driver::rollout_mark mark_of(const runtime::rollout_runtime& r)
{
    return {r.phase, r.step, r.events_total};
}

std::string event_json(const runtime::upstream_runtime& u, const runtime::rollout_event& e)
{
    const auto& r = *u.rollout;
    return boost::json::serialize(boost::json::object{{"upstream", u.name},
                                                      {"pool", r.pool},
                                                      {"baseline", r.baseline},
                                                      {"event", e.event},
                                                      {"detail", e.detail},
                                                      {"at_ms", e.at_ms},
                                                      {"state", runtime::to_string(r.phase)},
                                                      {"step", r.step + 1},
                                                      {"weight", r.weight()}});
}

} // namespace

rollout_driver::rollout_driver(boost::asio::io_context& io, publisher& p, runtime::shared_state& shared,
                               drained_handler drained)
    : timer_(io), publisher_(p), shared_(shared), drained_(std::move(drained)), webhooks_(io)
{
}

void rollout_driver::start()
{
    fleet_ = publisher_.fleet();
    for (const auto& u : publisher_.state().upstreams)
        if (u.rollout) {
            auto& t = trackers_[u.name];
            t.pool = u.rollout->pool;
            t.started_ms = u.rollout->started_ms;
            t.events_seen = u.rollout->events_total;
        }
    do_poll();
}

void rollout_driver::stop()
{
    stopped_ = true;
    timer_.cancel();
}

void rollout_driver::do_poll()
{
    if (stopped_)
        return;
    timer_.expires_after(poll_interval);
    timer_.async_wait([this](boost::system::error_code ec) {
        if (ec || stopped_)
            return;
        poll();
        do_poll();
    });
}

runtime::pool_figures rollout_driver::lifetime_figures(std::string_view upstream, std::string_view pool) const
{
    const auto live = shared_.snapshots.load();
    const auto* u = live->find(upstream);
    const auto* p = u ? u->find(pool) : nullptr;
    return p ? figures_between(pool_sample{}, sample_pool(*p)) : runtime::pool_figures{};
}

void rollout_driver::poll()
{
    const auto now = clock::now();
    if (fleet_)
        publish_figures(now);
    const bool leading = !fleet_ || fleet_->leading();
    const auto live = shared_.snapshots.load();
    // A copy of the names: a commit below replaces the state being walked.
    std::vector<std::string> names;
    for (const auto& u : publisher_.state().upstreams)
        if (u.rollout)
            names.push_back(u.name);
    for (const auto& name : names) {
        const auto* u = publisher_.state().find(name);
        if (!u || !u->rollout)
            continue;
        auto& t = trackers_[name];
        if (t.pool != u->rollout->pool || t.started_ms != u->rollout->started_ms) {
            // Another rollout than the one tracked: started here, all its events are new.
            t = tracker{u->rollout->pool, u->rollout->started_ms, false, {}, {}, {}, {}, 0, std::nullopt};
        }
        // Changed since the last tick by someone else than this driver (an operator, or
        // another instance of a fleet through the shared store): the interval starts afresh,
        // so a step another instance took is not taken again on this one's figures.
        if (t.seen && *t.seen != mark_of(*u->rollout))
            t.sampling = false;
        announce(*u, t, leading);
        const auto* live_u = live->find(name);
        // Not leading a fleet: another instance drives; once this one leads, it judges from
        // a fresh interval.
        if (u->rollout->phase != runtime::rollout_phase::running || !live_u || !leading) {
            t.sampling = false; // resumed later, it samples afresh
            t.seen = mark_of(*u->rollout);
            continue;
        }
        drive(*u, *live_u, t, now);
        if (const auto* after = publisher_.state().find(name); after && after->rollout) {
            announce(*after, t, leading);
            t.seen = mark_of(*after->rollout);
        }
    }
}

void rollout_driver::drive(const runtime::upstream_runtime& u, const runtime::upstream_state& live, tracker& t,
                           clock::time_point now)
{
    const auto& r = *u.rollout;
    const auto* canary = live.find(r.pool);
    const auto* baseline = live.find(r.baseline);
    if (!canary || !baseline)
        return;
    const auto canary_here = sample_pool(*canary);
    if (!t.sampling) {
        t.sampling = true;
        t.crash_base = canary_here;
        std::tie(t.canary, t.baseline) = sample(u.name, r, canary_here, sample_pool(*baseline));
        t.interval_start = now;
        return;
    }

    const auto unix_now = publisher::unix_ms();
    // A commit refused (another instance of a fleet changed the state first, or the shared
    // store is away) leaves the tracker as it was: the next tick judges again, from the
    // state then in force, instead of the judgement being lost or applied twice.
    const auto before = t;
    // A commit replaces the state u lives in: its name is kept apart for what follows one.
    const std::string name = u.name;
    if (const auto crash = crash_between(*canary, t.crash_base, canary_here, upstream::monotonic_ms(now))) {
        auto next = publisher_.state();
        on_failure(*next.find(u.name), "canary crashed: " + *crash, unix_now);
        t.sampling = false;
        if (!commit(std::move(next), name, true))
            t = before;
        return;
    }
    t.crash_base = canary_here;

    const auto elapsed = std::chrono::duration_cast<std::chrono::milliseconds>(now - t.interval_start).count();
    if (elapsed < r.rules.interval_ms)
        return;
    auto [canary_now, baseline_now] = sample(name, r, canary_here, sample_pool(*baseline));
    runtime::verdict_record v;
    v.canary = figures_between(t.canary, canary_now);
    v.baseline = r.frozen_baseline.value_or(figures_between(t.baseline, baseline_now));
    v.result = judge(v.canary, v.baseline, r.rules);
    v.at_ms = unix_now;
    t.canary = std::move(canary_now);
    t.baseline = std::move(baseline_now);
    t.interval_start = now;

    auto next = publisher_.state();
    auto& after = *next.find(u.name);
    on_interval(after, v, elapsed, unix_now);
    const bool rolled_back = after.rollout->phase == runtime::rollout_phase::rolled_back;
    if (commit(std::move(next), name, rolled_back))
        ++verdicts_[name][static_cast<std::size_t>(v.result)];
    else
        t = before;
}

std::pair<fleet_sample, fleet_sample> rollout_driver::sample(std::string_view upstream, const runtime::rollout_runtime& r,
                                                             const pool_sample& canary, const pool_sample& baseline) const
{
    std::map<std::string, published_pools> others;
    if (fleet_)
        for (const auto& [instance, text] : fleet_->figures())
            if (auto pools = figures_from_json(text))
                others.emplace(instance, std::move(*pools));
    const std::string_view own = fleet_ ? std::string_view(fleet_->instance()) : std::string_view{};
    return {sample_fleet(own, canary, others, upstream, r.pool), sample_fleet(own, baseline, others, upstream, r.baseline)};
}

void rollout_driver::publish_figures(clock::time_point now)
{
    if (now < next_publish_)
        return;
    const auto live = shared_.snapshots.load();
    published_pools pools;
    std::int64_t shortest_ms = 0;
    for (const auto& u : publisher_.state().upstreams) {
        if (!u.rollout || u.rollout->phase != runtime::rollout_phase::running)
            continue;
        const auto* live_u = live->find(u.name);
        for (const auto& name : {u.rollout->pool, u.rollout->baseline})
            if (const auto* p = live_u ? live_u->find(name) : nullptr)
                pools[{u.name, name}] = sample_pool(*p);
        if (shortest_ms == 0 || u.rollout->rules.interval_ms < shortest_ms)
            shortest_ms = u.rollout->rules.interval_ms;
    }
    if (pools.empty())
        return;
    fleet_->publish(figures_to_json(pools));
    if (fleet_->leading())
        fleet_->refresh_figures();
    next_publish_ = now + std::clamp(std::chrono::milliseconds(shortest_ms / 2), poll_interval, std::chrono::milliseconds(5000));
}

void rollout_driver::announce(const runtime::upstream_runtime& u, tracker& t, bool notify)
{
    const auto& r = *u.rollout;
    const auto fresh = std::min<std::uint64_t>(r.events_total - std::min(t.events_seen, r.events_total), r.history.size());
    for (auto i = r.history.size() - fresh; i < r.history.size(); ++i) {
        const auto& e = r.history[i];
        spdlog::info("rollout {}/{}: {}: {}", u.name, r.pool, e.event, e.detail);
        if (notify && !r.rules.webhook.empty())
            webhooks_.post(r.rules.webhook, event_json(u, e));
    }
    t.events_seen = r.events_total;
}

bool rollout_driver::commit(runtime::runtime_state next, std::string_view upstream, bool drained)
{
    const auto* u = next.find(upstream);
    const std::string canary = u && u->rollout ? u->rollout->pool : std::string{};
    if (const auto r = publisher_.commit(std::move(next)); r.status != 200) {
        // Every 100 ms while etcd is away: said once per kind of refusal, not at every tick.
        if (r.error != last_refusal_)
            spdlog::warn("rollout {}: the change was not applied ({}); judged again at the next tick", upstream,
                         r.error);
        last_refusal_ = r.error;
        return false;
    }
    last_refusal_.clear();
    if (drained && !canary.empty() && drained_)
        drained_(upstream, canary);
    return true;
}

} // namespace turnout::control
