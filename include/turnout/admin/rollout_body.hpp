#pragma once
// The body of POST /v1/upstreams/{u}/rollout, read into a control::rollout_request:
// {"pool", "steps": [{"weight": 5, "hold": "30m"}, ..., {"weight": 100}], "baseline",
//  "interval", "failure_limit", "on_failure", "force"} — only "pool" is required.

#include "turnout/control/rollout_request.hpp"

#include <boost/json/object.hpp>

#include <string>
#include <variant>

namespace turnout::admin {

/// The request, or one sentence saying what is wrong with the body.
std::variant<::turnout::control::rollout_request, std::string> read_rollout_body(const boost::json::object& body);

} // namespace turnout::admin
