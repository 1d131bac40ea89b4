#pragma once
// Active health checks (SPEC.md [upstream.health]): each backend of an upstream with checks is
// probed (health/probe) every `interval` with a deadline of `timeout`, from the control
// thread — never on the request path. `fall` failed probes in a row mark a backend unhealthy
// (no new sessions; its pinned sessions keep being forwarded), `rise` passed ones healthy
// again.

#include "turnout/config/config.hpp"
#include "turnout/health/probe.hpp"
#include "turnout/runtime/shared_state.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>

namespace turnout::health {

class health_checker {
public:
    health_checker(boost::asio::io_context& control, runtime::shared_state& shared);
    ~health_checker();

    /// Follows a newly published snapshot: starts probing backends of upstreams with
    /// [upstream.health], stops probing those no longer listed there. Call on the control
    /// thread after each publication.
    void update(const runtime::snapshot& s);

    /// Stops every probe loop (shutdown).
    void stop();

private:
    struct impl;
    std::shared_ptr<impl> impl_;
};

} // namespace turnout::health
