#pragma once
// The operations of the admin API, as the process implements them (on the control thread).
// The admin server turns HTTP requests into these calls and their results into responses;
// it validates the shape of requests, control validates their meaning.

#include "turnout/config/duration.hpp"
#include "turnout/control/rollout_request.hpp"

#include <boost/json/object.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace turnout::admin {

/// The outcome of a change: status 200 with the upstream's new state as body, or a 4xx with
/// one clear sentence (404 unknown upstream/pool, 400 bad value, 409 refused).
struct result {
    unsigned status = 200;
    std::string error;
    boost::json::object body;

    static result ok(boost::json::object body = {}) { return {200, {}, std::move(body)}; }
    static result fail(unsigned status, std::string error) { return {status, std::move(error), {}}; }
};

class control {
public:
    virtual ~control() = default;

    /// SPEC.md's status document.
    virtual boost::json::object status() const = 0;
    /// Prometheus text exposition.
    virtual std::string metrics() const = 0;
    /// false while draining for shutdown.
    virtual bool ready() const = 0;

    /// force: give a pool its first traffic even when its tools would break clients, or it
    /// has no healthy backend.
    virtual result set_weights(std::string_view upstream,
                               const std::vector<std::pair<std::string, std::int64_t>>& weights, bool force) = 0;
    virtual result switch_to(std::string_view upstream, std::string_view pool, bool force) = 0;
    virtual result rollback(std::string_view upstream) = 0;
    /// timeout: nullopt = the proxy's drain_timeout.
    virtual result drain(std::string_view upstream, std::string_view pool,
                         std::optional<config::duration> timeout) = 0;
    virtual result undrain(std::string_view upstream, std::string_view pool) = 0;
    /// One backend of a pool (address as the pool lists it); 404 when the pool does not list it.
    virtual result drain_backend(std::string_view upstream, std::string_view pool, std::string_view address,
                                 std::optional<config::duration> timeout) = 0;
    virtual result undrain_backend(std::string_view upstream, std::string_view pool, std::string_view address) = 0;
    virtual result set_backends(std::string_view upstream, std::string_view pool,
                                const std::vector<std::string>& addresses) = 0;
    /// `switch --watch`: the switch, then the rollout analysis for watch; a failure switches back.
    virtual result watch_switch(std::string_view upstream, std::string_view pool, bool force,
                                config::duration watch) = 0;
    virtual result start_rollout(std::string_view upstream, const ::turnout::control::rollout_request& r) = 0;
    /// The upstream's rollout object (SPEC's shape), or 404.
    virtual result rollout(std::string_view upstream) = 0;
    virtual result rollout_command(std::string_view upstream, ::turnout::control::rollout_command c) = 0;
    virtual result reload() = 0;
    /// Zero-downtime upgrade: start binary (nullopt = the one this process runs), hand it the
    /// listeners and the session table, answer {"pid":N} once it serves, then drain and exit.
    /// 409 while the process drains or already handed over, 400 for a path that is not an
    /// executable file, 500 when the new process failed (this one keeps serving).
    virtual result upgrade(const std::optional<std::string>& binary) = 0;
};

} // namespace turnout::admin
