#include "turnout/runtime/rollout_json.hpp"

#include "turnout/config/rules.hpp"

#include <boost/json.hpp>

#include <stdexcept>

namespace turnout::runtime {
namespace json = boost::json;
namespace {

/// Reads the members of one object, each checked, with paths for messages.
class reader {
public:
    reader(const json::value& v, std::string where) : where_(std::move(where))
    {
        if (!v.is_object())
            fail("expected an object");
        o_ = &v.get_object();
    }

    [[noreturn]] void fail(const std::string& what, std::string_view key = {}) const
    {
        const auto at = key.empty() ? where_ : where_ + "." + std::string(key);
        throw std::runtime_error(at + ": " + what);
    }

    const json::value& at(std::string_view key) const
    {
        const auto* v = o_->if_contains(key);
        if (!v)
            fail("missing key \"" + std::string(key) + "\"");
        return *v;
    }
    std::string path(std::string_view key) const { return where_ + "." + std::string(key); }

    std::string string(std::string_view key) const
    {
        const auto& v = at(key);
        if (!v.is_string())
            fail("expected a string", key);
        return std::string(v.get_string());
    }
    std::int64_t integer(std::string_view key, std::int64_t min = 0) const
    {
        const auto& v = at(key);
        const auto n = v.is_int64() ? std::optional<std::int64_t>(v.get_int64())
                       : v.is_uint64() && v.get_uint64() <= static_cast<std::uint64_t>(INT64_MAX)
                           ? std::optional<std::int64_t>(static_cast<std::int64_t>(v.get_uint64()))
                           : std::nullopt;
        if (!n || *n < min)
            fail("expected an integer >= " + std::to_string(min), key);
        return *n;
    }
    double number(std::string_view key) const
    {
        const auto& v = at(key);
        if (!v.is_number())
            fail("expected a number", key);
        return v.to_number<double>();
    }
    const json::array& array(std::string_view key) const
    {
        const auto& v = at(key);
        if (!v.is_array())
            fail("expected an array", key);
        return v.get_array();
    }
    bool null(std::string_view key) const { return at(key).is_null(); }
    template <class Enum>
    Enum name(std::string_view key, std::optional<Enum> (*parse)(std::string_view) noexcept) const
    {
        const auto parsed = parse(string(key));
        if (!parsed)
            fail("unknown value \"" + string(key) + "\"", key);
        return *parsed;
    }

private:
    const json::object* o_ = nullptr;
    std::string where_;
};

json::object figures_json(const pool_figures& f)
{
    return {{"requests", f.requests}, {"error_rate", f.error_rate}, {"p99_ms", f.p99_ms}};
}

pool_figures read_figures(const json::value& v, const std::string& where)
{
    const reader r(v, where);
    return {static_cast<std::uint64_t>(r.integer("requests")), r.number("error_rate"), r.number("p99_ms")};
}

json::object rules_json(const rollout_rules& rules)
{
    return {{"interval_ms", rules.interval_ms},
            {"failure_limit", rules.failure_limit},
            {"min_requests", rules.min_requests},
            {"max_error_ratio", rules.max_error_ratio},
            {"error_rate_floor", rules.error_rate_floor},
            {"max_p99_ratio", rules.max_p99_ratio},
            {"latency_floor_ms", rules.latency_floor_ms},
            {"on_failure", config::to_string(rules.on_failure)},
            {"rollback_drain_ms", rules.rollback_drain_ms},
            {"webhook", rules.webhook}};
}

rollout_rules read_rules(const json::value& v, const std::string& where)
{
    const reader r(v, where);
    rollout_rules rules;
    rules.interval_ms = r.integer("interval_ms", 1);
    rules.failure_limit = static_cast<unsigned>(r.integer("failure_limit", 1));
    rules.min_requests = static_cast<std::uint64_t>(r.integer("min_requests"));
    rules.max_error_ratio = r.number("max_error_ratio");
    rules.error_rate_floor = r.number("error_rate_floor");
    rules.max_p99_ratio = r.number("max_p99_ratio");
    rules.latency_floor_ms = r.number("latency_floor_ms");
    rules.on_failure = r.name<failure_action>("on_failure", config::parse_failure_action);
    rules.rollback_drain_ms = r.integer("rollback_drain_ms");
    rules.webhook = r.string("webhook");
    return rules;
}

} // namespace

json::value rollout_to_json(const rollout_runtime& r)
{
    json::array steps;
    for (const auto& s : r.steps)
        steps.push_back(json::object{{"weight", s.weight}, {"hold_ms", s.hold_ms}});
    json::array before;
    for (const auto& [pool, weight] : r.weights_before)
        before.push_back(json::array{json::value(pool), json::value(weight)});
    json::array history;
    for (const auto& e : r.history)
        history.push_back(json::object{{"at_ms", e.at_ms}, {"event", e.event}, {"detail", e.detail}});
    json::value last = nullptr;
    if (r.last)
        last = json::object{{"verdict", to_string(r.last->result)},
                            {"canary", figures_json(r.last->canary)},
                            {"baseline", figures_json(r.last->baseline)},
                            {"at_ms", r.last->at_ms}};
    return json::object{
        {"kind", to_string(r.kind)},
        {"pool", r.pool},
        {"baseline", r.baseline},
        {"steps", std::move(steps)},
        {"rules", rules_json(r.rules)},
        {"phase", to_string(r.phase)},
        {"step", r.step},
        {"step_held_ms", r.step_held_ms},
        {"step_requests", r.step_requests},
        {"failures", r.failures},
        {"reason", r.reason},
        {"weights_before", std::move(before)},
        {"frozen_baseline", r.frozen_baseline ? json::value(figures_json(*r.frozen_baseline)) : json::value(nullptr)},
        {"last", std::move(last)},
        {"history", std::move(history)},
        {"started_ms", r.started_ms},
        {"events_total", r.events_total},
    };
}

rollout_runtime rollout_from_json(const json::value& v, const std::string& where)
{
    const reader r(v, where);
    rollout_runtime out;
    out.kind = r.name<rollout_kind>("kind", parse_rollout_kind);
    out.pool = r.string("pool");
    out.baseline = r.string("baseline");
    if (!config::is_valid_name(out.pool) || !config::is_valid_name(out.baseline) || out.pool == out.baseline)
        r.fail("pool and baseline must be two valid pool names");
    const auto& steps = r.array("steps");
    for (std::size_t i = 0; i < steps.size(); ++i) {
        const reader s(steps[i], r.path("steps") + "[" + std::to_string(i) + "]");
        out.steps.push_back({static_cast<std::uint32_t>(s.integer("weight")), s.integer("hold_ms")});
    }
    // A switch's watch is one step of weight 100 held for the watch.
    const auto problem = out.kind == rollout_kind::steps ? config::steps_problem(out.steps)
                         : out.steps.size() != 1         ? std::optional<std::string>("a watch has one step")
                                                         : std::nullopt;
    if (problem)
        r.fail(*problem, "steps");
    out.rules = read_rules(r.at("rules"), r.path("rules"));
    out.phase = r.name<rollout_phase>("phase", parse_rollout_phase);
    out.step = static_cast<std::size_t>(r.integer("step"));
    if (out.step >= out.steps.size())
        r.fail("past the last step", "step");
    out.step_held_ms = r.integer("step_held_ms");
    out.step_requests = static_cast<std::uint64_t>(r.integer("step_requests"));
    out.failures = static_cast<unsigned>(r.integer("failures"));
    out.reason = r.string("reason");
    const auto& before = r.array("weights_before");
    for (std::size_t i = 0; i < before.size(); ++i) {
        const auto& pair = before[i];
        if (!pair.is_array() || pair.get_array().size() != 2 || !pair.get_array()[0].is_string() ||
            !pair.get_array()[1].is_number())
            r.fail("expected [pool, weight] pairs", "weights_before");
        const auto weight = pair.get_array()[1].to_number<std::int64_t>();
        if (!config::is_valid_weight(weight))
            r.fail("weights must be " + std::string(config::weight_rule), "weights_before");
        out.weights_before.emplace_back(std::string(pair.get_array()[0].get_string()),
                                        static_cast<std::uint32_t>(weight));
    }
    if (!r.null("frozen_baseline"))
        out.frozen_baseline = read_figures(r.at("frozen_baseline"), r.path("frozen_baseline"));
    if (!r.null("last")) {
        const reader l(r.at("last"), r.path("last"));
        out.last = verdict_record{l.name<verdict>("verdict", parse_verdict), read_figures(l.at("canary"), l.path("canary")),
                                  read_figures(l.at("baseline"), l.path("baseline")), l.integer("at_ms")};
    }
    out.started_ms = r.integer("started_ms");
    out.events_total = static_cast<std::uint64_t>(r.integer("events_total"));
    const auto& history = r.array("history");
    for (std::size_t i = 0; i < history.size() && i < rollout_runtime::max_history; ++i) {
        const reader e(history[i], r.path("history") + "[" + std::to_string(i) + "]");
        out.history.push_back({e.integer("at_ms"), e.string("event"), e.string("detail")});
    }
    return out;
}

} // namespace turnout::runtime
