#pragma once
// The `rollout` object of an upstream in the status document (SPEC "Rollouts"), also the
// answer of GET /v1/upstreams/{u}/rollout: null when the upstream never had one.

#include "turnout/runtime/rollout.hpp"

#include <boost/json/value.hpp>

#include <optional>

namespace turnout::control {

boost::json::value rollout_status(const std::optional<runtime::rollout_runtime>& r);

} // namespace turnout::control
