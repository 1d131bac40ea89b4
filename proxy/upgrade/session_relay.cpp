#include "turnout/upgrade/session_relay.hpp"

namespace turnout::upgrade {
namespace {

// The peer whose change this thread is applying (inside from_peer()). Thread-local rather
// than a flag in the relay: other threads learn sessions at the same moment, and theirs must
// go to every peer.
thread_local const session_forwarder* applying_from = nullptr;

} // namespace

void session_relay::learned(const session::session_key& key, session::backend_id owner)
{
    for (auto& p : peers_)
        if (auto* f = p.to.load(std::memory_order_acquire); f && f != applying_from)
            f->learned(key, owner);
}

void session_relay::forgot(const session::session_key& key)
{
    for (auto& p : peers_)
        if (auto* f = p.to.load(std::memory_order_acquire); f && f != applying_from)
            f->forgot(key);
}

bool session_relay::missed(const session::session_key&) noexcept
{
    // Whatever the peers sent is applied, not only this key. Look again whenever a peer was
    // read, even if this call read nothing: the thread that held the reader's lock meanwhile
    // may have been applying this very key.
    bool polled = false;
    for (auto& p : peers_) {
        if (auto* r = p.from.load(std::memory_order_acquire)) {
            r->poll();
            polled = true;
        }
    }
    return polled;
}

bool session_relay::add(session_forwarder* to, peer_reader* from) noexcept
{
    for (auto& p : peers_) {
        if (p.used)
            continue;
        p.used = true;
        p.to.store(to, std::memory_order_release);
        p.from.store(from, std::memory_order_release);
        return true;
    }
    return false;
}

void session_relay::remove(const peer_reader* from) noexcept
{
    for (auto& p : peers_) {
        if (!p.used || p.from.load(std::memory_order_relaxed) != from)
            continue;
        p.to.store(nullptr, std::memory_order_release);
        p.from.store(nullptr, std::memory_order_release);
        p.used = false;
    }
}

void session_relay::from_peer(const session_forwarder* peer, const std::function<void()>& apply)
{
    struct scope {
        const session_forwarder* previous = applying_from;
        ~scope() { applying_from = previous; }
    } restore;
    applying_from = peer;
    apply();
}

} // namespace turnout::upgrade
