#pragma once
// One tool a backend announced in its tools/list: its name and a hash of its input schema
// (canonical JSON: object keys sorted), so that two versions of a server can be compared tool
// by tool — which were added, removed, or take other arguments.

#include <compare>
#include <cstdint>
#include <string>

namespace turnout::upstream {

struct tool_signature {
    std::string name;
    std::uint64_t input_schema_hash = 0;

    friend bool operator==(const tool_signature&, const tool_signature&) = default;
    friend auto operator<=>(const tool_signature&, const tool_signature&) = default;
};

} // namespace turnout::upstream
