#pragma once
// Request → upstream: the route table the routing stage consults. The most specific route
// wins: one naming an MCP method and name, then one naming a method, then the others (exact
// patterns before globs, the longer pattern first); within each, as nginx's server/location
// choice, routes naming the request's host before host-less ones, then an exact path before
// any prefix (nginx's `location =`), then the longest matching path prefix. A route limited
// to some listeners (nginx's server blocks, each with its own listen) matches requests that
// arrived on one of them only. A route matches on the facts of a request (request_facts).

#include "turnout/config/config.hpp"

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace turnout::routing {

/// What routes are matched on, read from the request head.
struct request_facts {
    std::string_view host; // the Host field as sent (any case, port allowed)
    std::string_view path; // the request target's path
    std::string_view mcp_method; // JSON-RPC method (Mcp-Method or the body); empty: unknown
    std::string_view mcp_name;   // tool/prompt name or resource URI (Mcp-Name or the body)
    std::size_t listener = 0;    // which [[listen]] accepted the request
};

struct route {
    std::string host;        // lower case, no port; empty = any host
    std::string path_prefix; // starts with '/'
    std::size_t upstream = 0; // index into the snapshot's upstreams
    std::string mcp_method;   // exact, or '*' as a glob; empty = any
    std::string mcp_name;     // exact, or '*' as a glob; empty = any
    bool exact = false;       // path_prefix is the whole path
    std::vector<std::size_t> listeners; // sorted; empty = every listener
    /// Answered by turnout itself (upstream unused); points into the snapshot's configuration.
    const config::fixed_answer* answer = nullptr;

    bool matches(const request_facts& r) const noexcept;
    /// 2 for method and name, 1 for a method, 0 for neither.
    int mcp_rank() const noexcept { return !mcp_method.empty() + !mcp_name.empty(); }
};

class router {
public:
    router() = default;
    explicit router(std::vector<route> routes);

    /// The first (most specific) route that matches r, or null.
    const route* find(const request_facts& r) const noexcept;
    /// The upstream of the first route that matches r (nullopt also for a fixed answer).
    std::optional<std::size_t> match(const request_facts& r) const noexcept;
    std::optional<std::size_t> match(std::string_view host, std::string_view path) const noexcept
    {
        return match(request_facts{host, path});
    }

    const std::vector<route>& routes() const noexcept { return routes_; }
    /// Some route names an MCP method: requests' methods and names are worth reading.
    bool has_mcp_rules() const noexcept { return has_mcp_rules_; }

private:
    std::vector<route> routes_; // most specific first
    bool has_mcp_rules_ = false;
};

/// Whether text matches pattern, where '*' stands for any run of characters.
bool glob_match(std::string_view pattern, std::string_view text) noexcept;

/// The host part of a Host field value: port removed ("[::1]:80" → "[::1]").
std::string_view host_without_port(std::string_view host) noexcept;

/// The path of a request target: origin-form up to '?', or the path of an absolute-form URI.
std::string_view target_path(std::string_view target) noexcept;

} // namespace turnout::routing
