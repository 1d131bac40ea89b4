#pragma once
// The read-only TCP status endpoint (status_address): /healthz, /readyz, /metrics, answered by
// the admin API's own handler at access::read_only (admin_server.hpp), so the two endpoints
// cannot drift apart; any other method answers 405, any other path 404. Served with
// Boost.Beast on the control thread; it never changes anything.

#include "turnout/admin/control.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>

#include <memory>

namespace turnout::admin {

class status_server {
public:
    /// Binds and listens; throws boost::system::system_error.
    status_server(boost::asio::io_context& io, const boost::asio::ip::tcp::endpoint& endpoint, control& c);
    /// Serves on a socket that is already listening (handed over by an upgrade).
    status_server(boost::asio::io_context& io, int listening_fd, control& c);
    ~status_server();

    boost::asio::ip::tcp::endpoint local_endpoint() const;
    int native_handle() const;
    void start();
    void close();

private:
    struct impl;
    std::shared_ptr<impl> impl_;
};

} // namespace turnout::admin
