#include "turnout/net/listener.hpp"

#include <boost/asio/socket_base.hpp>
#include <spdlog/spdlog.h>

#include <sys/socket.h>
#include <unistd.h>

namespace turnout::net {

listener::listener(boost::asio::io_context& io, const tcp::endpoint& endpoint, on_connection handler)
    : acceptor_(io), backoff_(io), handler_(std::move(handler))
{
    acceptor_.open(endpoint.protocol());
    acceptor_.set_option(tcp::acceptor::reuse_address(true));
    using reuse_port = boost::asio::detail::socket_option::boolean<SOL_SOCKET, SO_REUSEPORT>;
    acceptor_.set_option(reuse_port(true));
    if (endpoint.address().is_v6())
        acceptor_.set_option(boost::asio::ip::v6_only(true));
    acceptor_.bind(endpoint);
    acceptor_.listen(boost::asio::socket_base::max_listen_connections);
}

listener::listener(boost::asio::io_context& io, int listening_fd, on_connection handler)
    : acceptor_(io), backoff_(io), handler_(std::move(handler))
{
    sockaddr_storage address{};
    socklen_t length = sizeof address;
    if (::getsockname(listening_fd, reinterpret_cast<sockaddr*>(&address), &length) != 0)
        throw boost::system::system_error(errno, boost::system::system_category(), "getsockname");
    acceptor_.assign(address.ss_family == AF_INET6 ? tcp::v6() : tcp::v4(), listening_fd);
}

void listener::close()
{
    boost::system::error_code ignored;
    backoff_.cancel();
    if (!acceptor_.is_open())
        return;
    // Not acceptor_.close(): Asio then skips EPOLL_CTL_DEL, trusting close() to drop the
    // registration — which the kernel does only once no process holds the socket. After an
    // upgrade the successor holds it, and its new connections would keep waking this
    // process's reactor on a freed registration. release() deregisters first.
    const int fd = acceptor_.release(ignored);
    if (fd >= 0)
        ::close(fd);
}

void listener::do_accept()
{
    acceptor_.async_accept([self = shared_from_this()](boost::system::error_code ec, tcp::socket socket) {
        self->on_accept(ec, std::move(socket));
    });
}

void listener::on_accept(boost::system::error_code ec, tcp::socket socket)
{
    if (ec == boost::asio::error::operation_aborted)
        return;
    if (!acceptor_.is_open()) {
        // Accepted just before the listener closed (drain, upgrade): the kernel completed the
        // handshake and the client is sending — serve it rather than reset it.
        if (!ec)
            handler_(std::move(socket));
        return;
    }
    if (ec) {
        // EMFILE and friends: retrying at once would spin. Back off briefly.
        spdlog::warn("accept on {}: {}", acceptor_.local_endpoint().port(), ec.message());
        backoff_.expires_after(std::chrono::milliseconds(50));
        backoff_.async_wait([self = shared_from_this()](boost::system::error_code wait_ec) {
            if (!wait_ec)
                self->do_accept();
        });
        return;
    }
    handler_(std::move(socket));
    do_accept();
}

} // namespace turnout::net
