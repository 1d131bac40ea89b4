// [[route]]: which upstream gets a request, by host, path prefix and MCP method and name.
#include "turnout/config/table_reader.hpp"

#include <set>
#include <tuple>

namespace turnout::config::detail {

namespace {

route_config read_route(const context& ctx, const toml::table& table, const configuration& config)
{
    const table_reader r{ctx, table, "[[route]]", {"path_prefix", "host", "upstream", "mcp_method", "mcp_name"}};
    route_config route;
    if (const auto prefix = r.get_string("path_prefix")) {
        if (!prefix->starts_with('/'))
            r.fail_at("path_prefix", "must start with '/', got \"" + *prefix + "\"");
        route.path_prefix = *prefix;
    }
    if (const auto host = r.get_string("host")) {
        // Host names compare case-insensitively; storing them lower-case lets the router
        // compare bytes.
        const bool ok = !host->empty() && host->find_first_of(" \t/") == std::string::npos;
        if (!ok)
            r.fail_at("host", "expected a host name such as \"example.com\", got \"" + *host + "\"");
        route.host = lower(*host);
    }
    // MCP facts: exact, or '*' as a glob; a name alone would match a tool, a prompt and a
    // resource alike, so it needs its method.
    for (const auto key : {"mcp_method", "mcp_name"}) {
        if (const auto pattern = r.get_string(key)) {
            const bool ok = !pattern->empty() && std::none_of(pattern->begin(), pattern->end(), [](unsigned char c) {
                return c < 0x20 || c == 0x7f;
            });
            if (!ok)
                r.fail_at(key, "expected a name, or a pattern with '*' such as \"search_*\", got \"" + *pattern + "\"");
            (std::string_view{key} == "mcp_method" ? route.mcp_method : route.mcp_name) = *pattern;
        }
    }
    if (!route.mcp_name.empty() && route.mcp_method.empty())
        r.fail_at("mcp_name", "needs mcp_method in the same [[route]] (\"tools/call\", \"prompts/get\" or "
                              "\"resources/read\")");
    route.upstream = r.require_string("upstream");
    if (!config.find_upstream(route.upstream))
        r.fail_at("upstream", "no [[upstream]] is named '" + route.upstream + "'");
    return route;
}

} // namespace

void read_routes(const context& ctx, const table_reader& root, configuration& config)
{
    const auto tables = root.get_tables("route");
    std::set<std::tuple<std::string, std::string, std::string, std::string>> seen;
    for (const toml::table* table : tables) {
        route_config route = read_route(ctx, *table, config);
        if (!seen.emplace(route.host, route.path_prefix, route.mcp_method, route.mcp_name).second) {
            const toml::node* prefix = table->get("path_prefix");
            ctx.fail(prefix ? prefix->source() : table->source(),
                     "route: another [[route]] already has path_prefix \"" + route.path_prefix + "\"" +
                         (route.host.empty() ? std::string{} : " and host \"" + route.host + "\"") +
                         (route.mcp_method.empty() ? std::string{} : " and mcp_method \"" + route.mcp_method + "\"") +
                         (route.mcp_name.empty() ? std::string{} : " and mcp_name \"" + route.mcp_name + "\""));
        }
        config.routes.push_back(std::move(route));
    }
    if (!tables.empty() || config.upstreams.empty())
        return;
    // With a single upstream and no [[route]], everything goes to it: the smallest useful
    // config needs no routing section. With several, guessing would hide a mistake.
    if (config.upstreams.size() > 1)
        ctx.fail("several [[upstream]] tables but no [[route]]; add a [[route]] to say which gets what");
    config.routes.push_back(route_config{"/", "", config.upstreams.front().name, "", ""});
}

} // namespace turnout::config::detail
