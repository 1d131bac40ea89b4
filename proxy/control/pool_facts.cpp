#include "turnout/control/pool_facts.hpp"

#include <algorithm>

namespace turnout::control {

bool has_usable_backend(const runtime::pool& p)
{
    return std::any_of(p.backends.begin(), p.backends.end(),
                       [](const auto& b) { return b->healthy() && b->in_service(); });
}

std::optional<std::uint64_t> pool_tools_hash(const runtime::pool& p, bool& disagree)
{
    std::optional<std::uint64_t> agreed;
    disagree = false;
    for (const auto& b : p.backends) {
        const auto r = b->report();
        if (!r.tools_hash)
            continue;
        if (agreed && *agreed != *r.tools_hash)
            disagree = true;
        agreed = agreed.value_or(*r.tools_hash);
    }
    return disagree ? std::nullopt : agreed;
}

} // namespace turnout::control
