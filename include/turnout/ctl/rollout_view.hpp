#pragma once
// turnoutctl's rendering of a rollout (the `rollout` object of SPEC's status) for a human: a
// timeline of its steps with where it stands, the last verdict with both pools' figures, and
// its history. `--wait` prints the events as they come.

#include <boost/json.hpp>

#include <cstddef>
#include <ostream>
#include <string>

namespace turnout::ctl {

/// The whole rollout of upstream (r: the rollout object; not null).
void print_rollout(std::ostream& out, const std::string& upstream, const boost::json::object& r);
/// History events from index `from` on, one line each; returns the index after the last.
std::size_t print_events(std::ostream& out, const boost::json::object& r, std::size_t from);
/// "running", "succeeded", ... ("" when absent).
std::string rollout_state(const boost::json::object& r);

} // namespace turnout::ctl
