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

#include "turnout/http/message_parser.hpp"
#include "turnout/net/io_buffer.hpp"
#include "turnout/net/stream.hpp"
#include "turnout/net/tls_context.hpp"
#include "turnout/net/worker_pool.hpp"
#include "turnout/runtime/snapshot.hpp"
#include "turnout/session/session_id.hpp"
#include "turnout/session/session_table.hpp"
#include "turnout/upstream/connection_pool.hpp"

#include <boost/asio/buffer.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>

#include <chrono>
#include <memory>
#include <string>
#include <vector>

namespace turnout::http {

class downstream_connection final : public net::connection_handle,
                                    public std::enable_shared_from_this<downstream_connection> {
public:
    using tcp = boost::asio::ip::tcp;
    using clock = std::chrono::steady_clock;

    /// listen_index: which [[listen]] accepted it (its TLS context, if any, is in the snapshot).
    downstream_connection(net::worker& w, tcp::socket socket, std::size_t listen_index = 0);
    ~downstream_connection() override;

    void start();

    // net::connection_handle
    void drain() override;
    void abort() override;
    void retire() override;
    bool close_stream_from(const std::vector<const upstream::backend*>& targets, clock::time_point at) override;

private:
    enum class request_phase { idle, head, routing, body, sent };
    enum class response_phase { none, head, body, done };
    enum class wait_kind { none, idle, header, connect, response, body, stream, linger };

    // TLS
    void do_handshake();
    void on_handshake(boost::system::error_code ec);
    void do_upstream_handshake(void (downstream_connection::*on_done)(boost::system::error_code));
    std::shared_ptr<net::tls_client_context> backend_tls() const;

    // request flow
    void do_read_client();
    bool waits_without_buffer() const noexcept;
    void do_wait_client();
    void on_client_readable(boost::system::error_code ec);
    void on_read_client(boost::system::error_code ec, std::size_t n);
    void process_request_bytes();
    void on_request_head();
    void do_send_continue();
    void do_connect();
    void connect_upstream(void (downstream_connection::*on_done)(boost::system::error_code));
    void on_connect(boost::system::error_code ec);
    void tune_upstream_socket();
    void on_upstream_ready(clock::time_point now);
    void do_write_upstream();
    void own_whole_request();
    void on_write_upstream(boost::system::error_code ec, std::size_t n);

    // response flow
    void do_read_upstream();
    void take_response_buffer();
    bool waits_upstream_without_buffer() const noexcept;
    void do_wait_upstream();
    void on_upstream_readable(boost::system::error_code ec);
    void on_read_upstream(boost::system::error_code ec, std::size_t n);
    void process_response_bytes();
    void do_write_client();
    void on_write_client(boost::system::error_code ec, std::size_t n);
    void finish_exchange();

    // sessions
    bool resolve_session();
    void learn_session();
    void watch_stream_for_endpoint();
    void rewrite_stream_endpoint();
    void forget_session();
    void end_session_stream();

    // building heads
    void build_upstream_head();
    void build_client_head();
    void build_interim_head();

    // failures
    bool retry_on_fresh_connection(boost::system::error_code ec);
    void do_replay();
    void on_replay_connect(boost::system::error_code ec);
    void move_accounting_to(std::shared_ptr<upstream::backend> next);
    void fail_exchange(proxy_error e, std::string_view detail);
    void respond_error(proxy_error e);
    void respond_session_not_found();
    void respond(unsigned status, std::string response);
    void linger_close();
    void close();

    // deadlines
    /// `now`: a reading the caller already took in this step, or a fresh one.
    void set_deadline(wait_kind kind, std::chrono::milliseconds timeout, clock::time_point now = clock::now());
    void clear_deadline() { set_deadline(wait_kind::none, {}, clock::time_point{}); }
    void arm_timer();
    void on_timer(boost::system::error_code ec);
    void on_deadline(wait_kind kind);

    // accounting
    void begin_accounting();
    void end_accounting(bool failed);
    void log_access();
    void record_outcome();
    void note_backend_failure();
    void scan_for_jsonrpc_error();
    bool response_may_have_body() const noexcept;

    net::worker& worker_;
    net::socket_stream client_;
    std::size_t listen_index_;
    std::shared_ptr<net::tls_server_context> tls_; // of the listener, as when accepted
    std::string client_address_;
    boost::asio::steady_timer timer_;
    clock::time_point deadline_ = clock::time_point::max();
    clock::time_point close_at_ = clock::time_point::max(); // a drained stream ends then
    clock::time_point timer_expiry_ = clock::time_point::max();
    wait_kind waiting_for_ = wait_kind::none;
    bool timer_armed_ = false;

    // request flow state
    net::io_buffer in_;
    message_parser request_;
    request_phase req_phase_ = request_phase::idle;
    bool client_reading_ = false;
    bool upstream_writing_ = false;
    bool request_head_sent_ = false;
    bool request_chunked_ = false;
    bool expect_continue_ = false;
    bool replayable_ = false; // the whole request went out in the first write
    std::string up_head_;
    char up_chunk_[24];
    std::vector<boost::asio::const_buffer> up_bufs_;

    // response flow state
    net::io_buffer up_in_;
    message_parser response_;
    response_phase resp_phase_ = response_phase::none;
    bool upstream_reading_ = false;
    bool upstream_drained_ = true; // the last read left the backend socket empty
    bool client_writing_ = false;
    bool response_head_sent_ = false;
    bool response_chunked_out_ = false;
    bool interim_pending_ = false;
    bool is_stream_ = false;
    bool scan_jsonrpc_error_ = false;
    std::uint64_t response_bytes_in_ = 0;
    std::string client_head_;
    char down_chunk_[24];
    std::vector<boost::asio::const_buffer> down_bufs_;

    // the session of the exchange
    enum class session_source { none, header, query };
    session_source sid_source_ = session_source::none;
    std::string_view sid_param_;    // query parameter name (legacy transport)
    std::string sid_client_;        // the id as the client sent it (token mode: the token)
    std::string sid_backend_;       // the id toward the backend (token mode: from the token)
    session::session_key sid_key_;  // table mode
    bool sid_known_ = false;        // the table knew it: pinned to its owner
    bool pinned_ = false;           // goes to backend_ whatever weights or health say
    bool stream_counted_ = false;   // an open stream of stream_key_ is counted in the table
    session::session_key stream_key_;
    std::string sid_to_client_;     // token mode: the token replacing Mcp-Session-Id
    std::optional<session::endpoint_scanner> endpoint_scanner_;
    // Token mode, legacy transport: the endpoint event's URL must carry a token instead of the
    // backend's id, so the stream's first bytes are held (at most the scanner's limit) until
    // that event is complete, then released rewritten.
    bool rewrite_endpoint_ = false;
    std::string held_;

    // the exchange
    std::shared_ptr<const runtime::snapshot> snapshot_;
    const runtime::upstream_state* upstream_state_ = nullptr;
    std::size_t pool_index_ = 0;
    std::unique_ptr<upstream::upstream_connection> upstream_;
    std::shared_ptr<upstream::backend> backend_;
    std::vector<const upstream::backend*> tried_;
    bool accounted_ = false;
    bool keep_alive_ = true;     // the client connection survives this exchange
    bool draining_ = false;
    bool retiring_ = false; // upgrade: the successor takes new connections
    bool closed_ = false;
    bool failed_ = false;    // an error answer is going out; the flows stop
    bool lingering_ = false; // answered and half-closed; discarding input until the client closes
    bool logged_ = false;
    bool outcome_recorded_ = false; // status class and latency counted for this exchange
    unsigned status_ = 0;
    std::uint64_t bytes_out_ = 0;
    clock::time_point started_;
    clock::time_point upstream_started_;
};

/// Accepts a client socket on worker w: sets it up and starts its connection.
void serve(net::worker& w, boost::asio::ip::tcp::socket socket, std::size_t listen_index = 0);

} // namespace turnout::http
