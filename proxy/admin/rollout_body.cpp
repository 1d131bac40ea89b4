#include "turnout/admin/rollout_body.hpp"

#include "turnout/config/duration.hpp"

namespace turnout::admin {
namespace {

namespace json = boost::json;
using outcome = std::variant<::turnout::control::rollout_request, std::string>;

std::optional<std::int64_t> integer_of(const json::value& v)
{
    if (const auto* i = v.if_int64())
        return *i;
    if (const auto* u = v.if_uint64(); u && *u <= static_cast<std::uint64_t>(INT64_MAX))
        return static_cast<std::int64_t>(*u);
    return std::nullopt;
}

std::optional<std::string> read_steps(const json::value& v, std::vector<config::rollout_step>& steps)
{
    const auto* list = v.if_array();
    if (!list || list->empty())
        return R"(rollout: "steps" must be a list such as [{"weight":5,"hold":"30m"},{"weight":100}])";
    for (const auto& element : *list) {
        const auto* o = element.if_object();
        const auto* weight = o ? o->if_contains("weight") : nullptr;
        const auto w = weight ? integer_of(*weight) : std::nullopt;
        if (!w || *w < 0 || *w > 100)
            return R"(rollout: each step needs a "weight" from 1 to 100)";
        config::rollout_step step{static_cast<std::uint32_t>(*w), 0};
        if (const auto* hold = o->if_contains("hold")) {
            const auto* text = hold->if_string();
            const auto d = text ? config::parse_duration(*text) : std::nullopt;
            if (!d)
                return R"(rollout: a step's "hold" must be a duration such as "30m")";
            step.hold_ms = d->count();
        }
        for (const auto& field : *o)
            if (field.key() != "weight" && field.key() != "hold")
                return "rollout: unknown step field \"" + std::string(field.key()) + "\"";
        steps.push_back(step);
    }
    return std::nullopt;
}

} // namespace

std::variant<::turnout::control::rollout_request, std::string> read_rollout_body(const json::object& body)
{
    ::turnout::control::rollout_request r;
    const auto* pool = body.if_contains("pool");
    if (!pool || !pool->is_string() || pool->get_string().empty())
        return outcome(std::string(R"(rollout: "pool" must name the canary pool, such as {"pool":"green"})"));
    r.pool = pool->get_string();
    if (const auto* steps = body.if_contains("steps")) {
        std::vector<config::rollout_step> list;
        if (auto problem = read_steps(*steps, list))
            return outcome(std::move(*problem));
        r.steps = std::move(list);
    }
    if (const auto* baseline = body.if_contains("baseline")) {
        if (!baseline->is_string() || baseline->get_string().empty())
            return outcome(std::string(R"(rollout: "baseline" must be a pool name)"));
        r.baseline = std::string(baseline->get_string());
    }
    if (const auto* interval = body.if_contains("interval")) {
        const auto* text = interval->if_string();
        const auto d = text ? config::parse_duration(*text) : std::nullopt;
        if (!d)
            return outcome(std::string(R"(rollout: "interval" must be a duration such as "1m")"));
        r.interval_ms = d->count();
    }
    if (const auto* limit = body.if_contains("failure_limit")) {
        const auto n = integer_of(*limit);
        if (!n || *n < 0 || *n > 1000)
            return outcome(std::string(R"(rollout: "failure_limit" must be an integer from 1 to 1000)"));
        r.failure_limit = static_cast<unsigned>(*n);
    }
    if (const auto* action = body.if_contains("on_failure")) {
        const auto* text = action->if_string();
        r.on_failure = text ? config::parse_failure_action(*text) : std::nullopt;
        if (!r.on_failure)
            return outcome(std::string(R"(rollout: "on_failure" must be "rollback" or "pause")"));
    }
    if (const auto* force = body.if_contains("force")) {
        if (!force->is_bool())
            return outcome(std::string(R"(rollout: "force" must be true or false)"));
        r.force = force->get_bool();
    }
    return outcome(std::move(r));
}

} // namespace turnout::admin
