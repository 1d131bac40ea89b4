#pragma once
// The read-only TCP status endpoint (status_address): /healthz, /readyz, /metrics. Served with
// Boost.Beast on the control thread; it never changes anything.

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>

#include <functional>
#include <memory>
#include <string>

namespace turnout::admin {

class status_server {
public:
    struct probes {
        std::function<bool()> ready;          // false while draining
        std::function<std::string()> metrics; // Prometheus text
    };

    /// Binds and listens; throws boost::system::system_error.
    status_server(boost::asio::io_context& io, const boost::asio::ip::tcp::endpoint& endpoint, probes p);
    /// Serves on a socket that is already listening (handed over by an upgrade).
    status_server(boost::asio::io_context& io, int listening_fd, probes p);
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
