#include "turnout/upstream/tool_tally.hpp"

#include <algorithm>

namespace turnout::upstream {

void tool_tally::add(std::string_view name, tool_outcome outcome)
{
    std::lock_guard lock(mutex_);
    auto it = std::find_if(counts_.begin(), counts_.end(), [&](const tool_count& c) { return c.name == name; });
    if (it == counts_.end()) {
        if (counts_.size() >= max_names)
            name = {};
        it = std::find_if(counts_.begin(), counts_.end(), [&](const tool_count& c) { return c.name == name; });
        if (it == counts_.end()) {
            counts_.push_back({std::string(name), {}});
            it = counts_.end() - 1;
        }
    }
    ++it->by_outcome[static_cast<std::size_t>(outcome)];
}

std::vector<tool_count> tool_tally::read() const
{
    std::lock_guard lock(mutex_);
    return counts_;
}

} // namespace turnout::upstream
