#include "turnout/control/drain_deadlines.hpp"

#include <spdlog/spdlog.h>

#include <vector>

namespace turnout::control {
namespace {

constexpr auto check_interval = std::chrono::milliseconds(100);
/// Streams of an expired drain end spread over this window.
constexpr auto close_window = std::chrono::milliseconds(2000);

} // namespace

void drain_deadlines::reset(std::string_view upstream, std::string_view pool)
{
    enforced_.erase({std::string(upstream), std::string(pool)});
}

void drain_deadlines::reset(std::string_view upstream, std::string_view pool, std::string_view address)
{
    enforced_backends_.erase({std::string(upstream), std::string(pool), std::string(address)});
}

void drain_deadlines::do_watch()
{
    timer_.expires_after(check_interval);
    timer_.async_wait([this](boost::system::error_code ec) {
        if (ec)
            return;
        on_tick();
        do_watch();
    });
}

void drain_deadlines::on_tick()
{
    const auto now = publisher::unix_ms();
    std::vector<std::pair<std::string, std::string>> pools;
    std::vector<std::tuple<std::string, std::string, std::string>> backends;
    for (const auto& u : publisher_.state().upstreams)
        for (const auto& p : u.pools) {
            if (p.draining && p.drain_deadline_ms && *p.drain_deadline_ms <= now &&
                !enforced_.contains({u.name, p.name}))
                pools.emplace_back(u.name, p.name);
            for (const auto& d : p.drained_backends)
                if (d.deadline_ms <= now && !enforced_backends_.contains({u.name, p.name, d.address}))
                    backends.emplace_back(u.name, p.name, d.address);
        }
    if (!pools.empty() || !backends.empty())
        close_expired(pools, backends);
}

void drain_deadlines::close_expired(const std::vector<std::pair<std::string, std::string>>& pools,
                                    const std::vector<std::tuple<std::string, std::string, std::string>>& backends)
{
    // Republish: the snapshot now marks those pools expired and those backends retired (their
    // sessions answer 404), then close their streams.
    publisher_.publish();
    const auto snapshot = shared_.snapshots.load();
    std::vector<const upstream::backend*> targets;
    for (const auto& [un, pn] : pools) {
        enforced_.insert({un, pn});
        spdlog::info("drain of {}/{} reached its deadline: closing its streams", un, pn);
        for (const auto& u : snapshot->upstreams)
            for (const auto& p : u.pools)
                if (u.config.name == un && p.name == pn)
                    for (const auto& b : p.backends)
                        targets.push_back(b.get());
    }
    for (const auto& [un, pn, address] : backends) {
        enforced_backends_.insert({un, pn, address});
        spdlog::info("drain of backend {} of {}/{} reached its deadline: closing its streams", address, un, pn);
        // Only when no other pool still serves from it (then it is retired).
        for (const auto& u : snapshot->upstreams)
            for (const auto& p : u.pools)
                if (u.config.name == un && p.name == pn)
                    for (const auto& b : p.backends)
                        if (b->address() == address && b->retired())
                            targets.push_back(b.get());
    }
    // Their sessions are over (they answer 404): forget them, so counts reach 0.
    for (const auto* b : targets)
        shared_.sessions.erase_owner(b->id());
    workers_.close_streams(targets, close_window);
}

} // namespace turnout::control
