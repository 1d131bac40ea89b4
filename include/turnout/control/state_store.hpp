#pragma once
// Where committed runtime state lives: saved before a change is acknowledged, loaded at start.
// The state file today; a shared store (etcd) later, behind the same two calls — so every
// change, whatever operation made it, reaches the store through control::publisher::commit.

#include "turnout/runtime/runtime_state.hpp"

#include <functional>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>

namespace turnout::control {

class fleet_member;

/// A change the store would not take: 409 (the state changed since the change was computed
/// from it; retry) or 503 (the store cannot be reached). Nothing was stored.
class store_refused : public std::runtime_error {
public:
    store_refused(unsigned status, const std::string& sentence) : std::runtime_error(sentence), status_(status) {}
    unsigned status() const noexcept { return status_; }

private:
    unsigned status_;
};

/// What status and metrics say of the store.
struct store_health {
    std::string_view kind; // "file" | "etcd"
    bool connected = true;
};

class state_store {
public:
    /// A state committed elsewhere (another instance of a fleet), to be put in force here.
    using changed_handler = std::function<void(runtime::runtime_state)>;

    virtual ~state_store() = default;

    /// The saved state, or nullopt when there is none. A damaged one is set aside (and said
    /// so in the log) and reads as none: the configuration's state rules then.
    virtual std::optional<runtime::runtime_state> load() = 0;
    /// Persists state; throws std::runtime_error (one clear sentence) when it cannot.
    /// Throws store_refused when a shared store refuses the change.
    virtual void save(const runtime::runtime_state& state) = 0;

    virtual store_health health() const { return {"file", true}; }
    /// Starts following a shared store (from the control thread's loop); a local file has
    /// nobody else writing it.
    virtual void follow(changed_handler) {}
    /// At shutdown or after a hand-over: no more changes are followed.
    virtual void stop() {}
    /// This instance in a fleet (lease, rollout leadership, published figures); null for a
    /// store nobody else shares.
    virtual fleet_member* fleet() noexcept { return nullptr; }
};

/// runtime/state_file at path; an empty path keeps the state in memory only (no file).
std::unique_ptr<state_store> make_file_store(std::string path);

} // namespace turnout::control
