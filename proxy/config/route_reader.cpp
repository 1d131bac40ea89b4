// [[route]]: which upstream gets a request (or what turnout answers itself), by listener,
// host, path (prefix or exact) and MCP method and name.
#include "turnout/config/table_reader.hpp"

#include <algorithm>
#include <array>
#include <cctype>
#include <set>
#include <tuple>

namespace turnout::config::detail {

namespace {

constexpr std::array<std::string_view, 3> answer_variables = {"scheme", "host", "request_uri"};

bool has_control(std::string_view text)
{
    return std::any_of(text.begin(), text.end(), [](unsigned char c) { return c < 0x20 || c == 0x7f; });
}

// The first $name in text that is not one turnout expands (nginx would refuse it too: an
// unknown variable is an error when its configuration loads). A '$' before anything but a
// letter or '_' is text.
std::optional<std::string> unknown_variable(std::string_view text)
{
    for (auto at = text.find('$'); at != std::string_view::npos; at = text.find('$', at + 1)) {
        auto end = at + 1;
        while (end < text.size() && (std::isalnum(static_cast<unsigned char>(text[end])) || text[end] == '_'))
            ++end;
        const auto name = text.substr(at + 1, end - at - 1);
        if (name.empty() || std::isdigit(static_cast<unsigned char>(name.front())))
            continue;
        if (std::find(answer_variables.begin(), answer_variables.end(), name) == answer_variables.end())
            return std::string{"$"} + std::string{name};
    }
    return std::nullopt;
}

fixed_answer read_answer(const context& ctx, const toml::table& table)
{
    const table_reader r{ctx, table, "[route.answer]", {"status", "location", "body"}};
    if (!r.find("status"))
        ctx.fail(r.source(), "route.answer: missing key 'status' (the HTTP status turnout answers with)");
    fixed_answer answer;
    answer.status = static_cast<unsigned>(*r.get_integer("status", 200, 599));
    answer.location = r.get_string("location").value_or("");
    answer.body = r.get_string("body").value_or("");
    if (is_redirect_status(answer.status) && answer.location.empty())
        r.fail_at("status", std::to_string(answer.status) + " is a redirect: it needs location (the URL to send "
                                                             "clients to)");
    if (!is_redirect_status(answer.status) && r.find("location"))
        r.fail_at("location", "only a redirect (301, 302, 303, 307 or 308) has a location");
    if (is_redirect_status(answer.status) && r.find("body"))
        r.fail_at("body", "a redirect answers with its location, not a body");
    if (has_control(answer.location))
        r.fail_at("location", "must not contain control characters");
    for (const auto key : {"location", "body"})
        if (const auto bad = unknown_variable(key == std::string_view{"location"} ? answer.location : answer.body))
            r.fail_at(key, "unknown variable " + *bad + " (turnout expands $scheme, $host and $request_uri)");
    return answer;
}

// listen = "NAME" or ["NAME", ...]: the [[listen]] tables whose requests the route takes.
void read_route_listeners(const table_reader& r, const configuration& config, route_config& route)
{
    const toml::node* node = r.find("listen");
    if (!node)
        return;
    std::vector<std::pair<std::string, const toml::node*>> names;
    if (node->is_string())
        names.emplace_back(node->as_string()->get(), node);
    else
        names = r.get_strings("listen");
    if (names.empty())
        r.fail_at("listen", "names no [[listen]]; leave the key out for every listener");
    for (const auto& entry : names) {
        // Named, not a structured binding: clang 14 (the fuzz build) cannot capture those.
        const std::string& name = entry.first;
        const toml::node* at = entry.second;
        const auto it = std::find_if(config.listeners.begin(), config.listeners.end(),
                                     [&](const listen_config& l) { return !l.name.empty() && l.name == name; });
        if (it == config.listeners.end())
            r.fail_at(*at, "listen", "no [[listen]] is named '" + name + "' (give one name = \"" + name + "\")");
        const auto index = static_cast<std::size_t>(it - config.listeners.begin());
        if (std::find(route.listeners.begin(), route.listeners.end(), index) == route.listeners.end()) {
            route.listen.push_back(name);
            route.listeners.push_back(index);
        }
    }
    std::sort(route.listeners.begin(), route.listeners.end());
}

route_config read_route(const context& ctx, const toml::table& table, const configuration& config)
{
    const table_reader r{ctx, table, "[[route]]",
                         {"path_prefix", "path", "host", "listen", "upstream", "answer", "mcp_method", "mcp_name"}};
    route_config route;
    if (r.find("path_prefix") && r.find("path"))
        r.fail_at("path", "a route has path (this path only) or path_prefix, not both");
    for (const auto key : {"path_prefix", "path"}) {
        if (const auto path = r.get_string(key)) {
            if (!path->starts_with('/'))
                r.fail_at(key, "must start with '/', got \"" + *path + "\"");
            route.path_prefix = *path;
            route.exact = std::string_view{key} == "path";
        }
    }
    if (const auto host = r.get_string("host")) {
        // Host names compare case-insensitively; storing them lower-case lets the router
        // compare bytes.
        const bool ok = !host->empty() && host->find_first_of(" \t/") == std::string::npos;
        if (!ok)
            r.fail_at("host", "expected a host name such as \"example.com\", got \"" + *host + "\"");
        route.host = lower(*host);
    }
    read_route_listeners(r, config, route);
    // MCP facts: exact, or '*' as a glob; a name alone would match a tool, a prompt and a
    // resource alike, so it needs its method.
    for (const auto key : {"mcp_method", "mcp_name"}) {
        if (const auto pattern = r.get_string(key)) {
            if (pattern->empty() || has_control(*pattern))
                r.fail_at(key, "expected a name, or a pattern with '*' such as \"search_*\", got \"" + *pattern + "\"");
            (std::string_view{key} == "mcp_method" ? route.mcp_method : route.mcp_name) = *pattern;
        }
    }
    if (!route.mcp_name.empty() && route.mcp_method.empty())
        r.fail_at("mcp_name", "needs mcp_method in the same [[route]] (\"tools/call\", \"prompts/get\" or "
                              "\"resources/read\")");
    if (const toml::table* answer = r.get_table("answer")) {
        if (r.find("upstream"))
            r.fail_at("answer", "a route either forwards (upstream) or answers itself (answer), not both");
        route.answer = read_answer(ctx, *answer);
        return route;
    }
    route.upstream = r.require_string("upstream");
    if (!config.find_upstream(route.upstream))
        r.fail_at("upstream", "no [[upstream]] is named '" + route.upstream + "'");
    return route;
}

std::string describe_match(const route_config& route)
{
    std::string text = std::string{route.exact ? "path" : "path_prefix"} + " \"" + route.path_prefix + "\"";
    if (!route.host.empty())
        text += " and host \"" + route.host + "\"";
    if (!route.mcp_method.empty())
        text += " and mcp_method \"" + route.mcp_method + "\"";
    if (!route.mcp_name.empty())
        text += " and mcp_name \"" + route.mcp_name + "\"";
    for (std::size_t i = 0; i < route.listen.size(); ++i)
        text += (i ? ", \"" : " and listen \"") + route.listen[i] + "\"";
    return text;
}

} // namespace

void read_routes(const context& ctx, const table_reader& root, configuration& config)
{
    const auto tables = root.get_tables("route");
    std::set<std::tuple<std::string, std::string, bool, std::string, std::string, std::vector<std::size_t>>> seen;
    for (const toml::table* table : tables) {
        route_config route = read_route(ctx, *table, config);
        if (!seen.emplace(route.host, route.path_prefix, route.exact, route.mcp_method, route.mcp_name,
                          route.listeners)
                 .second) {
            const toml::node* path = table->get(route.exact ? "path" : "path_prefix");
            ctx.fail(path ? path->source() : table->source(),
                     "route: another [[route]] already has " + describe_match(route));
        }
        config.routes.push_back(std::move(route));
    }
    if (!tables.empty() || config.upstreams.empty())
        return;
    // With a single upstream and no [[route]], everything goes to it: the smallest useful
    // config needs no routing section. With several, guessing would hide a mistake.
    if (config.upstreams.size() > 1)
        ctx.fail("several [[upstream]] tables but no [[route]]; add a [[route]] to say which gets what");
    config.routes.push_back(route_config{.upstream = config.upstreams.front().name});
}

} // namespace turnout::config::detail
