#pragma once
// The state file: runtime_state as JSON, written atomically (temp file, fsync, rename, fsync
// of the folder) before an admin change is acknowledged.

#include "turnout/runtime/runtime_state.hpp"

#include <optional>
#include <string>
#include <string_view>

namespace turnout::runtime {

std::string to_json(const runtime_state& state);

/// Throws std::runtime_error("<what is wrong>") for anything that is not a valid state.
runtime_state from_json(std::string_view text);

/// Throws std::runtime_error("PATH: reason") when the file cannot be written.
void save_state(const std::string& path, const runtime_state& state);

/// nullopt when there is no file; throws std::runtime_error("PATH: reason") when it exists
/// but is torn, corrupt or not a state file.
std::optional<runtime_state> load_state(const std::string& path);

} // namespace turnout::runtime
