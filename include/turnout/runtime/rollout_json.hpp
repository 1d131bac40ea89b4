#pragma once
// A rollout as JSON, for the state file: every field written, every field read back and
// checked (a bad one throws std::runtime_error naming its path under `where`).

#include "turnout/runtime/rollout.hpp"

#include <boost/json/value.hpp>

#include <string>

namespace turnout::runtime {

boost::json::value rollout_to_json(const rollout_runtime& r);
rollout_runtime rollout_from_json(const boost::json::value& v, const std::string& where);

} // namespace turnout::runtime
