#pragma once
// A byte stream that is a plain TCP socket or, when TLS is enabled on it, a tls_stream over
// that same socket. One predictable branch per operation keeps the plain path as it was (no
// virtual call, no allocation); the TLS layer is allocated once per connection, only for TLS
// connections. It models Asio's AsyncReadStream/AsyncWriteStream, so asio::async_write and
// Beast's HTTP algorithms work on it.

#include "turnout/net/tls_stream.hpp"

#include <boost/asio/buffer.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/write.hpp>

#include <memory>
#include <utility>

namespace turnout::net {

template <class NextLayer>
class basic_stream {
public:
    using next_layer_type = NextLayer;
    using tls_type = tls_stream;
    using executor_type = typename NextLayer::executor_type;

    template <class... Args>
    explicit basic_stream(Args&&... args) : next_(std::forward<Args>(args)...)
    {}
    basic_stream(const basic_stream&) = delete;
    basic_stream& operator=(const basic_stream&) = delete;

    NextLayer& next_layer() noexcept { return next_; }
    const NextLayer& next_layer() const noexcept { return next_; }
    executor_type get_executor() noexcept { return next_.get_executor(); }

    /// Puts TLS with ctx over the next layer (before any byte was exchanged).
    tls_type& enable_tls(boost::asio::ssl::context& ctx)
    {
        tls_ = std::make_unique<tls_type>(next_, ctx);
        return *tls_;
    }
    bool is_tls() const noexcept { return tls_ != nullptr; }
    tls_type& tls() noexcept { return *tls_; }

    template <class MutableBuffers, class Handler>
    void async_read_some(const MutableBuffers& buffers, Handler&& handler)
    {
        if (tls_) [[unlikely]]
            tls_->async_read_some(buffers, std::forward<Handler>(handler));
        else
            next_.async_read_some(buffers, std::forward<Handler>(handler));
    }

    template <class ConstBuffers, class Handler>
    void async_write_some(const ConstBuffers& buffers, Handler&& handler)
    {
        if (tls_) [[unlikely]]
            tls_->async_write_some(buffers, std::forward<Handler>(handler));
        else
            next_.async_write_some(buffers, std::forward<Handler>(handler));
    }

    /// Writes all of buffers. A sequence of one buffer (the usual whole message) goes out as
    /// that buffer: Asio's single-buffer path is a plain send with no sequence to prepare, and
    /// its operation fits Asio's recycled handler memory. Over TLS, tls_stream gathers small
    /// buffers into one record itself.
    template <class ConstBuffers, class Handler>
    void async_write(const ConstBuffers& buffers, Handler&& handler)
    {
        const auto first = boost::asio::buffer_sequence_begin(buffers);
        const auto count = std::distance(first, boost::asio::buffer_sequence_end(buffers));
        if (count == 1) {
            const boost::asio::const_buffer one = *first;
            if (!tls_) [[likely]]
                return boost::asio::async_write(next_, one, std::forward<Handler>(handler));
            return boost::asio::async_write(*tls_, one, std::forward<Handler>(handler));
        }
        if (!tls_) [[likely]]
            return boost::asio::async_write(next_, buffers, std::forward<Handler>(handler));
        boost::asio::async_write(*tls_, buffers, std::forward<Handler>(handler));
    }

private:
    NextLayer next_;
    std::unique_ptr<tls_type> tls_; // a plain connection carries this null pointer only
};

/// A TCP connection, TLS or not (client connections, backend connections).
using socket_stream = basic_stream<boost::asio::ip::tcp::socket>;

} // namespace turnout::net
