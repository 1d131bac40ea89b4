#include "turnout/control/tool_compatibility.hpp"

#include <algorithm>
#include <iterator>

namespace turnout::control {
namespace {

void sort_unique(std::vector<std::string>& names)
{
    std::sort(names.begin(), names.end());
    names.erase(std::unique(names.begin(), names.end()), names.end());
}

void merge_names(std::vector<std::string>& into, std::vector<std::string>& more)
{
    std::move(more.begin(), more.end(), std::back_inserter(into));
    sort_unique(into);
}

void merge_into(tool_changes& into, tool_changes more)
{
    merge_names(into.added, more.added);
    merge_names(into.removed, more.removed);
    merge_names(into.changed, more.changed);
}

std::string joined(const std::vector<std::string>& names)
{
    std::string out;
    for (const auto& name : names)
        out += (out.empty() ? "" : ", ") + name;
    return out;
}

} // namespace

tool_changes compare_tools(std::span<const upstream::tool_signature> baseline,
                           std::span<const upstream::tool_signature> candidate)
{
    tool_changes out;
    auto b = baseline.begin();
    auto c = candidate.begin();
    // One walk over both sorted lists.
    while (b != baseline.end() || c != candidate.end()) {
        if (c == candidate.end() || (b != baseline.end() && b->name < c->name)) {
            out.removed.push_back(b++->name);
        } else if (b == baseline.end() || c->name < b->name) {
            out.added.push_back(c++->name);
        } else {
            if (b->input_schema_hash != c->input_schema_hash)
                out.changed.push_back(c->name);
            ++b;
            ++c;
        }
    }
    return out;
}

tool_compatibility compatibility(const runtime::pool& p, const runtime::pool* baseline)
{
    tool_compatibility out{tools_of(p), {}};
    if (!baseline || baseline == &p || !out.tools.probed)
        return out;
    const auto reference = tools_of(*baseline);
    if (!reference.probed)
        return out;
    // Backend by backend: a pool whose backends disagree reports what each of them changes.
    for (const auto& b : p.backends) {
        const auto r = b->report();
        if (r.tools_hash)
            merge_into(out.changes, compare_tools(reference.tools, r.tools));
    }
    return out;
}

const runtime::pool* default_baseline(const runtime::upstream_state& u, const runtime::pool* excluding)
{
    const runtime::pool* heaviest = nullptr;
    for (const auto& p : u.pools)
        if (&p != excluding && p.weight > 0 && (!heaviest || p.weight > heaviest->weight))
            heaviest = &p;
    return heaviest;
}

std::optional<std::string> breaking_change(const runtime::upstream_state& u, const runtime::pool& target,
                                           const runtime::pool* baseline)
{
    if (!baseline)
        baseline = default_baseline(u, &target);
    const auto c = compatibility(target, baseline);
    if (!c.tools.consistent)
        return "the backends of pool '" + target.name + "' disagree on their tools";
    if (!c.changes.breaking())
        return std::nullopt;
    std::string what;
    if (!c.changes.removed.empty())
        what = "removed: " + joined(c.changes.removed);
    if (!c.changes.changed.empty())
        what += (what.empty() ? "" : "; ") + std::string("input schema changed: ") + joined(c.changes.changed);
    return "the tools of pool '" + target.name + "' break those of pool '" + baseline->name + "' (" + what + ")";
}

} // namespace turnout::control
