#include "turnout/net/tls_stream.hpp"

#include <boost/asio/ssl/error.hpp>
#include <boost/system/system_error.hpp>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include <cerrno>
#include <climits>

namespace turnout::net {
namespace {

/// Before each OpenSSL call: SSL_get_error reads this thread's error queue, and
/// SSL_ERROR_SYSCALL's meaning depends on errno, both of which an earlier call may have set.
void clear_errors() noexcept
{
    ERR_clear_error();
    errno = 0;
}

} // namespace

tls_stream::tls_stream(boost::asio::ip::tcp::socket& socket, boost::asio::ssl::context& ctx)
    : socket_(socket), session_(new session)
{
    SSL* const ssl = SSL_new(ctx.native_handle());
    if (!ssl) {
        ERR_clear_error();
        throw boost::system::system_error(boost::asio::error::no_memory, "SSL_new");
    }
    session_->ssl = ssl;
    // OpenSSL calls recv/send itself and must get EAGAIN rather than block. native_non_blocking
    // changes only the descriptor, not how Asio's own synchronous calls on the socket behave.
    boost::system::error_code ec;
    socket_.native_non_blocking(true, ec);
    // Record buffers exist only while a record is in flight (an idle connection keeps none);
    // a write may end after some records (the completion reports how many bytes), and a
    // retried write may pass its bytes from another address (write_step gathers them anew).
    SSL_set_mode(ssl, SSL_MODE_RELEASE_BUFFERS | SSL_MODE_ENABLE_PARTIAL_WRITE |
                           SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    // One recv for a whole record (or several) instead of one for its header and one for its
    // body. Safe here: an operation waits for the socket only after OpenSSL said WANT_READ, that
    // is after whatever it had read ahead was used up.
    SSL_set_read_ahead(ssl, 1);
    const int fd = static_cast<int>(socket_.native_handle());
    if (ec || SSL_set_fd(ssl, fd) != 1) {
        ERR_clear_error();
        throw boost::system::system_error(ec ? ec : boost::asio::error::no_memory, "SSL_set_fd");
    }
    session_->socket = &socket_;
    session_->fd = fd;
}

tls_stream::~tls_stream()
{
    // Operations still queued find the session detached and end as aborted; the SSL object
    // goes with the last of them.
    session_->socket = nullptr;
}

tls_stream::session::~session()
{
    // SSL_free does not close the descriptor (no BIO_CLOSE with SSL_set_fd): the socket's owner does.
    SSL_free(ssl);
}

void tls_stream::prepare_handshake(handshake_type type) noexcept
{
    if (type == boost::asio::ssl::stream_base::client)
        SSL_set_connect_state(session_->ssl);
    else
        SSL_set_accept_state(session_->ssl);
}

tls_stream::step_result tls_stream::session::handshake_step()
{
    clear_errors();
    return classify(SSL_do_handshake(ssl), 0);
}

tls_stream::step_result tls_stream::session::read_step(boost::asio::mutable_buffer buffer)
{
    if (buffer.size() == 0)
        return {};
    clear_errors();
    std::size_t n = 0;
    const int ret = SSL_read_ex(ssl, buffer.data(), buffer.size(), &n);
    return classify(ret, n);
}

tls_stream::step_result tls_stream::session::write_one(boost::asio::const_buffer buffer)
{
    if (buffer.size() == 0)
        return {};
    clear_errors();
    std::size_t n = 0;
    const int ret = SSL_write_ex(ssl, buffer.data(), buffer.size(), &n);
    return classify(ret, n);
}

tls_stream::step_result tls_stream::session::shutdown_step()
{
    clear_errors();
    int ret = SSL_shutdown(ssl);
    if (ret == 0) {
        // close_notify is out; the second call waits for the peer's (as Asio's engine does).
        clear_errors();
        ret = SSL_shutdown(ssl);
    }
    return classify(ret, 0);
}

tls_stream::step_result tls_stream::session::classify(int ret, std::size_t bytes)
{
    if (ret > 0)
        return {want::nothing, {}, bytes};
    const int sys_errno = errno; // before anything else can change it
    const int error = SSL_get_error(ssl, ret);
    const unsigned long queued = ERR_peek_error();
    ERR_clear_error(); // nothing left for the next call on this thread to misread
    switch (error) {
    case SSL_ERROR_WANT_READ: return {want::read, {}, 0};
    case SSL_ERROR_WANT_WRITE: return {want::write, {}, 0};
    case SSL_ERROR_ZERO_RETURN: return {want::nothing, boost::asio::error::eof, 0}; // close_notify
    case SSL_ERROR_SYSCALL:
        if (queued == 0 && sys_errno != 0 && sys_errno != EAGAIN)
            return {want::nothing, {sys_errno, boost::system::system_category()}, 0};
        if (queued == 0)
            return {want::nothing, boost::asio::ssl::error::stream_truncated, 0}; // TCP end, no close_notify
        break;
    case SSL_ERROR_SSL:
#ifdef SSL_R_UNEXPECTED_EOF_WHILE_READING
        if (ERR_GET_LIB(queued) == ERR_LIB_SSL && ERR_GET_REASON(queued) == SSL_R_UNEXPECTED_EOF_WHILE_READING)
            return {want::nothing, boost::asio::ssl::error::stream_truncated, 0};
#endif
        break;
    default: break;
    }
    if (queued == 0)
        return {want::nothing, boost::asio::ssl::error::unspecified_system_error, 0};
    return {want::nothing, {static_cast<int>(queued), boost::asio::error::get_ssl_category()}, 0};
}

} // namespace turnout::net
