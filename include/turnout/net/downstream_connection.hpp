#pragma once
// One client connection and the exchanges on it. Two flows run at once per exchange, like
// Beast's relay() in both directions at the same time:
//
//   request flow:  client socket → in_ → request_ parser → (re-framed) → backend socket
//   response flow: backend socket → up_in_ → response_ parser → (re-framed) → client socket
//
// Each flow reads only after its previous write completed (backpressure, bounded memory), and
// body bytes go out as views into the read buffer (no copy). Pipelined requests wait in in_
// until the exchange before them ends. A single lazily re-armed timer enforces the deadline
// of whatever the connection is waiting for.
//
// The connection moves bytes and keeps time; where an exchange goes and what its answer
// teaches about sessions is the routing stage's (routing/stage), how heads are rewritten and
// bodies framed is the codec's (http/forwarding, http/chunk_framer), and per-exchange state is
// one `exchange` (net/exchange), reset by one assignment. Deadlines live on the worker's
// timing wheel (net/deadline_wheel), not in a timer per connection.

#include "turnout/http/chunk_framer.hpp"
#include "turnout/http/message_parser.hpp"
#include "turnout/net/deadline_wheel.hpp"
#include "turnout/net/exchange.hpp"
#include "turnout/net/io_buffer.hpp"
#include "turnout/net/stream.hpp"
#include "turnout/net/tls_context.hpp"
#include "turnout/net/worker_pool.hpp"
#include "turnout/runtime/snapshot.hpp"

#include <boost/asio/buffer.hpp>
#include <boost/asio/ip/tcp.hpp>

#include <chrono>
#include <memory>
#include <string>
#include <vector>

namespace turnout::net {

class downstream_connection final : public connection_handle,
                                    private deadline_wheel::entry,
                                    public std::enable_shared_from_this<downstream_connection> {
public:
    using tcp = boost::asio::ip::tcp;
    using clock = std::chrono::steady_clock;

    /// listen_index: which [[listen]] accepted it (its TLS context, if any, is in the snapshot).
    downstream_connection(worker& w, tcp::socket socket, std::size_t listen_index = 0);
    ~downstream_connection() override;

    void start();

    // connection_handle
    void drain() override;
    void abort() override;
    void retire() override;
    bool close_stream_from(const std::vector<const upstream::backend*>& targets, clock::time_point at) override;

private:
    enum class wait_kind { none, idle, header, connect, response, body, stream, linger };

    // TLS
    void do_handshake();
    void on_handshake(boost::system::error_code ec);
    void do_upstream_handshake();
    std::shared_ptr<tls_client_context> backend_tls() const;

    // request flow
    void do_read_client();
    bool waits_without_buffer() const noexcept;
    /// Between requests a read stays pending with a buffer for park_time first (a busy
    /// client's next request comes soon; Asio re-arms a pending read with no system call),
    /// then gives way to a wait without a buffer. A worker parks at most max_parked_reads.
    bool may_park_read();
    void end_park() noexcept;
    void expire_park();
    void do_wait_client();
    void release_idle_memory() noexcept;
    void on_client_readable(boost::system::error_code ec);
    void on_read_client(boost::system::error_code ec, std::size_t n);
    void process_request_bytes();
    void on_request_head();
    void continue_inspection();
    void continue_chunked_inspection();
    void route_request(routing::mcp_facts mcp);
    /// The request's head asks for `100 Continue` (HTTP/1.1, Expect: 100-continue).
    bool expects_continue() const;
    /// Answers 100 Continue, then goes on with then (reading the body to inspect, or connecting).
    void do_send_continue(void (downstream_connection::*then)());
    void do_connect();
    void connect_upstream();
    void on_connect(boost::system::error_code ec);
    void on_upstream_ready(clock::time_point now);
    void do_write_upstream();
    void on_write_upstream(boost::system::error_code ec, std::size_t n);

    // response flow
    void do_read_upstream();
    void take_response_buffer();
    bool waits_upstream_without_buffer() const noexcept;
    void do_wait_upstream();
    void on_upstream_readable(boost::system::error_code ec);
    void on_read_upstream(boost::system::error_code ec, std::size_t n);
    void process_response_bytes();
    void on_response_head();
    void do_write_client();
    void add_response_body();
    void on_write_client(boost::system::error_code ec, std::size_t n);
    void finish_exchange();

    // heads
    void build_upstream_head();
    void build_client_head();
    bool response_may_have_body() const noexcept;

    // failures
    bool retry_on_fresh_connection(boost::system::error_code ec);
    void fail_exchange(http::proxy_error e, std::string_view detail);
    /// answer: a complete response to send instead of e's standard one.
    void respond_error(http::proxy_error e, unsigned retry_after_s = 0, std::string answer = {});
    /// Answers with a complete response of turnout's own (a fixed answer, an error), then closes.
    void respond(unsigned status, std::string response);
    void linger_close();
    void close();

    // deadlines
    /// `now`: a reading the caller already took in this step, or a fresh one.
    void set_deadline(wait_kind kind, std::chrono::milliseconds timeout, clock::time_point now = clock::now());
    void clear_deadline() { set_deadline(wait_kind::none, {}, clock::time_point{}); }
    /// The wheel fires at the earliest of the deadline and a drained stream's end.
    void schedule_deadline()
    {
        worker_.deadlines().schedule(*this, std::min({deadline_, close_at_, park_until_}));
    }
    void on_due(clock::time_point now) override;
    void on_deadline(wait_kind kind);

    void end_accounting(bool failed);
    void log_access();

    worker& worker_;
    routing::stage& router_;
    socket_stream client_;
    std::size_t listen_index_;
    std::shared_ptr<tls_server_context> tls_; // of the listener, as when accepted
    std::string client_address_;
    std::shared_ptr<const runtime::snapshot> snapshot_; // the current exchange's (or the last one's)

    // deadlines (on the worker's wheel: this connection is its entry)
    clock::time_point deadline_ = clock::time_point::max();
    clock::time_point close_at_ = clock::time_point::max(); // a drained stream ends then
    clock::time_point park_until_ = clock::time_point::max(); // a parked read gives way then
    wait_kind waiting_for_ = wait_kind::none;

    // reading and writing: operations in progress on the sockets, and what they use
    io_buffer in_;
    http::message_parser request_;
    io_buffer up_in_;
    http::message_parser response_;
    bool client_reading_ = false;
    bool parked_ = false;       // the pending client read is parked (holds a park slot)
    bool park_expired_ = false; // it gave way: wait without a buffer until the next request
    bool client_writing_ = false;
    bool upstream_reading_ = false;
    bool upstream_writing_ = false;
    bool upstream_drained_ = true; // the last read left the backend socket empty
    std::string up_head_;          // scratch kept across exchanges: its capacity is reused
    std::string client_head_;
    std::vector<boost::asio::const_buffer> up_bufs_;
    std::vector<boost::asio::const_buffer> down_bufs_;
    http::chunk_framer up_framer_;
    http::chunk_framer down_framer_;

    exchange exchange_;

    // the connection
    bool keep_alive_ = true; // the client connection survives this exchange
    bool draining_ = false;
    bool retiring_ = false;  // upgrade: the successor takes new connections
    bool closed_ = false;
    bool lingering_ = false; // answered and half-closed; discarding input until the client closes
};

/// Accepts a client socket on worker w: sets it up and starts its connection.
void serve(worker& w, boost::asio::ip::tcp::socket socket, std::size_t listen_index = 0);

} // namespace turnout::net
