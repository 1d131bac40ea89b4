#pragma once
// TLS over a TCP socket with OpenSSL reading and writing the non-blocking socket itself (a
// socket BIO), as nginx and HAProxy do. Asio's ssl::stream keeps two 17 KiB buffers of its
// own plus a 2 × 17 KiB BIO pair for the connection's whole life; here an idle connection
// costs the SSL object only (SSL_MODE_RELEASE_BUFFERS frees OpenSSL's record buffers while
// nothing is in flight). When OpenSSL wants the socket (SSL_ERROR_WANT_READ/WRITE) the
// operation waits for readiness with the socket's async_wait and calls OpenSSL again.
//
// It models AsyncReadStream/AsyncWriteStream. One read and one write may be pending at once
// (full duplex), plus a handshake or a shutdown in place of either; the SSL object is not
// re-entrant, but every call happens on the socket's (single-threaded) executor, so calls
// never overlap, and each operation retries its own call after its own wait. Errors are
// those of Asio's ssl::stream: eof after the peer's close_notify, ssl::error::stream_truncated
// for a TCP end without one, the system error of the socket, or OpenSSL's error in Asio's
// ssl category. Completions never run inside the initiating call.
//
// A readiness wait completes through the io_context's queue, and by the time its handler runs
// the connection may have closed the socket or destroyed the stream (another handler of the
// same turn did). So the SSL object lives in a session that pending operations share, and an
// operation calls OpenSSL again only while the session's stream still exists and its socket is
// still open on the descriptor the SSL object was given; otherwise it ends with
// operation_aborted, like Asio's own operations on a closed socket.

#include <boost/asio/associated_executor.hpp>
#include <boost/asio/buffer.hpp>
#include <boost/asio/compose.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/stream_base.hpp>
#include <boost/smart_ptr/intrusive_ptr.hpp>

#include <array>
#include <cstddef>
#include <iterator>
#include <type_traits>

namespace turnout::net {

class tls_stream {
public:
    using executor_type = boost::asio::ip::tcp::socket::executor_type;
    using handshake_type = boost::asio::ssl::stream_base::handshake_type;

    /// A new TLS session with ctx's settings over socket (open, connected, nothing exchanged
    /// yet). Puts the socket in non-blocking mode. Throws boost::system::system_error when
    /// OpenSSL cannot make the session (out of memory).
    tls_stream(boost::asio::ip::tcp::socket& socket, boost::asio::ssl::context& ctx);
    ~tls_stream();
    tls_stream(const tls_stream&) = delete;
    tls_stream& operator=(const tls_stream&) = delete;

    SSL* native_handle() noexcept { return session_->ssl; }
    executor_type get_executor() noexcept { return socket_.get_executor(); }
    boost::asio::ip::tcp::socket& next_layer() noexcept { return socket_; }

    /// Handler: void(error_code).
    template <class Handler>
    auto async_handshake(handshake_type type, Handler&& handler)
    {
        prepare_handshake(type);
        return start<false>([](session& s) { return s.handshake_step(); }, std::forward<Handler>(handler));
    }

    /// Reads at most the first non-empty buffer's worth. Handler: void(error_code, std::size_t).
    template <class MutableBuffers, class Handler>
    auto async_read_some(const MutableBuffers& buffers, Handler&& handler)
    {
        const boost::asio::mutable_buffer first = first_buffer<boost::asio::mutable_buffer>(buffers);
        return start<true>([first](session& s) { return s.read_step(first); }, std::forward<Handler>(handler));
    }

    /// Writes one record or more; several small buffers are gathered into one record (at most
    /// gather_limit bytes of them), so a head and a body piece cost one record and one system
    /// call. A write retried after a wait passes the same bytes again (gathered anew from the
    /// caller's buffers, which stay as they are until the completion: OpenSSL's moving write
    /// buffer mode accepts the new address). Handler: void(error_code, std::size_t).
    template <class ConstBuffers, class Handler>
    auto async_write_some(const ConstBuffers& buffers, Handler&& handler)
    {
        return start<true>([buffers](session& s) { return write_step(s, buffers); }, std::forward<Handler>(handler));
    }

    /// Sends close_notify and waits for the peer's. A peer that never answers keeps this
    /// pending: callers bound it with a deadline that closes the socket. Handler:
    /// void(error_code).
    template <class Handler>
    auto async_shutdown(Handler&& handler)
    {
        return start<false>([](session& s) { return s.shutdown_step(); }, std::forward<Handler>(handler));
    }

    static constexpr std::size_t gather_limit = 16384; // one TLS record

private:
    enum class want { nothing, read, write };

    /// The outcome of one OpenSSL call.
    struct step_result {
        want wait = want::nothing;
        boost::system::error_code ec;
        std::size_t bytes = 0;
    };

    /// The SSL object and what its pending operations need to know about the stream. Counted
    /// without atomics: the stream and its operations live on one thread.
    struct session {
        SSL* ssl = nullptr;
        boost::asio::ip::tcp::socket* socket = nullptr; // null once the stream is gone
        int fd = -1;                                     // the descriptor ssl reads and writes
        unsigned references = 0;

        session() = default;
        session(const session&) = delete;
        session& operator=(const session&) = delete;
        ~session();

        /// Whether OpenSSL may touch the descriptor: the stream exists, its socket is still open
        /// on the descriptor the SSL object was given.
        bool attached() const noexcept { return socket && socket->is_open() && socket->native_handle() == fd; }

        step_result handshake_step();
        step_result read_step(boost::asio::mutable_buffer buffer);
        step_result write_one(boost::asio::const_buffer buffer);
        step_result shutdown_step();
        /// What OpenSSL's answer ret to a call means (for the call that just returned).
        step_result classify(int ret, std::size_t bytes);

        friend void intrusive_ptr_add_ref(session* s) noexcept { ++s->references; }
        friend void intrusive_ptr_release(session* s) noexcept
        {
            if (--s->references == 0)
                delete s;
        }
    };

    void prepare_handshake(handshake_type type) noexcept;

    template <class Buffer, class Buffers>
    static Buffer first_buffer(const Buffers& buffers)
    {
        for (auto it = boost::asio::buffer_sequence_begin(buffers); it != boost::asio::buffer_sequence_end(buffers); ++it)
            if (Buffer b = *it; b.size() != 0)
                return b;
        return Buffer{};
    }

    template <class ConstBuffers>
    static step_result write_step(session& s, const ConstBuffers& buffers)
    {
        const auto begin = boost::asio::buffer_sequence_begin(buffers);
        const auto end = boost::asio::buffer_sequence_end(buffers);
        const boost::asio::const_buffer first = first_buffer<boost::asio::const_buffer>(buffers);
        if (first.size() >= gather_limit || std::next(begin) == end)
            return s.write_one(first);
        std::array<unsigned char, gather_limit> gathered; // on the stack: nothing kept per connection
        const auto n = boost::asio::buffer_copy(boost::asio::buffer(gathered), buffers);
        return s.write_one(boost::asio::buffer(gathered.data(), n));
    }

    /// One operation: calls step, waits for the readiness OpenSSL asks for, calls it again,
    /// until it is done or fails.
    template <bool WithSize, class Step>
    struct operation {
        boost::intrusive_ptr<session> shared;
        Step step;
        enum class phase { start, waiting, deferred } at = phase::start;
        step_result result{};

        template <class Self>
        void operator()(Self& self, boost::system::error_code wait_error = {})
        {
            if (at == phase::deferred)
                return finish(self);
            if (at == phase::waiting && wait_error) {
                result = {want::nothing, wait_error, 0};
                return finish(self);
            }
            if (!shared->attached()) {
                result = {want::nothing, boost::asio::error::operation_aborted, 0};
                if (at != phase::start)
                    return finish(self);
            } else {
                result = step(*shared);
            }
            if (result.wait != want::nothing) {
                const auto type = result.wait == want::read ? boost::asio::socket_base::wait_read
                                                            : boost::asio::socket_base::wait_write;
                at = phase::waiting;
                return shared->socket->async_wait(type, std::move(self));
            }
            if (at == phase::start) {
                // Done at once: the handler must not run inside the initiating call.
                at = phase::deferred;
                return boost::asio::post(self.get_io_executor(), std::move(self));
            }
            finish(self);
        }

        template <class Self>
        void finish(Self& self)
        {
            if constexpr (WithSize)
                self.complete(result.ec, result.bytes);
            else
                self.complete(result.ec);
        }
    };

    template <bool WithSize, class Step, class Handler>
    auto start(Step step, Handler&& handler)
    {
        using signature = std::conditional_t<WithSize, void(boost::system::error_code, std::size_t),
                                             void(boost::system::error_code)>;
        return boost::asio::async_compose<Handler, signature>(operation<WithSize, Step>{session_, std::move(step)},
                                                              handler, socket_);
    }

    boost::asio::ip::tcp::socket& socket_;
    boost::intrusive_ptr<session> session_;
};

} // namespace turnout::net
