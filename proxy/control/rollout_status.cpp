#include "turnout/control/rollout_status.hpp"

#include <boost/json/array.hpp>
#include <boost/json/object.hpp>

#include <ctime>

namespace turnout::control {
namespace {

namespace json = boost::json;

/// Unix ms → "2026-12-02T09:14:05Z".
std::string utc_text(std::int64_t unix_ms)
{
    const std::time_t t = static_cast<std::time_t>(unix_ms / 1000);
    std::tm tm{};
    gmtime_r(&t, &tm);
    char text[32];
    std::strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%SZ", &tm);
    return text;
}

json::object figures(const runtime::pool_figures& f)
{
    return {{"requests", f.requests}, {"error_rate", f.error_rate}, {"p99_ms", f.p99_ms}};
}

} // namespace

json::value rollout_status(const std::optional<runtime::rollout_runtime>& r)
{
    if (!r)
        return nullptr;
    json::array steps;
    for (const auto& s : r->steps)
        steps.push_back(json::object{{"weight", s.weight}, {"hold_s", static_cast<double>(s.hold_ms) / 1000}});
    json::array history;
    for (const auto& e : r->history)
        history.push_back(json::object{{"at", utc_text(e.at_ms)}, {"at_ms", e.at_ms}, {"event", e.event},
                                       {"detail", e.detail}});
    json::value last = nullptr;
    if (r->last)
        last = json::object{{"verdict", runtime::to_string(r->last->result)},
                            {"canary", figures(r->last->canary)},
                            {"baseline", figures(r->last->baseline)},
                            {"at", utc_text(r->last->at_ms)}};
    const auto& step = r->steps[r->step];
    const auto hold_left_ms = step.hold_ms > r->step_held_ms ? step.hold_ms - r->step_held_ms : 0;
    return json::object{{"kind", runtime::to_string(r->kind)},
                        {"pool", r->pool},
                        {"baseline", r->baseline},
                        {"state", runtime::to_string(r->phase)},
                        {"step", r->step + 1},
                        {"steps", std::move(steps)},
                        {"weight", r->weight()},
                        {"step_elapsed_s", static_cast<double>(r->step_held_ms) / 1000},
                        {"step_left_s", static_cast<double>(hold_left_ms) / 1000},
                        {"step_requests", r->step_requests},
                        {"min_requests", r->rules.min_requests},
                        {"interval_s", static_cast<double>(r->rules.interval_ms) / 1000},
                        {"failures", r->failures},
                        {"failure_limit", r->rules.failure_limit},
                        {"on_failure", config::to_string(r->rules.on_failure)},
                        {"reason", r->reason},
                        {"started", utc_text(r->started_ms)},
                        {"last", std::move(last)},
                        {"history", std::move(history)}};
}

} // namespace turnout::control
