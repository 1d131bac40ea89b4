#include "turnout/admin/status_server.hpp"

#include "turnout/admin/admin_api.hpp"

#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include <sys/socket.h>
#include <unistd.h>

namespace turnout::admin {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

/// One keep-alive connection to the status endpoint.
class status_session : public std::enable_shared_from_this<status_session> {
public:
    status_session(tcp::socket socket, control& c) : stream_(std::move(socket)), control_(c) {}

    void start() { do_read(); }

private:
    void do_read()
    {
        request_ = {};
        stream_.expires_after(std::chrono::seconds(30));
        http::async_read(stream_, buffer_, request_,
                         [self = shared_from_this()](beast::error_code ec, std::size_t) { self->on_read(ec); });
    }

    void on_read(beast::error_code ec)
    {
        if (ec)
            return close();
        response_ = answer(request_);
        response_.keep_alive(request_.keep_alive());
        http::async_write(stream_, response_, [self = shared_from_this()](beast::error_code write_ec, std::size_t) {
            self->on_write(write_ec);
        });
    }

    void on_write(beast::error_code ec)
    {
        if (ec || !response_.keep_alive())
            return close();
        do_read();
    }

    http::response<http::string_body> answer(const http::request<http::string_body>& req) const
    {
        const auto a = handle_request(control_, req.method_string(), req.target(), req.body(), access::read_only);
        http::response<http::string_body> res{static_cast<http::status>(a.status), req.version()};
        res.set(http::field::content_type, a.content_type);
        res.set(http::field::cache_control, "no-store");
        if (!a.allow.empty())
            res.set(http::field::allow, a.allow);
        if (req.method() == http::verb::head) {
            res.content_length(a.body.size()); // what GET would send; no body follows
        } else {
            res.body() = a.body;
            res.prepare_payload();
        }
        return res;
    }

    void close()
    {
        beast::error_code ignored;
        stream_.socket().shutdown(tcp::socket::shutdown_both, ignored);
        stream_.close();
    }

    beast::tcp_stream stream_;
    beast::flat_buffer buffer_;
    http::request<http::string_body> request_;
    http::response<http::string_body> response_;
    control& control_;
};

} // namespace

struct status_server::impl : std::enable_shared_from_this<impl> {
    impl(asio::io_context& io, const tcp::endpoint& endpoint, control& ctl)
        : acceptor(io, endpoint, /*reuse_address=*/true), c(ctl)
    {}

    impl(asio::io_context& io, int fd, control& ctl) : acceptor(io), c(ctl)
    {
        sockaddr_storage address{};
        socklen_t length = sizeof address;
        if (::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) != 0)
            throw boost::system::system_error(errno, boost::system::system_category(), "getsockname");
        acceptor.assign(address.ss_family == AF_INET6 ? tcp::v6() : tcp::v4(), fd);
    }

    void do_accept()
    {
        acceptor.async_accept([self = shared_from_this()](beast::error_code ec, tcp::socket socket) {
            if (ec == asio::error::operation_aborted || !self->acceptor.is_open())
                return;
            if (!ec)
                std::make_shared<status_session>(std::move(socket), self->c)->start();
            self->do_accept();
        });
    }

    tcp::acceptor acceptor;
    control& c;
};

status_server::status_server(asio::io_context& io, const tcp::endpoint& endpoint, control& c)
    : impl_(std::make_shared<impl>(io, endpoint, c))
{}

status_server::status_server(asio::io_context& io, int listening_fd, control& c)
    : impl_(std::make_shared<impl>(io, listening_fd, c))
{}

int status_server::native_handle() const { return impl_->acceptor.native_handle(); }

status_server::~status_server() { close(); }

tcp::endpoint status_server::local_endpoint() const { return impl_->acceptor.local_endpoint(); }

void status_server::start() { impl_->do_accept(); }

void status_server::close()
{
    // release() first, as in net::listener::close(): after an upgrade the successor holds
    // the same socket, so close() alone would leave it registered in this reactor.
    beast::error_code ignored;
    if (!impl_->acceptor.is_open())
        return;
    const int fd = impl_->acceptor.release(ignored);
    if (fd >= 0)
        ::close(fd);
}

} // namespace turnout::admin
