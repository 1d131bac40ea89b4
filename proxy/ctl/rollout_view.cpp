#include "turnout/ctl/rollout_view.hpp"

#include "turnout/ctl/status_view.hpp"

#include <cstdio>

namespace turnout::ctl {
namespace {

double real(const json::object& o, std::string_view key)
{
    const auto* v = field(o, key);
    return v && v->is_number() ? v->to_number<double>() : 0.0;
}

std::string text(const json::object& o, std::string_view key)
{
    const auto* v = field(o, key);
    return v && v->is_string() ? std::string(v->get_string()) : std::string{};
}

/// Seconds as the operator wrote them: 90 → "1m30s", 0.4 → "400ms".
std::string span(double seconds)
{
    char buf[32];
    if (seconds < 1) {
        std::snprintf(buf, sizeof buf, "%.0fms", seconds * 1000);
        return buf;
    }
    const auto s = static_cast<long long>(seconds);
    if (s >= 3600)
        std::snprintf(buf, sizeof buf, "%lldh%02lldm", s / 3600, s / 60 % 60);
    else if (s >= 60)
        std::snprintf(buf, sizeof buf, "%lldm%02llds", s / 60, s % 60);
    else
        std::snprintf(buf, sizeof buf, "%llds", s);
    return buf;
}

std::string figures(const json::object& f)
{
    char buf[96];
    std::snprintf(buf, sizeof buf, "%lld req, %.2f%% errors, p99 %.1f ms", static_cast<long long>(number(f, "requests")),
                  real(f, "error_rate") * 100, real(f, "p99_ms"));
    return buf;
}

} // namespace

std::string rollout_state(const json::object& r)
{
    return text(r, "state");
}

std::size_t print_events(std::ostream& out, const json::object& r, std::size_t from)
{
    const auto& history = array_of(r, "history");
    for (std::size_t i = from; i < history.size(); ++i)
        if (const auto* e = history[i].if_object())
            out << "  " << text(*e, "at") << "  " << text(*e, "event") << "  " << text(*e, "detail") << '\n';
    return history.size();
}

void print_rollout(std::ostream& out, const std::string& upstream, const json::object& r)
{
    const auto step = number(r, "step");
    const auto& steps = array_of(r, "steps");
    out << upstream << ": " << (text(r, "kind") == "switch_watch" ? "watched switch to " : "rollout of ")
        << text(r, "pool") << " against " << text(r, "baseline") << " — " << rollout_state(r);
    if (!text(r, "reason").empty())
        out << " (" << text(r, "reason") << ")";
    out << '\n';

    out << "  steps:";
    for (std::size_t i = 0; i < steps.size(); ++i) {
        const auto* s = steps[i].if_object();
        if (!s)
            continue;
        const auto n = static_cast<std::int64_t>(i) + 1;
        out << (i ? "  ·" : "") << ' ' << number(*s, "weight") << '%';
        if (real(*s, "hold_s") > 0)
            out << ' ' << span(real(*s, "hold_s"));
        out << (n < step ? " done" : n == step ? " <- now" : "");
    }
    out << '\n';
    out << "  now: " << text(r, "pool") << ' ' << number(r, "weight") << "% of new sessions, "
        << span(real(r, "step_elapsed_s")) << " held, " << span(real(r, "step_left_s")) << " left in the step, "
        << number(r, "step_requests") << " canary requests (min " << number(r, "min_requests") << "), failures "
        << number(r, "failures") << " of " << number(r, "failure_limit") << " in a row\n";
    if (const auto* last = field(r, "last"); last && last->is_object()) {
        const auto& l = last->get_object();
        out << "  last interval (" << text(l, "at") << "): " << text(l, "verdict");
        if (const auto* c = field(l, "canary"); c && c->is_object())
            out << " — canary " << figures(c->get_object());
        if (const auto* b = field(l, "baseline"); b && b->is_object())
            out << "; baseline " << figures(b->get_object());
        out << '\n';
    }
    out << "  history:\n";
    print_events(out, r, 0);
}

} // namespace turnout::ctl
