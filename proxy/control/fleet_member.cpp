#include "turnout/control/fleet_member.hpp"

#include "turnout/control/etcd_codec.hpp"

#include <spdlog/spdlog.h>

#include <unistd.h>

#include <array>

namespace turnout::control {
namespace {

using namespace std::chrono_literals;

constexpr auto request_timeout = 2000ms;
constexpr auto revoke_timeout = 500ms; // at stop: etcd away must not hold the shutdown long
constexpr auto retry_interval = 500ms; // grant attempts while etcd is away

} // namespace

std::string instance_name(const config::runtime_config& runtime)
{
    if (!runtime.instance_name.empty())
        return runtime.instance_name;
    std::array<char, 256> host{};
    if (::gethostname(host.data(), host.size() - 1) != 0)
        host = {'l', 'o', 'c', 'a', 'l', 'h', 'o', 's', 't'};
    return std::string(host.data()) + ":" + std::to_string(::getpid());
}

fleet_member::fleet_member(boost::asio::io_context& io, etcd::client& client, const config::runtime_config& runtime)
    : io_(io), client_(client), instance_(instance_name(runtime)), leader_key_(runtime.etcd_prefix + "leader"),
      figures_prefix_(runtime.etcd_prefix + "figures/"),
      ttl_s_(std::chrono::duration_cast<std::chrono::seconds>(runtime.etcd_lease_ttl).count()), timer_(io)
{
}

void fleet_member::start()
{
    spdlog::info("fleet: this instance is {} (lease TTL {}s)", instance_, ttl_s_);
    do_grant();
}

void fleet_member::stop()
{
    if (stopped_)
        return;
    stopped_ = true;
    timer_.cancel();
    if (lease_ == 0)
        return;
    try {
        client_.post("/v3/lease/revoke", etcd::lease_id_request(lease_), revoke_timeout);
        spdlog::info("fleet: lease revoked{}", leading_ ? "; rollout leadership handed back" : "");
    } catch (const std::exception& e) {
        spdlog::warn("fleet: cannot revoke the lease ({}); it ends after its TTL", e.what());
    }
    lease_ = 0;
    leading_ = false;
}

void fleet_member::do_grant()
{
    if (stopped_)
        return;
    client_.async_post("/v3/lease/grant", etcd::lease_grant_request(ttl_s_), request_timeout,
                       [this](std::string error, std::string body) {
                           if (stopped_)
                               return;
                           try {
                               if (!error.empty())
                                   throw etcd::unreachable(error);
                               const auto g = etcd::parse_lease_grant(body);
                               lease_ = g.id;
                               last_error_.clear();
                               spdlog::info("fleet: lease {:x} granted for {}s", g.id, g.ttl_s);
                           } catch (const std::exception& e) {
                               if (last_error_ != e.what())
                                   spdlog::warn("fleet: cannot get a lease: {}; retrying", e.what());
                               last_error_ = e.what();
                               timer_.expires_after(retry_interval);
                               timer_.async_wait([this](boost::system::error_code ec) {
                                   if (!ec)
                                       do_grant();
                               });
                               return;
                           }
                           campaign();
                           do_keepalive();
                       });
}

// Every third of the TTL: two keep-alives may be lost before the lease ends. A lease that
// ended (etcd answers TTL 0) took the leader key and the figures along: a new one is granted.
void fleet_member::do_keepalive()
{
    timer_.expires_after(std::chrono::milliseconds(ttl_s_ * 1000 / 3));
    timer_.async_wait([this](boost::system::error_code ec) {
        if (ec || stopped_)
            return;
        client_.async_post(
            "/v3/lease/keepalive", etcd::lease_id_request(lease_), request_timeout, [this](std::string error, std::string body) {
                if (stopped_)
                    return;
                std::int64_t ttl = -1;
                try {
                    if (!error.empty())
                        throw etcd::unreachable(error);
                    ttl = etcd::parse_keepalive_ttl(body);
                } catch (const std::exception& e) {
                    // Unsure whether the lease still holds: not leading until etcd says so.
                    lose(std::string("the lease could not be kept alive: ") + e.what());
                    return do_keepalive();
                }
                if (ttl <= 0) {
                    lose("the lease expired");
                    lease_ = 0;
                    return do_grant();
                }
                if (!leading_ && (leader_.empty() || leader_ == instance_))
                    campaign(); // nobody known to lead, or the key still ours after an outage
                do_keepalive();
            });
    });
}

void fleet_member::campaign()
{
    if (stopped_ || lease_ == 0 || campaigning_)
        return;
    campaigning_ = true;
    client_.async_post("/v3/kv/txn", etcd::create_with_lease_request(leader_key_, instance_, lease_), request_timeout,
                       [this](std::string error, std::string body) {
                           campaigning_ = false;
                           on_campaign(std::move(error), std::move(body));
                       });
}

void fleet_member::on_campaign(std::string error, std::string body)
{
    if (stopped_)
        return;
    try {
        if (!error.empty())
            throw etcd::unreachable(error);
        const auto r = etcd::parse_txn(body);
        if (r.succeeded || (r.current && r.current->lease == lease_ && lease_ != 0))
            return lead();
        leader_ = r.current ? r.current->value : std::string{};
        if (leading_)
            lose("another instance (" + leader_ + ") holds the leader key");
    } catch (const std::exception& e) {
        spdlog::warn("fleet: campaign for the rollout leadership failed: {}", e.what());
    }
}

void fleet_member::lead()
{
    leader_ = instance_;
    if (leading_)
        return;
    leading_ = true;
    spdlog::info("fleet: {} leads the rollouts (key {})", instance_, leader_key_);
}

void fleet_member::lose(const std::string& why)
{
    if (!leading_)
        return;
    leading_ = false;
    leader_.clear();
    figures_.clear(); // read afresh once leading again
    spdlog::warn("fleet: {} no longer leads the rollouts: {}", instance_, why);
}

void fleet_member::on_leader_event(bool deleted, const etcd::key_value& kv)
{
    if (stopped_)
        return;
    if (!deleted) {
        leader_ = kv.value;
        if (leading_ && kv.lease != lease_)
            lose("the leader key was taken by " + kv.value);
        return;
    }
    if (leading_)
        lose("the leader key was deleted");
    leader_.clear();
    spdlog::info("fleet: the rollout leader is gone; campaigning");
    campaign();
}

void fleet_member::publish(std::string figures)
{
    // One at a time: a slow etcd gets the latest counts next, not a queue of old ones.
    if (stopped_ || lease_ == 0 || publishing_)
        return;
    publishing_ = true;
    client_.async_post("/v3/kv/put", etcd::put_request(figures_prefix_ + instance_, figures, lease_), request_timeout,
                       [this](std::string error, std::string) {
                           publishing_ = false;
                           if (!error.empty())
                               spdlog::debug("fleet: publishing figures: {}", error);
                       });
}

void fleet_member::refresh_figures()
{
    if (stopped_ || refreshing_)
        return;
    refreshing_ = true;
    client_.async_post("/v3/kv/range", etcd::range_prefix_request(figures_prefix_), request_timeout,
                       [this](std::string error, std::string body) {
                           refreshing_ = false;
                           if (stopped_ || !error.empty())
                               return;
                           try {
                               std::map<std::string, std::string> next;
                               for (auto& kv : etcd::parse_range_all(body))
                                   if (auto name = kv.key.substr(figures_prefix_.size()); name != instance_)
                                       next.emplace(std::move(name), std::move(kv.value));
                               figures_ = std::move(next);
                           } catch (const std::exception& e) {
                               spdlog::warn("fleet: reading the fleet's figures: {}", e.what());
                           }
                       });
}

} // namespace turnout::control
