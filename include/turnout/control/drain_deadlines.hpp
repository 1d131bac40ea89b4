#pragma once
// Drains with a deadline, of pools and of single backends: once a drain's grace is over, its
// sessions answer 404 (the snapshot marks the pool expired, the backend retired) and its
// streams close, spread over a short window so their clients don't all reconnect in the same
// instant. Checked on the control thread every 100 ms.

#include "turnout/control/publisher.hpp"
#include "turnout/net/worker_pool.hpp"
#include "turnout/runtime/shared_state.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>

#include <set>
#include <string>
#include <string_view>
#include <tuple>
#include <utility>
#include <vector>

namespace turnout::control {

class drain_deadlines {
public:
    drain_deadlines(boost::asio::io_context& control, publisher& p, runtime::shared_state& shared,
                    net::worker_pool& workers)
        : timer_(control), publisher_(p), shared_(shared), workers_(workers)
    {
    }

    void start() { do_watch(); }
    void stop() { timer_.cancel(); }
    /// A pool drained anew or undrained: its next deadline is enforced again.
    void reset(std::string_view upstream, std::string_view pool);
    /// The same for one backend of a pool.
    void reset(std::string_view upstream, std::string_view pool, std::string_view address);

private:
    void do_watch();
    void on_tick();

    boost::asio::steady_timer timer_;
    publisher& publisher_;
    runtime::shared_state& shared_;
    net::worker_pool& workers_;
    void close_expired(const std::vector<std::pair<std::string, std::string>>& pools,
                       const std::vector<std::tuple<std::string, std::string, std::string>>& backends);

    std::set<std::pair<std::string, std::string>> enforced_; // (upstream, pool)
    std::set<std::tuple<std::string, std::string, std::string>> enforced_backends_; // (upstream, pool, address)
};

} // namespace turnout::control
