#include "turnout/admin/admin_server.hpp"

#include "turnout/config/config.hpp"
#include "turnout/config/duration.hpp"
#include "turnout/config/rules.hpp"

#include <boost/asio/local/stream_protocol.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/json.hpp>

#include <algorithm>
#include <array>
#include <cerrno>
#include <charconv>
#include <cstdio>
#include <cstring>
#include <exception>
#include <functional>
#include <list>
#include <optional>
#include <set>
#include <stdexcept>
#include <vector>

#include <sys/stat.h>
#include <unistd.h>

namespace turnout::admin {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace json = boost::json;
using local = asio::local::stream_protocol;

constexpr std::size_t max_body_bytes = 1024 * 1024;
constexpr auto read_timeout = std::chrono::seconds(30);

} // namespace

// ---------------------------------------------------------------------------------------------
// The server

namespace {

using admin_stream = beast::basic_stream<local, asio::any_io_executor, beast::unlimited_rate_policy>;

/// One keep-alive connection to the admin socket.
class admin_session : public std::enable_shared_from_this<admin_session> {
public:
    admin_session(local::socket socket, control& c) : stream_(std::move(socket)), control_(c) {}

    void start() { do_read(); }

    /// Ends the connection: at once when idle, after the answer in progress otherwise.
    void stop()
    {
        stopping_ = true;
        if (!writing_)
            close();
    }

private:
    void do_read()
    {
        parser_.emplace();
        parser_->body_limit(max_body_bytes);
        stream_.expires_after(read_timeout);
        http::async_read(stream_, buffer_, *parser_,
                         [self = shared_from_this()](beast::error_code ec, std::size_t) { self->on_read(ec); });
    }

    void on_read(beast::error_code ec)
    {
        if (ec == http::error::body_limit)
            return reply_and_close(error_answer(413, "request body is larger than 1 MiB"));
        if (ec == http::error::end_of_stream || ec == beast::error::timeout || ec == asio::error::operation_aborted ||
            ec == asio::error::eof || ec == asio::error::connection_reset || stopping_)
            return close();
        if (ec)
            return reply_and_close(error_answer(400, "malformed HTTP request: " + ec.message()));

        const auto& req = parser_->get();
        const auto answer = handle_request(control_, req.method_string(), req.target(), req.body());
        do_write(answer, req.version(), req.keep_alive());
    }

    void reply_and_close(const http_answer& answer) { do_write(answer, 11, false); }

    void do_write(const http_answer& answer, unsigned version, bool keep_alive)
    {
        response_ = http::response<http::string_body>{static_cast<http::status>(answer.status), version};
        response_.set(http::field::content_type, answer.content_type);
        response_.set(http::field::cache_control, "no-store");
        if (!answer.allow.empty())
            response_.set(http::field::allow, answer.allow);
        response_.body() = answer.body;
        // Connection: close (or HTTP/1.0 without keep-alive) ends the connection after this answer.
        response_.keep_alive(keep_alive && !stopping_);
        response_.prepare_payload();

        writing_ = true;
        stream_.expires_after(read_timeout);
        http::async_write(stream_, response_, [self = shared_from_this()](beast::error_code ec, std::size_t) {
            self->on_write(ec);
        });
    }

    void on_write(beast::error_code ec)
    {
        writing_ = false;
        if (ec || stopping_ || !response_.keep_alive())
            return close();
        do_read();
    }

    void close()
    {
        beast::error_code ignored;
        stream_.socket().shutdown(local::socket::shutdown_both, ignored);
        stream_.close();
    }

    admin_stream stream_;
    control& control_;
    beast::flat_buffer buffer_;
    std::optional<http::request_parser<http::string_body>> parser_;
    http::response<http::string_body> response_;
    bool writing_ = false;
    bool stopping_ = false;
};

[[noreturn]] void fail(const std::string& path, const std::string& what)
{
    throw std::runtime_error("admin socket " + path + ": " + what);
}

/// A socket file left by a process that is gone would make bind fail; anything else at the
/// path is not ours to delete.
void remove_stale_socket(const std::string& path)
{
    struct stat st{};
    if (::lstat(path.c_str(), &st) != 0) {
        if (errno == ENOENT)
            return;
        fail(path, std::strerror(errno));
    }
    if (!S_ISSOCK(st.st_mode))
        fail(path, "the path exists and is not a socket; refusing to replace it");
    if (::unlink(path.c_str()) != 0 && errno != ENOENT)
        fail(path, std::string{"cannot remove the stale socket: "} + std::strerror(errno));
}

} // namespace

struct admin_server::impl : std::enable_shared_from_this<impl> {
    impl(asio::io_context& io, std::string p, control& ctl) : acceptor(io), path(std::move(p)), c(ctl) {}

    void open()
    {
        remove_stale_socket(path);
        local::endpoint endpoint;
        try {
            endpoint = local::endpoint(path);
        } catch (const std::exception& e) {
            fail(path, e.what()); // longer than sun_path
        }
        beast::error_code ec;
        acceptor.open(endpoint.protocol(), ec);
        if (ec)
            fail(path, ec.message());

        // bind creates the file with mode 0777 & ~umask: with umask 0177 it is 0600 from its
        // first instant, so no other user can connect before the chmod below.
        const auto old_mask = ::umask(0177);
        acceptor.bind(endpoint, ec);
        ::umask(old_mask);
        if (ec)
            fail(path, "cannot bind: " + ec.message());

        // Remember which file is ours, so that close() never unlinks a successor's socket.
        struct stat st{};
        if (::lstat(path.c_str(), &st) == 0) {
            device = st.st_dev;
            inode = st.st_ino;
        }
        try {
            if (::chmod(path.c_str(), 0600) != 0)
                fail(path, std::string{"cannot chmod 0600: "} + std::strerror(errno));
            acceptor.listen(asio::socket_base::max_listen_connections, ec);
            if (ec)
                fail(path, "cannot listen: " + ec.message());
        } catch (...) {
            unlink_own_socket(); // a half-made socket would only mislead the next start
            throw;
        }
    }

    void do_accept()
    {
        acceptor.async_accept([self = shared_from_this()](beast::error_code ec, local::socket socket) {
            self->on_accept(ec, std::move(socket));
        });
    }

    void on_accept(beast::error_code ec, local::socket socket)
    {
        if (ec == asio::error::operation_aborted || !acceptor.is_open())
            return;
        if (!ec) {
            auto session = std::make_shared<admin_session>(std::move(socket), c);
            forget_closed_sessions();
            sessions.push_back(session);
            session->start();
        }
        do_accept();
    }

    void forget_closed_sessions()
    {
        sessions.remove_if([](const auto& s) { return s.expired(); });
    }

    void close()
    {
        beast::error_code ignored;
        if (acceptor.is_open()) {
            acceptor.close(ignored);
            unlink_own_socket();
        }
        for (const auto& weak : sessions) {
            if (auto session = weak.lock())
                session->stop();
        }
        sessions.clear();
    }

    void unlink_own_socket() const
    {
        struct stat st{};
        if (::lstat(path.c_str(), &st) == 0 && S_ISSOCK(st.st_mode) && st.st_dev == device && st.st_ino == inode)
            ::unlink(path.c_str());
    }

    local::acceptor acceptor;
    std::string path;
    control& c;
    dev_t device = 0;
    ino_t inode = 0;
    std::list<std::weak_ptr<admin_session>> sessions;
};

admin_server::admin_server(asio::io_context& io, std::string path, control& c)
    : impl_(std::make_shared<impl>(io, std::move(path), c))
{
    impl_->open();
}

admin_server::~admin_server() { close(); }

void admin_server::start() { impl_->do_accept(); }

void admin_server::close() { impl_->close(); }

} // namespace turnout::admin
