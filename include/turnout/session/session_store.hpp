#pragma once
// The session table across a graceful restart: saved at exit next to state_file, loaded at
// the next start. Entries name their owner by address (ids are per process) and keep their
// age; the table's hash seed is saved too, because keys are hashes and the ids themselves
// are never stored.

#include "turnout/session/session_table.hpp"
#include "turnout/upstream/backend_registry.hpp"

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace turnout::session {

struct saved_session {
    session_key key;
    std::uint32_t age_s = 0; // seconds since last use, at load time
    std::string owner;       // backend address
};

struct saved_table {
    std::uint64_t seed = 0;
    std::vector<saved_session> sessions;
};

/// "<state_file>.sessions".
std::string session_file_for(const std::string& state_file);

/// The saved-table bytes of table (what save_table writes; also what an upgrade hands over).
std::string encode_table(const session_table& table, const upstream::backend_registry& registry, std::uint32_t now_s);

/// Decodes encode_table's bytes; name appears in errors. Throws std::runtime_error when damaged.
saved_table decode_table(const std::string& data, const std::string& name);

/// Writes the table atomically (temp file, fsync, rename). Throws std::runtime_error.
void save_table(const std::string& path, const session_table& table,
                const upstream::backend_registry& registry, std::uint32_t now_s);

/// Reads a saved table. nullopt when there is none; throws std::runtime_error with a clear
/// message when the file exists but is damaged.
std::optional<saved_table> load_table(const std::string& path);

} // namespace turnout::session
