#pragma once
// One acceptor of one worker. Every worker binds the same address with SO_REUSEPORT, so the
// kernel spreads new connections across workers with no hand-off between threads.

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/system/error_code.hpp>

#include <functional>
#include <memory>

namespace turnout::net {

using tcp = boost::asio::ip::tcp;

class listener : public std::enable_shared_from_this<listener> {
public:
    using on_connection = std::function<void(tcp::socket)>;

    /// Opens, binds (SO_REUSEADDR, SO_REUSEPORT) and listens. Throws boost::system::system_error.
    listener(boost::asio::io_context& io, const tcp::endpoint& endpoint, on_connection handler);
    /// Adopts a socket that is already bound and listening (handed over by the process this
    /// one upgrades). Throws boost::system::system_error.
    listener(boost::asio::io_context& io, int listening_fd, on_connection handler);

    tcp::endpoint local_endpoint() const { return acceptor_.local_endpoint(); }
    /// The kernel socket, for handing it to a successor (it stays open here until close()).
    int native_handle() { return acceptor_.native_handle(); }

    void start() { do_accept(); }
    void close();

private:
    void do_accept();
    void on_accept(boost::system::error_code ec, tcp::socket socket);

    tcp::acceptor acceptor_;
    boost::asio::steady_timer backoff_;
    on_connection handler_;
};

} // namespace turnout::net
