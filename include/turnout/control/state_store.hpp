#pragma once
// Where committed runtime state lives: saved before a change is acknowledged, loaded at start.
// The state file today; a shared store (etcd) later, behind the same two calls — so every
// change, whatever operation made it, reaches the store through control::publisher::commit.

#include "turnout/runtime/runtime_state.hpp"

#include <memory>
#include <optional>
#include <string>

namespace turnout::control {

class state_store {
public:
    virtual ~state_store() = default;

    /// The saved state, or nullopt when there is none. A damaged one is set aside (and said
    /// so in the log) and reads as none: the configuration's state rules then.
    virtual std::optional<runtime::runtime_state> load() = 0;
    /// Persists state; throws std::runtime_error (one clear sentence) when it cannot.
    virtual void save(const runtime::runtime_state& state) = 0;
};

/// runtime/state_file at path; an empty path keeps the state in memory only (no file).
std::unique_ptr<state_store> make_file_store(std::string path);

} // namespace turnout::control
