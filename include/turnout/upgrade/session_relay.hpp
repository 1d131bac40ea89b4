#pragma once
// While two processes serve at once (an upgrade's predecessor draining, its successor
// serving), each must know every session the other learns: a client's keep-alive connection
// to the old process may carry a request of a session the new one pinned, and the other way
// round. The relay is the session table's observer in both. It hands each change to every
// peer's forwarder — except to the peer the change came from, so that a change applied from
// a peer is not echoed back to it (and none circles between two processes) — and, when a
// lookup misses, reads what the peers sent and was not read yet before the lookup gives up.

#include "turnout/session/session_table.hpp"
#include "turnout/upgrade/channel.hpp"
#include "turnout/upgrade/peer_reader.hpp"

#include <array>
#include <atomic>
#include <functional>

namespace turnout::upgrade {

class session_relay final : public session::session_observer {
public:
    /// Called on worker threads (and the control thread) after the table released its lock.
    void learned(const session::session_key& key, session::backend_id owner) override;
    void forgot(const session::session_key& key) override;
    bool missed(const session::session_key& key) noexcept override;

    /// Starts relaying to and from a peer process (control thread): changes go to `to` (null
    /// when the peer takes none), and a miss polls `from`. Both must outlive the process's workers (the
    /// owner never destroys them before exit). False when max_peers are in use already.
    bool add(session_forwarder* to, peer_reader* from) noexcept;
    /// Stops relaying to and from the peer read by from (a failed upgrade, a peer that left).
    /// A worker already inside its forwarder or reader finishes there.
    void remove(const peer_reader* from) noexcept;

    /// Runs apply (which changes the table) as a change that came from peer: the relay does
    /// not forward what apply causes back to peer. Any thread.
    static void from_peer(const session_forwarder* peer, const std::function<void()>& apply);

    /// A predecessor and a successor at once, and one attempt more.
    static constexpr std::size_t max_peers = 4;

private:
    struct slot {
        std::atomic<session_forwarder*> to{nullptr};
        std::atomic<peer_reader*> from{nullptr};
        bool used = false; // control thread only
    };
    std::array<slot, max_peers> peers_{};
};

} // namespace turnout::upgrade
