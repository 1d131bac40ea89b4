#pragma once
// Request → upstream: the route table the routing stage consults. Like nginx's
// server/location choice: routes naming the request's host are tried first, then host-less
// ones; within each, the longest matching path prefix wins. A route matches on the facts of a
// request (request_facts), so rules on more than host and path (an MCP method or tool name)
// add a fact and a condition, not a new path through the proxy.

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
};

struct route {
    std::string host;        // lower case, no port; empty = any host
    std::string path_prefix; // starts with '/'
    std::size_t upstream = 0; // index into the snapshot's upstreams

    bool matches(const request_facts& r) const noexcept;
};

class router {
public:
    router() = default;
    explicit router(std::vector<route> routes);

    /// The upstream of the first route that matches r.
    std::optional<std::size_t> match(const request_facts& r) const noexcept;
    std::optional<std::size_t> match(std::string_view host, std::string_view path) const noexcept
    {
        return match(request_facts{host, path});
    }

    const std::vector<route>& routes() const noexcept { return routes_; }

private:
    std::vector<route> routes_; // host-specific first, then longest prefix first
};

/// The host part of a Host field value: port removed ("[::1]:80" → "[::1]").
std::string_view host_without_port(std::string_view host) noexcept;

/// The path of a request target: origin-form up to '?', or the path of an absolute-form URI.
std::string_view target_path(std::string_view target) noexcept;

} // namespace turnout::routing
