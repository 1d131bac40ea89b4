#include "turnout/health/health_checker.hpp"

#include <boost/asio/steady_timer.hpp>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <random>
#include <unordered_map>
#include <unordered_set>
#include <utility>

namespace turnout::health {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;

// ---- the probe loop of one backend -------------------------------------------------------

std::int64_t unix_ms_now()
{
    return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
        .count();
}

/// Probes one backend every `interval` (counted from the end of the previous probe, so a
/// slow backend is never probed twice at once) and applies rise/fall to its health.
class probe_loop : public std::enable_shared_from_this<probe_loop> {
public:
    probe_loop(asio::io_context& io, std::shared_ptr<upstream::backend> backend, const config::health_config& check,
               std::shared_ptr<net::tls_client_context> tls)
        : io_(io), timer_(io), backend_(std::move(backend)), check_(check), tls_(std::move(tls))
    {}

    void start(config::duration first_delay) { do_wait(first_delay); }

    void stop()
    {
        stopped_ = true;
        timer_.cancel();
    }

    /// A reload may change the check; the next probe uses the new one.
    void set_check(const config::health_config& check, std::shared_ptr<net::tls_client_context> tls)
    {
        check_ = check;
        tls_ = std::move(tls);
    }

    upstream::backend& target() const { return *backend_; }

private:
    void do_wait(config::duration delay)
    {
        timer_.expires_after(delay);
        timer_.async_wait([self = shared_from_this()](beast::error_code ec) { self->on_wait(ec); });
    }

    void on_wait(beast::error_code ec)
    {
        if (ec || stopped_)
            return;
        do_probe();
    }

    void do_probe()
    {
        probe(io_, backend_->endpoint(), backend_->address(), check_,
              [self = shared_from_this()](probe_result r) { self->on_probe(std::move(r)); }, tls_);
    }

    void on_probe(probe_result r)
    {
        if (stopped_)
            return;
        record(r);
        do_wait(check_.interval);
    }

    void record(const probe_result& r)
    {
        // The counters live in the backend's report, so a reload that restarts the loop
        // does not reset a backend halfway through rising or falling.
        auto report = backend_->report();
        report.probed = true;
        report.last_ok = r.ok;
        if (!r.ok)
            report.last_error = r.error;
        report.last_probe_unix_ms = unix_ms_now();
        report.last_latency_ms = static_cast<double>(r.latency.count()) / 1000.0;
        // A failed probe lists no tools: the last ones seen stay (what the backend serves).
        if (r.tools_hash) {
            report.tools_hash = r.tools_hash;
            report.tools = r.tools;
        }
        if (r.ok) {
            ++report.passes_in_row;
            report.fails_in_row = 0;
        } else {
            ++report.fails_in_row;
            report.passes_in_row = 0;
        }
        const bool was_healthy = backend_->healthy();
        backend_->set_report(report);
        if (was_healthy && !r.ok && report.fails_in_row >= std::max(check_.fall, 1u)) {
            backend_->set_healthy(false);
            spdlog::warn("backend {} is down: {}", backend_->address(), r.error);
        } else if (!was_healthy && r.ok && report.passes_in_row >= std::max(check_.rise, 1u)) {
            backend_->set_healthy(true);
            spdlog::info("backend {} is up", backend_->address());
        }
    }

    asio::io_context& io_;
    asio::steady_timer timer_;
    std::shared_ptr<upstream::backend> backend_;
    config::health_config check_;
    std::shared_ptr<net::tls_client_context> tls_;
    bool stopped_ = false;
};

} // namespace

// ---- health_checker ----------------------------------------------------------------------

struct health_checker::impl {
    impl(asio::io_context& control, runtime::shared_state& shared_state)
        : io(control), shared(shared_state), rng(std::random_device{}())
    {}

    /// Spreads first probes so that a reload does not fire every backend's check at once.
    config::duration jitter(config::duration interval)
    {
        const auto span = std::min<config::duration::rep>(interval.count(), 1000);
        if (span <= 1)
            return config::duration{0};
        return config::duration{std::uniform_int_distribution<config::duration::rep>(0, span - 1)(rng)};
    }

    void stop_all()
    {
        for (auto& [backend, loop] : loops)
            loop->stop();
        loops.clear();
    }

    asio::io_context& io;
    runtime::shared_state& shared; // not needed yet: snapshots carry the backends
    std::unordered_map<const upstream::backend*, std::shared_ptr<probe_loop>> loops;
    std::minstd_rand rng;
};

health_checker::health_checker(boost::asio::io_context& control, runtime::shared_state& shared)
    : impl_(std::make_shared<impl>(control, shared))
{}

health_checker::~health_checker() { stop(); }

void health_checker::update(const runtime::snapshot& s)
{
    // Which backends are checked now, and with which check: the first upstream listing a
    // backend decides, so a backend shared by two upstreams is probed once.
    struct want {
        std::shared_ptr<upstream::backend> backend;
        const config::health_config* check;
        std::shared_ptr<net::tls_client_context> tls; // of the first pool listing it
    };
    std::unordered_map<const upstream::backend*, want> wanted;
    std::unordered_set<const upstream::backend*> listed;
    for (const auto& u : s.upstreams) {
        const bool checked = u.config.health && u.config.health->kind != config::health_kind::none;
        for (const auto& p : u.pools)
            for (const auto& b : p.backends) {
                listed.insert(b.get());
                if (checked)
                    wanted.try_emplace(b.get(), want{b, &*u.config.health, p.tls});
            }
    }

    for (auto it = impl_->loops.begin(); it != impl_->loops.end();) {
        if (wanted.contains(it->first)) {
            ++it;
            continue;
        }
        it->second->stop();
        // Still routed to but no longer checked: nothing would ever mark it up again.
        if (listed.contains(it->first) && !it->second->target().healthy()) {
            it->second->target().set_healthy(true);
            spdlog::info("backend {} is up: its upstream no longer has health checks", it->second->target().address());
        }
        it = impl_->loops.erase(it);
    }

    for (const auto& [key, entry] : wanted) {
        const auto& [backend, check, tls] = entry;
        if (auto it = impl_->loops.find(key); it != impl_->loops.end()) {
            it->second->set_check(*check, tls);
            continue;
        }
        auto loop = std::make_shared<probe_loop>(impl_->io, backend, *check, tls);
        loop->start(impl_->jitter(check->interval));
        impl_->loops.emplace(key, std::move(loop));
    }
}

void health_checker::stop()
{
    if (impl_)
        impl_->stop_all();
}

} // namespace turnout::health
