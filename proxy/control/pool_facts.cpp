#include "turnout/control/pool_facts.hpp"

#include <algorithm>

namespace turnout::control {

bool has_usable_backend(const runtime::pool& p)
{
    return std::any_of(p.backends.begin(), p.backends.end(),
                       [](const auto& b) { return b->healthy() && b->in_service(); });
}

pool_tools tools_of(const runtime::pool& p)
{
    pool_tools out;
    for (const auto& b : p.backends) {
        const auto r = b->report();
        if (!r.tools_hash)
            continue;
        if (out.probed && *out.hash != *r.tools_hash)
            out.consistent = false;
        if (!out.probed)
            out.hash = r.tools_hash;
        out.probed = true;
        for (const auto& tool : r.tools) {
            const auto at = std::lower_bound(out.tools.begin(), out.tools.end(), tool.name,
                                             [](const auto& t, const std::string& name) { return t.name < name; });
            if (at == out.tools.end() || at->name != tool.name)
                out.tools.insert(at, tool);
        }
    }
    if (!out.consistent)
        out.hash.reset();
    return out;
}

std::vector<std::string> pool_tool_names(const runtime::pool& p)
{
    std::vector<std::string> names;
    for (auto& tool : tools_of(p).tools)
        names.push_back(std::move(tool.name));
    return names;
}

} // namespace turnout::control
