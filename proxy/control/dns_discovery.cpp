#include "turnout/control/dns_discovery.hpp"

#include "turnout/net/endpoint.hpp"

#include <spdlog/spdlog.h>

#include <boost/json/array.hpp>

#include <algorithm>
#include <chrono>
#include <set>
#include <utility>

namespace turnout::control {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;

namespace {

/// Streams of addresses whose drain ended close spread over this window (as drain_deadlines).
constexpr auto close_window = std::chrono::milliseconds(2000);

bool has(const std::vector<runtime::discovered_address>& list, const runtime::discovered_address& a)
{
    return std::find(list.begin(), list.end(), a) != list.end();
}

std::string names_of(const std::vector<runtime::discovered_address>& list)
{
    std::string out;
    for (const auto& a : list)
        out += (out.empty() ? "" : " ") + a.address;
    return out.empty() ? "none" : out;
}

} // namespace

struct dns_discovery::name_state {
    name_state(asio::io_context& io, config::discovery_name n) : name(std::move(n)), timer(io) {}

    config::discovery_name name;
    asio::steady_timer timer;
    std::vector<std::string> pools; // "upstream/pool" listing it
    bool in_flight = false;
    std::int64_t last_attempt_ms = 0; // Unix time; 0 = never asked
    std::int64_t last_success_ms = 0; // 0 = never answered
    std::int64_t next_ms = 0;
    std::uint32_t ttl = 0;            // of the last good answer
    std::string error;                // of the last resolution; empty when it answered
    std::uint64_t queries = 0;
    std::uint64_t failures = 0;
};

dns_discovery::dns_discovery(asio::io_context& control, publisher& p, runtime::shared_state& shared,
                             net::worker_pool& workers)
    : io_(control), publisher_(p), shared_(shared), workers_(workers), leaving_timer_(control)
{
    publisher_.set_discovered(&sets_);
}

dns_discovery::~dns_discovery()
{
    stop();
    publisher_.set_discovered(nullptr);
}

void dns_discovery::resolve_before_serving(config::duration bound)
{
    const auto& config = publisher_.config();
    const bool any = std::any_of(config.upstreams.begin(), config.upstreams.end(), [](const auto& u) {
        return std::any_of(u.pools.begin(), u.pools.end(), [](const auto& p) { return !p.discovered.empty(); });
    });
    if (!any || stopped_)
        return;
    // A resolver of its own on an io_context of its own: the control thread's runs nothing
    // yet, and must not run anything else early (the upgrade hand-over, the store).
    asio::io_context io;
    try {
        resolver_ = std::make_unique<dns_resolver>(io, config.proxy.resolver);
    } catch (const std::exception& e) {
        spdlog::error("DNS discovery: {}; names are resolved once serving", e.what());
        return;
    }
    server_ = config.proxy.resolver;
    const auto started = std::chrono::steady_clock::now();
    try {
        follow_configuration(); // asks every name with that resolver
        const auto deadline = started + bound;
        while (in_flight() && io.run_one_until(deadline) != 0) {
        }
    } catch (...) {
        resolver_.reset(); // never left bound to the io_context about to go
        throw;
    }
    std::size_t late = 0;
    std::size_t resolved = 0;
    for (const auto& [text, n] : names_) {
        resolved += n->last_success_ms != 0;
        if (n->in_flight) {
            ++late;
            spdlog::warn("DNS discovery: {} did not answer within {} at start-up; serving without its addresses "
                         "until it does (sessions pinned to them were not restored)",
                         text, config::format_duration(bound));
        }
    }
    resolver_.reset(); // its queries end without calling back; start() asks the late names again
    const auto took = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - started);
    // Failures were logged as they came (on_resolved), and are asked again at dns_min_interval.
    spdlog::info("DNS discovery: {} of {} name(s) resolved before serving, {} failed, {} without an answer ({} ms)",
                 resolved, names_.size(), names_.size() - resolved - late, late, took.count());
}

bool dns_discovery::in_flight() const
{
    return std::any_of(names_.begin(), names_.end(), [](const auto& entry) { return entry.second->in_flight; });
}

void dns_discovery::start()
{
    serving_ = true;
    follow_configuration();
    forget_stale_drains(); // addresses gone while this process was down
}

void dns_discovery::update()
{
    if (!stopped_)
        follow_configuration();
}

void dns_discovery::stop()
{
    stopped_ = true;
    for (auto& [text, n] : names_)
        n->timer.cancel();
    leaving_timer_.cancel();
    resolver_.reset(); // queries in flight end without calling back
}

void dns_discovery::follow_configuration()
{
    const auto& config = publisher_.config();
    std::map<std::string, std::pair<config::discovery_name, std::vector<std::string>>, std::less<>> wanted;
    for (const auto& u : config.upstreams)
        for (const auto& p : u.pools)
            for (const auto& name : p.discovered) {
                auto& entry = wanted.try_emplace(name.text, name, std::vector<std::string>{}).first->second;
                entry.second.push_back(u.name + "/" + p.name);
            }

    bool forgotten = false;
    for (auto it = names_.begin(); it != names_.end();) {
        if (wanted.contains(it->first)) {
            ++it;
            continue;
        }
        spdlog::info("DNS discovery: {} is no longer configured", it->first);
        it->second->timer.cancel();
        sets_.erase(it->first);
        it = names_.erase(it);
        forgotten = true;
    }
    if (wanted.empty()) {
        resolver_.reset();
        if (forgotten)
            publish();
        return;
    }

    // A new resolver: whatever the old one was asking is lost, so those names are asked
    // again now — and every name when the server is another one. After the start-up round
    // (resolve_before_serving, whose resolver is gone) the names it answered keep their TTL.
    std::set<std::string, std::less<>> ask_again;
    if (!resolver_ || server_ != config.proxy.resolver) {
        const bool other_server = resolver_ && server_ != config.proxy.resolver;
        resolver_.reset();
        resolver_ = std::make_unique<dns_resolver>(io_, config.proxy.resolver);
        server_ = config.proxy.resolver;
        for (auto& [text, n] : names_)
            if (std::exchange(n->in_flight, false) || other_server)
                ask_again.insert(text);
    }
    for (auto& [text, entry] : wanted) {
        auto it = names_.find(text);
        const bool added = it == names_.end();
        if (added)
            it = names_.emplace(text, std::make_unique<name_state>(io_, entry.first)).first;
        it->second->pools = entry.second;
        if (added || ask_again.contains(text))
            do_resolve(text);
    }
    if (forgotten)
        publish();
}

void dns_discovery::do_resolve(const std::string& text)
{
    const auto it = names_.find(text);
    if (stopped_ || it == names_.end() || it->second->in_flight || !resolver_)
        return;
    auto& n = *it->second;
    n.in_flight = true;
    ++n.queries;
    n.last_attempt_ms = publisher::unix_ms();
    // The resolver is ours and never calls back once destroyed: `this` outlives the query.
    auto done = [this, text](dns_resolution r) { on_resolved(text, std::move(r)); };
    if (n.name.type == config::discovery_name::kind::address)
        resolver_->resolve_addresses(n.name.name, n.name.port, std::move(done));
    else
        resolver_->resolve_service(n.name.name, std::move(done));
}

void dns_discovery::on_resolved(const std::string& text, dns_resolution r)
{
    const auto it = names_.find(text);
    if (stopped_ || it == names_.end())
        return; // forgotten by a reload while the query ran
    auto& n = *it->second;
    n.in_flight = false;
    const auto& proxy = publisher_.config().proxy;
    if (!r.ok()) {
        ++n.failures;
        auto& set = sets_[text];
        if (r.error != n.error)
            spdlog::warn("DNS discovery: {} failed ({}); keeping its last good set: {}", text, r.error,
                         names_of(set.current));
        n.error = std::move(r.error);
        schedule(n, proxy.dns_min_interval);
        return;
    }
    if (!n.error.empty())
        spdlog::info("DNS discovery: {} answers again", text);
    n.error.clear();
    n.last_success_ms = publisher::unix_ms();
    n.ttl = r.ttl;
    if (apply(n, sets_[text], r.endpoints))
        publish();
    forget_stale_drains();
    const config::duration ttl = std::chrono::seconds(r.ttl);
    schedule(n, std::clamp(ttl, proxy.dns_min_interval, proxy.dns_max_interval));
}

bool dns_discovery::apply(name_state& n, runtime::discovered_set& set, const std::vector<tcp::endpoint>& found)
{
    std::vector<runtime::discovered_address> next;
    for (const auto& endpoint : found)
        next.push_back({net::to_string(endpoint), endpoint});
    bool changed = false;
    for (const auto& a : next) {
        if (has(set.current, a))
            continue;
        changed = true;
        const auto back = std::find_if(set.leaving.begin(), set.leaving.end(),
                                       [&](const auto& l) { return l.where == a; });
        if (back != set.leaving.end()) {
            set.leaving.erase(back);
            spdlog::info("DNS discovery: {} lists {} again: it takes new sessions again", n.name.text, a.address);
            continue;
        }
        join_unhealthy(n, a);
        spdlog::info("DNS discovery: {} now lists {}", n.name.text, a.address);
    }
    const auto now = publisher::unix_ms();
    const auto grace = publisher_.config().proxy.drain_timeout;
    for (const auto& a : set.current) {
        if (has(next, a))
            continue;
        changed = true;
        set.leaving.push_back({a, now + grace.count()});
        spdlog::info("DNS discovery: {} no longer lists {}: draining it for {}", n.name.text, a.address,
                     config::format_duration(grace));
    }
    set.current = std::move(next);
    if (changed)
        do_watch_leaving();
    return changed;
}

bool dns_discovery::checked(const name_state& n) const
{
    for (const auto& u : publisher_.config().upstreams)
        if (u.health && u.health->kind != config::health_kind::none)
            for (const auto& p : u.pools)
                if (std::any_of(p.discovered.begin(), p.discovered.end(),
                                [&](const auto& d) { return d.text == n.name.text; }))
                    return true;
    return false;
}

void dns_discovery::join_unhealthy(const name_state& n, const runtime::discovered_address& a)
{
    // A backend already serving (listed elsewhere) keeps its health; one that is new, or
    // returns after it left, takes nothing until its probes pass: nothing goes to a process
    // that was never verified. Without active checks nothing would ever mark it up.
    if (!checked(n))
        return;
    if (const auto known = shared_.backends.find(a.address); known && known->in_service())
        return;
    const auto b = shared_.backends.obtain(a.address, a.endpoint);
    b->set_healthy(false);
    auto report = b->report();
    report.passes_in_row = 0;
    report.fails_in_row = 0;
    b->set_report(std::move(report));
}

void dns_discovery::schedule(name_state& n, config::duration delay)
{
    n.next_ms = publisher::unix_ms() + delay.count();
    n.timer.expires_after(delay);
    n.timer.async_wait([this, text = n.name.text](boost::system::error_code ec) {
        if (!ec)
            do_resolve(text);
    });
}

void dns_discovery::do_watch_leaving()
{
    std::optional<std::int64_t> earliest;
    for (const auto& [text, set] : sets_)
        for (const auto& l : set.leaving)
            earliest = std::min(earliest.value_or(l.deadline_ms), l.deadline_ms);
    if (!earliest) {
        leaving_timer_.cancel();
        return;
    }
    const auto wait = std::max<std::int64_t>(*earliest - publisher::unix_ms(), 0);
    leaving_timer_.expires_after(std::chrono::milliseconds(wait));
    leaving_timer_.async_wait([this](boost::system::error_code ec) {
        if (!ec && !stopped_)
            on_leaving_deadline();
    });
}

void dns_discovery::on_leaving_deadline()
{
    const auto now = publisher::unix_ms();
    std::vector<std::string> gone;
    for (auto& [text, set] : sets_)
        std::erase_if(set.leaving, [&](const runtime::leaving_address& l) {
            if (l.deadline_ms > now)
                return false;
            spdlog::info("DNS discovery: the drain of {} (left {}) is over: its sessions end", l.where.address, text);
            gone.push_back(l.where.address);
            return true;
        });
    if (!gone.empty()) {
        // Out of the pool now (its sessions answer 404 and are forgotten by the publication);
        // close its streams, unless another pool or name still lists it.
        publish();
        std::vector<const upstream::backend*> targets;
        for (const auto& address : gone)
            if (const auto b = shared_.backends.find(address); b && !b->in_service())
                targets.push_back(b.get());
        if (!targets.empty())
            workers_.close_streams(targets, close_window);
        forget_stale_drains();
    }
    do_watch_leaving();
}

void dns_discovery::forget_stale_drains()
{
    if (!serving_ || stopped_)
        return;
    auto next = publisher_.state();
    std::vector<std::string> ended;
    for (const auto& uc : publisher_.config().upstreams)
        for (const auto& pc : uc.pools) {
            auto* u = next.find(uc.name);
            auto* p = u ? u->find(pc.name) : nullptr;
            // Backends set at run time replace the names; the operations keep those drains.
            if (!p || p->backends || pc.discovered.empty() || p->drained_backends.empty())
                continue;
            std::set<std::string, std::less<>> known;
            bool answered = true;
            for (const auto& address : pc.backends)
                known.insert(address.text);
            for (const auto& name : pc.discovered) {
                const auto n = names_.find(name.text);
                answered = answered && n != names_.end() && n->second->last_success_ms != 0;
                if (const auto set = sets_.find(name.text); set != sets_.end()) {
                    for (const auto& a : set->second.current)
                        known.insert(a.address);
                    for (const auto& l : set->second.leaving)
                        known.insert(l.where.address);
                }
            }
            if (!answered)
                continue; // not known yet which addresses the pool has
            std::erase_if(p->drained_backends, [&](const runtime::backend_drain& d) {
                if (known.contains(d.address))
                    return false;
                ended.push_back(d.address + " of " + uc.name + "/" + pc.name);
                return true;
            });
        }
    if (ended.empty())
        return;
    for (const auto& what : ended)
        spdlog::info("DNS discovery: {} left its names: its drain ends with it", what);
    // Committed like an admin change; refused (another instance changed the state, the store
    // is away), it is tried again at the next answer.
    if (const auto r = publisher_.commit(std::move(next)); r.status != 200)
        spdlog::warn("DNS discovery: the drains of addresses that left could not be ended now: {}", r.error);
}

void dns_discovery::publish()
{
    try {
        publisher_.publish();
    } catch (const std::exception& e) {
        spdlog::error("DNS discovery: the new backend set cannot be put in force: {}", e.what());
    }
}

boost::json::object dns_discovery::status() const
{
    boost::json::array names;
    for (const auto& [text, n] : names_) {
        boost::json::object o;
        o["name"] = text;
        o["pools"] = boost::json::array(n->pools.begin(), n->pools.end());
        boost::json::array addresses;
        boost::json::array leaving;
        if (const auto set = sets_.find(text); set != sets_.end()) {
            for (const auto& a : set->second.current)
                addresses.emplace_back(a.address);
            for (const auto& l : set->second.leaving)
                leaving.emplace_back(boost::json::object{{"address", l.where.address}, {"deadline_unix_ms", l.deadline_ms}});
        }
        o["addresses"] = std::move(addresses);
        o["leaving"] = std::move(leaving);
        o["ok"] = n->last_success_ms != 0 && n->error.empty();
        o["error"] = n->error.empty() ? boost::json::value(nullptr) : boost::json::value(n->error);
        o["last_resolution_unix_ms"] = n->last_attempt_ms;
        o["last_success_unix_ms"] = n->last_success_ms;
        o["ttl_s"] = n->ttl;
        o["next_resolution_unix_ms"] = n->next_ms;
        o["resolutions"] = n->queries;
        o["failures"] = n->failures;
        names.emplace_back(std::move(o));
    }
    const auto& server = publisher_.config().proxy.resolver;
    return {{"resolver", server ? server->text : std::string("/etc/resolv.conf")}, {"names", std::move(names)}};
}

std::vector<metrics::discovery_figures> dns_discovery::figures() const
{
    std::vector<metrics::discovery_figures> out;
    for (const auto& [text, n] : names_) {
        const auto set = sets_.find(text);
        out.push_back({text, n->last_success_ms != 0 && n->error.empty(),
                       set == sets_.end() ? 0 : set->second.current.size(), n->queries, n->failures});
    }
    return out;
}

} // namespace turnout::control
