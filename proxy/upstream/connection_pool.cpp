#include "turnout/upstream/connection_pool.hpp"

#include <sys/socket.h>

#include <cerrno>

namespace turnout::upstream {
namespace {

/// A connection back in the pool for less than this is reused without a liveness peek: a
/// backend closing a keep-alive connection within a second of its last answer is rare, and
/// the exchange replays a whole request on a fresh connection when it happens anyway.
constexpr auto trust_window = std::chrono::seconds(1);

/// An idle keep-alive connection must have nothing to read: a FIN (0) or bytes mean the
/// backend closed it or broke framing. One non-blocking peek, no wait.
bool still_open(boost::asio::ip::tcp::socket& s) noexcept
{
    char probe;
    const auto n = ::recv(s.native_handle(), &probe, 1, MSG_PEEK | MSG_DONTWAIT);
    return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
}

} // namespace

upstream_connection::upstream_connection(boost::asio::io_context& io, std::shared_ptr<backend> target,
                                         std::shared_ptr<const void> tls)
    : stream_(io), target_(std::move(target)), tls_(std::move(tls))
{
    target_->counters().connections.fetch_add(1, std::memory_order_relaxed);
}

upstream_connection::~upstream_connection()
{
    target_->counters().connections.fetch_sub(1, std::memory_order_relaxed);
}

std::unique_ptr<upstream_connection> connection_pool::take(const backend& b, const void* tls_key, std::chrono::steady_clock::time_point now)
{
    const auto it = idle_.find(&b);
    if (it == idle_.end())
        return nullptr;
    auto& list = it->second;
    // Most recently used first: warmest, least likely stale. A backend listed in a plain and
    // a TLS pool at once is the only case where the key differs; those are skipped, not closed.
    for (auto i = list.size(); i-- > 0;) {
        if (list[i]->tls_key() != tls_key)
            continue;
        auto c = std::move(list[i]);
        list.erase(list.begin() + static_cast<std::ptrdiff_t>(i));
        if (now - c->idle_since < trust_window || still_open(c->socket()))
            return c;
    }
    return nullptr;
}

void connection_pool::put(std::unique_ptr<upstream_connection> c, std::chrono::steady_clock::time_point now)
{
    if (!c->target().wanted())
        return; // removed or drained out: its connections close as they finish
    auto& list = idle_[&c->target()];
    if (list.size() >= max_idle_per_backend_)
        return; // c closes here
    c->mark_reused();
    c->idle_since = now;
    list.push_back(std::move(c));
}

void connection_pool::sweep(std::chrono::steady_clock::time_point cutoff)
{
    for (auto it = idle_.begin(); it != idle_.end();) {
        auto& list = it->second;
        std::erase_if(list, [&](const auto& c) {
            return c->idle_since < cutoff || !c->target().wanted() || !still_open(c->socket());
        });
        it = list.empty() ? idle_.erase(it) : std::next(it);
    }
}

void connection_pool::drop_unwanted()
{
    std::erase_if(idle_, [](const auto& entry) { return !entry.first->wanted(); });
}

std::size_t connection_pool::idle_count() const noexcept
{
    std::size_t n = 0;
    for (const auto& [b, list] : idle_)
        n += list.size();
    return n;
}

} // namespace turnout::upstream
