#include "turnout/http/event_stream.hpp"

#include <algorithm>

namespace turnout::http {

event_field split_event_field(std::string_view line) noexcept
{
    const auto colon = line.find(':');
    if (colon == std::string_view::npos)
        return {line, {}};
    auto value = line.substr(colon + 1);
    if (value.starts_with(' '))
        value.remove_prefix(1);
    return {line.substr(0, colon), value};
}

void event_stream_lines::keep(std::string_view part)
{
    const auto room = max_line_ - std::min(max_line_, line_.size());
    line_.append(part.substr(0, room));
}

} // namespace turnout::http
