#include "turnout/config/table_reader.hpp"

#include <cctype>

namespace turnout::config::detail {

std::string_view describe(toml::node_type type)
{
    switch (type) {
    case toml::node_type::none: return "nothing";
    case toml::node_type::table: return "a table";
    case toml::node_type::array: return "an array";
    case toml::node_type::string: return "a string";
    case toml::node_type::integer: return "an integer";
    case toml::node_type::floating_point: return "a floating-point number";
    case toml::node_type::boolean: return "a boolean";
    case toml::node_type::date: return "a date";
    case toml::node_type::time: return "a time";
    case toml::node_type::date_time: return "a date-time";
    }
    return "an unknown value";
}

std::string lower(std::string_view s)
{
    std::string out{s};
    std::transform(out.begin(), out.end(), out.begin(), [](unsigned char c) { return std::tolower(c); });
    return out;
}

bool source_before(const toml::source_region& a, const toml::source_region& b)
{
    return std::pair{a.begin.line, a.begin.column} < std::pair{b.begin.line, b.begin.column};
}


std::pair<std::string, std::uint16_t> endpoint_key(const host_port& hp) { return {lower(hp.host), hp.port}; }

host_port read_address(const table_reader& table, std::string_view key, const std::string& text,
                       const toml::node& node)
{
    auto address = parse_host_port(text);
    if (!address)
        table.fail_at(node, key, "expected host:port such as \"127.0.0.1:8080\" or \"[::1]:8080\", got \"" + text + "\"");
    return std::move(*address);
}

} // namespace turnout::config::detail
