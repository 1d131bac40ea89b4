#include "turnout/runtime/snapshot.hpp"

#include "turnout/net/endpoint.hpp"

#include <algorithm>
#include <map>

namespace turnout::runtime {
namespace {

using backend_ptr = std::shared_ptr<upstream::backend>;

std::map<std::string, backend_ptr> backends_by_address(const snapshot* previous)
{
    std::map<std::string, backend_ptr> found;
    if (!previous)
        return found;
    for (const auto& u : previous->upstreams)
        for (const auto& p : u.pools)
            for (const auto& b : p.backends)
                found.emplace(b->address(), b);
    return found;
}

std::string lower(std::string text)
{
    std::transform(text.begin(), text.end(), text.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    return text;
}

} // namespace

std::uint64_t upstream_state::total_weight() const noexcept
{
    std::uint64_t total = 0;
    for (const auto& p : pools)
        total += p.weight;
    return total;
}

std::shared_ptr<snapshot> build_snapshot(std::shared_ptr<const config::configuration> config,
                                               const snapshot* previous)
{
    auto known = backends_by_address(previous);
    auto next = std::make_shared<snapshot>();

    for (const auto& uc : config->upstreams) {
        upstream_state u{uc, {}};
        for (const auto& pc : uc.pools) {
            pool p{pc.name, pc.weight, pc.version, false, {}};
            for (const auto& address : pc.backends) {
                auto& b = known[address.text];
                if (!b) {
                    boost::system::error_code ec;
                    const auto endpoint = net::resolve(address, ec);
                    if (ec)
                        throw config::config_error(config->path, 0, 0,
                                                   "cannot resolve backend " + address.text + ": " +
                                                       ec.message());
                    b = std::make_shared<upstream::backend>(address.text, endpoint);
                }
                p.backends.push_back(b);
            }
            u.pools.push_back(std::move(p));
        }
        next->upstreams.push_back(std::move(u));
    }

    std::vector<routing::route> routes;
    for (const auto& rc : config->routes) {
        const auto it = std::find_if(config->upstreams.begin(), config->upstreams.end(),
                                     [&](const auto& u) { return u.name == rc.upstream; });
        routes.push_back({lower(rc.host), rc.path_prefix,
                          static_cast<std::size_t>(it - config->upstreams.begin())});
    }
    next->router = routing::router(std::move(routes));
    next->config = std::move(config);
    return next;
}

void snapshot_source::publish(std::shared_ptr<const snapshot> s)
{
    current_.store(std::move(s), std::memory_order_release);
    version_.fetch_add(1, std::memory_order_acq_rel);
}

} // namespace turnout::runtime
