#include "turnout/http/downstream_connection.hpp"

#include "turnout/http/error_response.hpp"
#include "turnout/http/head_writer.hpp"
#include "turnout/http/headers.hpp"
#include "turnout/routing/router.hpp"
#include "turnout/upstream/balancer.hpp"

#include <boost/asio/write.hpp>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstdio>

namespace turnout::http {
namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;

constexpr std::size_t max_response_head = 65536;
constexpr auto linger_timeout = 2s;

constexpr std::string_view continue_response = "HTTP/1.1 100 Continue\r\n\r\n";
constexpr std::string_view chunk_end = "\r\n";
constexpr std::string_view last_chunk = "0\r\n\r\n";
constexpr std::string_view session_not_found_body =
    R"({"jsonrpc":"2.0","error":{"code":-32001,"message":"Session not found"},"id":null})";

/// Writes "<hex size>\r\n" into out and returns it as a buffer.
asio::const_buffer chunk_header(char (&out)[24], std::size_t size)
{
    const int n = std::snprintf(out, sizeof out, "%zx\r\n", size);
    return {out, static_cast<std::size_t>(n)};
}

/// Appends every piece after the first (which is a view of owned) to owned, leaving pieces
/// as the one buffer of owned: the message no longer points into a read buffer.
void own_pieces(std::string& owned, std::vector<asio::const_buffer>& pieces)
{
    std::size_t total = 0;
    for (std::size_t i = 1; i < pieces.size(); ++i)
        total += pieces[i].size();
    {
        head_writer out(owned, total);
        for (std::size_t i = 1; i < pieces.size(); ++i)
            out << std::string_view(static_cast<const char*>(pieces[i].data()), pieces[i].size());
    }
    pieces.assign(1, asio::buffer(owned));
}

/// Room for a rebuilt head: its fields as received, their separators, what turnout adds, and a
/// body that is already whole in the read buffer (it is copied after the head, see own_pieces).
std::size_t head_room(const message_head& head, std::size_t added, std::optional<std::uint64_t> content_length,
                      std::size_t buffered)
{
    const std::size_t body = content_length && *content_length <= buffered ? *content_length : 0;
    return head.stored_bytes() + 4 * head.field_count() + added + body;
}

/// Whether a Connection field of head names this field (so it is hop-by-hop too).
bool named_by_connection(const message_head& head, std::string_view name)
{
    for (std::size_t i = 0; i < head.field_count(); ++i) {
        const auto f = head.field(i);
        if (f.known == field_name::connection && has_token(f.value, name))
            return true;
    }
    return false;
}

/// Whether this head has any Connection option besides close/keep-alive (rare; lets the
/// common case skip a second scan per field).
bool has_connection_options(const message_head& head)
{
    bool found = false;
    if (head.count(field_name::connection) == 0)
        return false;
    for (std::size_t i = 0; i < head.field_count(); ++i) {
        const auto f = head.field(i);
        if (f.known == field_name::connection)
            for_each_token(f.value, [&](std::string_view t) {
                found = found || !(iequals(t, "close") || iequals(t, "keep-alive"));
            });
    }
    return found;
}

// The media type of a Content-Type value starts it; parameters (charset=…) follow. media_type
// is lowercase.
bool content_type_is(const message_head& head, std::string_view media_type)
{
    const auto type = head.find(field_name::content_type);
    return type && starts_with_lowercase(*type, media_type);
}

bool is_backend_failure(proxy_error e)
{
    return e == proxy_error::bad_gateway || e == proxy_error::gateway_timeout;
}

} // namespace

void serve(net::worker& w, asio::ip::tcp::socket socket, std::size_t listen_index)
{
    auto c = std::make_shared<downstream_connection>(w, std::move(socket), listen_index);
    c->start();
    if (w.draining())
        c->retire(); // accepted as the listeners closed: one answer, then Connection: close
}

downstream_connection::downstream_connection(net::worker& w, tcp::socket socket, std::size_t listen_index)
    : worker_(w),
      client_(std::move(socket)),
      listen_index_(listen_index),
      timer_(w.io()),
      request_(message_parser::kind::request, {}),
      response_(message_parser::kind::response, {max_response_head, max_response_head})
{}

downstream_connection::~downstream_connection()
{
    // Every buffer goes back where it came from, so the held counts in /metrics stay exact.
    worker_.client_buffers().reclaim_all(in_);
    worker_.response_buffers().reclaim_all(up_in_);
    worker_.remove(this);
}

void downstream_connection::start()
{
    worker_.add(this);
    boost::system::error_code ec;
    const auto remote = client_.next_layer().remote_endpoint(ec);
    client_address_ = ec ? "-" : remote.address().to_string();
    client_.next_layer().set_option(tcp::no_delay(true), ec);
    client_.next_layer().non_blocking(true, ec); // do_wait_client's reads must not block
    snapshot_ = worker_.snapshot();
    // A fresh connection must start its request (or finish its TLS handshake) within
    // header_timeout; silence means close.
    set_deadline(wait_kind::idle, snapshot_->proxy().header_timeout);
    if (listen_index_ < snapshot_->listen_tls.size() && snapshot_->listen_tls[listen_index_])
        return do_handshake();
    do_read_client();
}

// ---- TLS ------------------------------------------------------------------------------------

void downstream_connection::do_handshake()
{
    tls_ = snapshot_->listen_tls[listen_index_];
    client_.enable_tls(tls_->context())
        .async_handshake(asio::ssl::stream_base::server,
                         [self = shared_from_this()](boost::system::error_code ec) { self->on_handshake(ec); });
}

void downstream_connection::on_handshake(boost::system::error_code ec)
{
    if (closed_)
        return;
    if (ec) {
        // Scanners, plain HTTP on a TLS port, old protocol versions: routine, not an incident.
        spdlog::debug("TLS handshake with {} failed: {}", client_address_, ec.message());
        return close();
    }
    do_read_client();
}

std::shared_ptr<net::tls_client_context> downstream_connection::backend_tls() const
{
    if (!upstream_state_ || pool_index_ >= upstream_state_->pools.size())
        return nullptr; // a session owner listed in another upstream: plain, as before TLS
    return upstream_state_->pools[pool_index_].tls;
}

void downstream_connection::do_upstream_handshake(void (downstream_connection::*on_done)(boost::system::error_code))
{
    const auto tls = backend_tls();
    auto& stream = upstream_->stream().enable_tls(tls->context());
    if (!tls->prepare(stream.native_handle(), backend_->endpoint()))
        return ((*this).*on_done)(make_error_code(asio::error::invalid_argument));
    stream.async_handshake(asio::ssl::stream_base::client,
                           [self = shared_from_this(), on_done](boost::system::error_code ec) {
                               ((*self).*on_done)(ec);
                           });
}

void downstream_connection::drain()
{
    draining_ = true;
    keep_alive_ = false;
    if (req_phase_ == request_phase::idle && !client_writing_)
        close();
}

void downstream_connection::abort() { close(); }

void downstream_connection::retire()
{
    // Only what is still to be said changes: a response head already sent promised
    // keep-alive, so the connection stays until its next exchange (answered with
    // Connection: close), its client closes it, or it idles out.
    retiring_ = true;
}

bool downstream_connection::close_stream_from(const std::vector<const upstream::backend*>& targets,
                                              clock::time_point at)
{
    if (closed_ || !is_stream_ || !backend_ ||
        std::find(targets.begin(), targets.end(), backend_.get()) == targets.end())
        return false;
    close_at_ = std::min(close_at_, at);
    keep_alive_ = false;
    if (!timer_armed_ || close_at_ < timer_expiry_) {
        const auto deadline = deadline_;
        deadline_ = std::min(deadline_, close_at_);
        arm_timer();
        deadline_ = deadline;
    }
    return true;
}

// ---- request flow ---------------------------------------------------------------------------

void downstream_connection::do_read_client()
{
    if (client_reading_ || closed_)
        return;
    if (waits_without_buffer())
        return do_wait_client();
    if (in_.capacity() == 0)
        worker_.client_buffers().lend_small(in_);
    // Forgetting consumed bytes is safe only when no body view into them is still being
    // written, and never while a finished request may have to be replayed.
    if (in_.space() == 0 && (lingering_ || req_phase_ == request_phase::idle ||
                             req_phase_ == request_phase::head ||
                             (req_phase_ == request_phase::body && !upstream_writing_)))
        in_.compact();
    if (lingering_ && in_.space() == 0)
        in_.consume(in_.size()), in_.compact();
    if (in_.space() == 0)
        return; // full: backpressure until the exchange ends
    client_reading_ = true;
    client_.async_read_some(asio::buffer(in_.write_data(), in_.space()),
                            [self = shared_from_this()](boost::system::error_code ec, std::size_t n) {
                                self->on_read_client(ec, n);
                            });
}

// Between requests, and under a stream whose request is complete, nothing may come for long:
// wait for readability without a buffer (the reactor's wait, not a read), so only connections
// actually reading hold one. TLS keeps its read: decrypted bytes may wait inside the engine.
bool downstream_connection::waits_without_buffer() const noexcept
{
    return !client_.is_tls() && !lingering_ && in_.empty() &&
           (req_phase_ == request_phase::idle || req_phase_ == request_phase::sent);
}

void downstream_connection::do_wait_client()
{
    // Under load the next request is usually there already: try it first, as Asio's own
    // speculative read would. The completion is posted, never run inline, because callers
    // go on with the connection's state after do_read_client() returns.
    if (in_.capacity() == 0)
        worker_.client_buffers().lend_small(in_);
    boost::system::error_code ec;
    const auto n = client_.next_layer().read_some(asio::buffer(in_.write_data(), in_.space()), ec);
    client_reading_ = true;
    if (ec != asio::error::would_block && ec != asio::error::try_again) {
        asio::post(worker_.io(), [self = shared_from_this(), ec, n] { self->on_read_client(ec, n); });
        return;
    }
    worker_.client_buffers().reclaim(in_);
    client_.next_layer().async_wait(tcp::socket::wait_read, [self = shared_from_this()](boost::system::error_code wait_ec) {
        self->on_client_readable(wait_ec);
    });
}

void downstream_connection::on_client_readable(boost::system::error_code ec)
{
    client_reading_ = false;
    if (closed_)
        return;
    if (ec)
        return on_read_client(ec, 0);
    do_read_client();
}

void downstream_connection::on_read_client(boost::system::error_code ec, std::size_t n)
{
    client_reading_ = false;
    if (closed_)
        return;
    if (lingering_) {
        // Discarding what the client still sends after an error answer, so that closing
        // does not reset the connection before the client has read that answer.
        if (ec)
            return close();
        in_.commit(n);
        in_.consume(in_.size());
        return do_read_client();
    }
    if (ec) {
        // Between requests this is an ordinary close; otherwise the client went away.
        if (req_phase_ != request_phase::idle || !in_.empty())
            status_ = status_ ? status_ : 499;
        return close();
    }
    in_.commit(n);
    if (failed_)
        return;
    if (req_phase_ == request_phase::sent) {
        // Waiting for the response: hold pipelined bytes, keep watching for a disconnect.
        return do_read_client();
    }
    process_request_bytes();
}

void downstream_connection::process_request_bytes()
{
    if (req_phase_ == request_phase::idle) {
        if (in_.empty())
            return do_read_client();
        req_phase_ = request_phase::head;
        snapshot_ = worker_.snapshot();
        const auto& proxy = snapshot_->proxy();
        request_.set_limits({proxy.max_header_bytes, proxy.max_uri_bytes});
        started_ = clock::now();
        set_deadline(wait_kind::header, proxy.header_timeout, started_);
    }

    if (req_phase_ == request_phase::head) {
        in_.consume(request_.parse(in_.data(), in_.size()));
        if (request_.current() == message_parser::state::failed)
            return respond_error(request_.error());
        if (!request_.head_complete())
            return do_read_client();
        return on_request_head();
    }

    if (req_phase_ == request_phase::body) {
        in_.consume(request_.parse(in_.data(), in_.size()));
        if (request_.current() == message_parser::state::failed)
            return fail_exchange(request_.error(), request_.error_reason());
        if (request_.body_total() > snapshot_->proxy().max_body_bytes)
            return fail_exchange(proxy_error::body_too_large, "request body over max_body_bytes");
        if (!request_head_sent_ || request_.body_size() > 0 ||
            request_.current() == message_parser::state::complete)
            return do_write_upstream();
        return do_read_client();
    }
}

void downstream_connection::on_request_head()
{
    const auto& head = request_.head();
    const auto& proxy = snapshot_->proxy();

    if (head.version_major() != 1 || head.version_minor() > 1)
        return respond_error(proxy_error::bad_request); // HTTP/0.9, 2+, or 1.2+ on this port
    if (request_.method() == HTTP_CONNECT)
        return respond_error(proxy_error::method_not_allowed);
    const auto host = head.find(field_name::host);
    if (!host && head.version_minor() >= 1)
        return respond_error(proxy_error::bad_request);
    if (head.count(field_name::host) > 1)
        return respond_error(proxy_error::bad_request); // RFC 9112 §3.2: exactly one Host
    if (request_.content_length() && *request_.content_length() > proxy.max_body_bytes)
        return respond_error(proxy_error::body_too_large);

    keep_alive_ = request_.keep_alive() && !draining_ && !retiring_;
    const auto route = snapshot_->router.match(host.value_or(""), routing::target_path(head.target()));
    if (!route)
        return respond_error(proxy_error::no_route);
    upstream_state_ = &snapshot_->upstreams[*route];
    request_chunked_ = request_.chunked();
    if (!resolve_session())
        return;
    build_upstream_head();

    req_phase_ = request_phase::routing;
    tried_.clear();
    const bool has_body = request_chunked_ || request_.content_length().value_or(0) > 0;
    const auto expect = head.find(field_name::expect);
    expect_continue_ = has_body && expect && head.version_minor() >= 1 && iequals(*expect, "100-continue");
    if (expect_continue_)
        return do_send_continue();
    do_connect();
}

void downstream_connection::do_send_continue()
{
    // turnout answers the expectation itself (as nginx does): the client's body is wanted as
    // soon as the limits above allowed it, and the backend never sees Expect.
    client_writing_ = true;
    client_.async_write(asio::buffer(continue_response),
                      [self = shared_from_this()](boost::system::error_code ec, std::size_t) {
                          self->client_writing_ = false;
                          if (self->closed_)
                              return;
                          if (ec)
                              return self->close();
                          self->do_connect();
                      });
}

void downstream_connection::do_connect()
{
    if (pinned_) {
        // A session's state lives in one process: no other backend can take its requests.
        if (!tried_.empty())
            return respond_session_not_found();
    } else {
        auto choice = worker_.balancer().choose(*upstream_state_, tried_);
        if (!choice) {
            // Nothing was available at all: 503. Everything available refused: 502.
            return respond_error(tried_.empty() ? proxy_error::no_backend : proxy_error::bad_gateway);
        }
        pool_index_ = choice->pool;
        backend_ = std::move(choice->target);
    }
    tried_.push_back(backend_.get());

    const auto now = clock::now();
    if (auto idle = worker_.upstream_pool().take(*backend_, backend_tls().get(), now)) {
        upstream_ = std::move(idle);
        return on_upstream_ready(now);
    }
    connect_upstream(&downstream_connection::on_connect);
}

void downstream_connection::connect_upstream(void (downstream_connection::*on_done)(boost::system::error_code))
{
    auto tls = backend_tls();
    const bool use_tls = tls != nullptr;
    upstream_ = std::make_unique<upstream::upstream_connection>(worker_.io(), backend_, std::move(tls));
    // The deadline covers the TLS handshake too: a backend that accepts but never answers it
    // is as unavailable as one that never accepts.
    set_deadline(wait_kind::connect, snapshot_->proxy().connect_timeout);
    upstream_->socket().async_connect(backend_->endpoint(),
                                      [self = shared_from_this(), on_done, use_tls](boost::system::error_code ec) {
                                          if (ec || !use_tls || self->closed_ || !self->upstream_)
                                              return ((*self).*on_done)(ec);
                                          self->do_upstream_handshake(on_done);
                                      });
}

void downstream_connection::on_connect(boost::system::error_code ec)
{
    if (closed_ || failed_)
        return;
    if (ec) {
        // Refused or timed out before a byte was sent: safe to try another backend.
        note_backend_failure();
        spdlog::warn("connect to backend {} failed: {}", backend_->address(),
                     ec == asio::error::operation_aborted ? "timed out" : ec.message());
        upstream_.reset();
        if (pinned_ && ec != asio::error::connection_refused)
            return respond_error(proxy_error::bad_gateway); // there, but not answering: not gone
        return do_connect();
    }
    tune_upstream_socket();
    on_upstream_ready(clock::now());
}

void downstream_connection::tune_upstream_socket()
{
    boost::system::error_code ignored;
    upstream_->socket().set_option(tcp::no_delay(true), ignored);
    upstream_->socket().non_blocking(true, ignored); // on_upstream_readable's read must not block
}

void downstream_connection::on_upstream_ready(clock::time_point now)
{
    begin_accounting();
    upstream_started_ = now;
    req_phase_ = request_phase::body;
    request_head_sent_ = false;
    set_deadline(wait_kind::response, snapshot_->proxy().response_timeout, now);
    process_request_bytes();
}

void downstream_connection::do_write_upstream()
{
    up_bufs_.clear();
    if (!request_head_sent_)
        up_bufs_.emplace_back(asio::buffer(up_head_));
    const bool complete = request_.current() == message_parser::state::complete;
    replayable_ = !request_head_sent_ && complete;
    if (request_.body_size() > 0) {
        if (request_chunked_)
            up_bufs_.push_back(chunk_header(up_chunk_, request_.body_size()));
        for (const auto piece : request_.body())
            up_bufs_.emplace_back(piece.data(), piece.size());
        if (request_chunked_)
            up_bufs_.emplace_back(asio::buffer(chunk_end));
    }
    if (complete && request_chunked_)
        up_bufs_.emplace_back(asio::buffer(last_chunk));
    if (replayable_)
        own_whole_request();

    upstream_writing_ = true;
    upstream_->stream().async_write(up_bufs_,
                      [self = shared_from_this()](boost::system::error_code ec, std::size_t n) {
                          self->on_write_upstream(ec, n);
                      });
}

// The request is whole in hand (head and a body of at most one read buffer): it goes out as
// one owned string, so the read buffer goes back to the cache before the write (unless a
// pipelined request waits in it), and a replay on a fresh connection has everything it
// needs. Copying a few hundred bytes is cheaper than holding 2 KiB for an exchange.
void downstream_connection::own_whole_request()
{
    own_pieces(up_head_, up_bufs_);
    worker_.client_buffers().reclaim(in_);
}

void downstream_connection::on_write_upstream(boost::system::error_code ec, std::size_t)
{
    upstream_writing_ = false;
    if (closed_ || failed_)
        return;
    if (ec) {
        if (retry_on_fresh_connection(ec))
            return;
        note_backend_failure();
        return fail_exchange(proxy_error::bad_gateway, "write to backend failed: " + ec.message());
    }
    request_head_sent_ = true;
    request_.clear_body();
    if (resp_phase_ == response_phase::none) {
        resp_phase_ = response_phase::head;
        upstream_drained_ = true; // the answer is not there yet: wait before reading
        if (request_.method() == HTTP_HEAD)
            response_.expect_no_body();
        do_read_upstream();
    }
    if (request_.current() == message_parser::state::complete) {
        req_phase_ = request_phase::sent;
        // Nothing the backend needs is in the read buffer any more (no view was written from
        // it but by this completed write; a replay sends the owned copy).
        worker_.client_buffers().reclaim(in_);
        if (is_stream_)
            do_read_client(); // a stream already runs: notice a client that leaves
        return;
    }
    process_request_bytes();
}

// ---- response flow --------------------------------------------------------------------------

void downstream_connection::do_read_upstream()
{
    if (upstream_reading_ || closed_ || !upstream_)
        return;
    if (waits_upstream_without_buffer())
        return do_wait_upstream();
    up_in_.compact(); // the previous client write finished: no view into up_in_ is live
    take_response_buffer();
    upstream_reading_ = true;
    upstream_->stream().async_read_some(
        asio::buffer(up_in_.write_data(), up_in_.space()),
        [self = shared_from_this()](boost::system::error_code ec, std::size_t n) { self->on_read_upstream(ec, n); });
}

// An answer starts in a small buffer; one that filled it continues in a large one.
void downstream_connection::take_response_buffer()
{
    auto& cache = worker_.response_buffers();
    if (up_in_.capacity() == cache.small_size() && !upstream_drained_ && cache.reclaim(up_in_))
        return cache.lend_large(up_in_);
    if (up_in_.capacity() == 0)
        cache.lend_small(up_in_);
}

// A silent stream may wait for minutes: wait for readability without a buffer, as the
// client side does, after a read that drained the socket (a read that filled the buffer
// leaves more to read at once, which Asio's speculative read picks up). An ordinary answer
// keeps its read pending with the buffer: Asio re-arms a bare readiness wait with an
// epoll_ctl, a syscall per exchange (4.5% more CPU per request in bench/run.sh's load),
// while a pending read costs none. TLS keeps its read: records may wait inside the engine.
bool downstream_connection::waits_upstream_without_buffer() const noexcept
{
    return is_stream_ && upstream_drained_ && up_in_.empty() && !upstream_->stream().is_tls();
}

void downstream_connection::do_wait_upstream()
{
    worker_.response_buffers().reclaim(up_in_);
    upstream_reading_ = true;
    upstream_->socket().async_wait(tcp::socket::wait_read, [self = shared_from_this()](boost::system::error_code ec) {
        self->on_upstream_readable(ec);
    });
}

void downstream_connection::on_upstream_readable(boost::system::error_code ec)
{
    upstream_reading_ = false;
    if (closed_ || failed_)
        return;
    if (ec)
        return on_read_upstream(ec, 0);
    worker_.response_buffers().lend_small(up_in_);
    const auto n = upstream_->socket().read_some(asio::buffer(up_in_.write_data(), up_in_.space()), ec);
    if (ec == asio::error::would_block || ec == asio::error::try_again)
        return do_wait_upstream(); // readiness without bytes (spurious): wait again
    on_read_upstream(ec, n);
}

void downstream_connection::on_read_upstream(boost::system::error_code ec, std::size_t n)
{
    upstream_reading_ = false;
    if (closed_ || failed_)
        return;
    if (ec) {
        if (ec == asio::error::eof && resp_phase_ == response_phase::body && response_.finish_at_eof()) {
            // A body delimited by the end of the connection has ended.
            resp_phase_ = response_phase::done;
            return do_write_client();
        }
        if (response_bytes_in_ == 0 && retry_on_fresh_connection(ec))
            return;
        note_backend_failure();
        return fail_exchange(proxy_error::bad_gateway,
                             ec == asio::error::eof ? "backend closed the connection" : ec.message());
    }
    up_in_.commit(n);
    upstream_drained_ = up_in_.space() > 0; // a short read emptied the socket
    response_bytes_in_ += n;
    if (resp_phase_ == response_phase::body)
        set_deadline(waiting_for_, is_stream_ ? snapshot_->proxy().stream_idle_timeout
                                              : snapshot_->proxy().idle_timeout);
    process_response_bytes();
}

void downstream_connection::process_response_bytes()
{
    for (;;) {
        up_in_.consume(response_.parse(up_in_.data(), up_in_.size()));
        if (response_.current() == message_parser::state::failed) {
            note_backend_failure();
            return fail_exchange(proxy_error::bad_gateway,
                                 std::string("invalid response from backend: ").append(response_.error_reason()));
        }
        if (resp_phase_ != response_phase::head || !response_.head_complete())
            break;

        const auto status = response_.head().status();
        if (status < 200) {
            if (status == 101) {
                note_backend_failure();
                return fail_exchange(proxy_error::bad_gateway, "backend switched protocols");
            }
            build_interim_head();
            interim_pending_ = true;
            return do_write_client();
        }
        resp_phase_ = response_phase::body;
        status_ = status;
        learn_session();
        build_client_head();
        if (is_stream_) {
            set_deadline(wait_kind::stream, snapshot_->proxy().stream_idle_timeout);
            // A stream may stay silent for long: watch the client so that one that leaves
            // ends the stream (and its accounting) at once, not at the next event. Short
            // answers skip this read, which would cost a syscall per request.
            if (req_phase_ == request_phase::sent)
                do_read_client();
        } else {
            set_deadline(wait_kind::body, snapshot_->proxy().idle_timeout);
        }
        // loop: parse the body bytes that came with the head
    }

    if (resp_phase_ == response_phase::head)
        return do_read_upstream();
    if (response_.current() == message_parser::state::complete)
        resp_phase_ = response_phase::done;
    if (!response_head_sent_ || response_.body_size() > 0 || resp_phase_ == response_phase::done)
        return do_write_client();
    do_read_upstream();
}

void downstream_connection::do_write_client()
{
    down_bufs_.clear();
    if (interim_pending_) {
        down_bufs_.emplace_back(asio::buffer(client_head_));
    } else {
        if (!response_head_sent_)
            down_bufs_.emplace_back(asio::buffer(client_head_));
        if (rewrite_endpoint_) {
            rewrite_stream_endpoint();
        } else if (response_.body_size() > 0) {
            if (endpoint_scanner_)
                watch_stream_for_endpoint();
            if (scan_jsonrpc_error_)
                scan_for_jsonrpc_error();
            if (response_chunked_out_)
                down_bufs_.push_back(chunk_header(down_chunk_, response_.body_size()));
            for (const auto piece : response_.body())
                down_bufs_.emplace_back(piece.data(), piece.size());
            if (response_chunked_out_)
                down_bufs_.emplace_back(asio::buffer(chunk_end));
        }
        if (resp_phase_ == response_phase::done && response_chunked_out_)
            down_bufs_.emplace_back(asio::buffer(last_chunk));
        // A whole answer in one piece (the usual JSON-RPC result): as for requests, send an
        // owned copy and give the read buffer back before the write.
        if (!response_head_sent_ && resp_phase_ == response_phase::done && !rewrite_endpoint_) {
            own_pieces(client_head_, down_bufs_);
            worker_.response_buffers().reclaim(up_in_);
        }
    }
    if (resp_phase_ == response_phase::done && !interim_pending_) {
        // Counted before the last bytes leave, not when the write completes: a client reading
        // status or /metrics right after its answer must find this exchange in them.
        end_accounting(false);
        record_outcome();
    }
    if (down_bufs_.empty())
        return on_write_client({}, 0);

    client_writing_ = true;
    client_.async_write(down_bufs_,
                      [self = shared_from_this()](boost::system::error_code ec, std::size_t n) {
                          self->on_write_client(ec, n);
                      });
}

void downstream_connection::on_write_client(boost::system::error_code ec, std::size_t n)
{
    client_writing_ = false;
    if (closed_)
        return;
    bytes_out_ += n;
    if (ec)
        return close(); // the client went away
    if (failed_)
        return;
    if (interim_pending_) {
        interim_pending_ = false;
        response_.next_message();
        if (request_.method() == HTTP_HEAD)
            response_.expect_no_body();
        return process_response_bytes();
    }
    response_head_sent_ = true;
    response_.clear_body();
    if (resp_phase_ == response_phase::done)
        return finish_exchange();
    if (!up_in_.empty())
        return process_response_bytes();
    do_read_upstream();
}

void downstream_connection::finish_exchange()
{
    const bool request_done = req_phase_ == request_phase::sent;
    const auto now = clock::now();
    end_accounting(false);
    log_access();

    // The backend connection is reusable only if both messages ended cleanly on it.
    if (upstream_) {
        if (request_done && response_.keep_alive() && !response_.needs_eof() && up_in_.empty() &&
            !upstream_reading_ && !upstream_writing_)
            worker_.upstream_pool().put(std::move(upstream_), now);
        upstream_.reset();
    }
    if (!request_done)
        keep_alive_ = false; // the rest of the request is still on its way: no resync possible
    if (!keep_alive_ || draining_)
        return linger_close();

    req_phase_ = request_phase::idle;
    resp_phase_ = response_phase::none;
    worker_.response_buffers().reclaim(up_in_);
    request_.next_message();
    response_.reset();
    request_head_sent_ = response_head_sent_ = false;
    response_chunked_out_ = interim_pending_ = is_stream_ = replayable_ = false;
    response_bytes_in_ = bytes_out_ = 0;
    status_ = 0;
    backend_.reset();
    upstream_state_ = nullptr;
    logged_ = outcome_recorded_ = false;
    sid_source_ = session_source::none;
    sid_known_ = pinned_ = false;
    sid_client_.clear();
    sid_backend_.clear();
    sid_to_client_.clear();
    endpoint_scanner_.reset();
    rewrite_endpoint_ = false;
    held_.clear();
    set_deadline(wait_kind::idle, snapshot_->proxy().idle_timeout, now);
    if (!in_.empty())
        return process_request_bytes(); // a pipelined request is already here
    do_read_client();
}

// ---- heads ----------------------------------------------------------------------------------

void downstream_connection::build_upstream_head()
{
    const auto& head = request_.head();
    const bool connection_options = has_connection_options(head);
    const bool restore_id = sid_backend_ != sid_client_; // token mode: the backend gets its own id

    // Added: request line and end, X-Forwarded-*, Transfer-Encoding, a restored session id.
    const std::size_t added = 160 + client_address_.size() + 2 * head.count(field_name::x_forwarded_for) +
                              (restore_id ? head.target().size() + 2 * sid_backend_.size() : 0);
    up_head_.clear();
    head_writer out(up_head_, head_room(head, added, request_.content_length(), in_.size()));
    out << head.method() << ' ';
    if (restore_id && sid_source_ == session_source::query)
        out << session::replace_query_parameter(head.target(), sid_param_, sid_backend_);
    else
        out << head.target();
    out << " HTTP/1.1\r\n";
    for (std::size_t i = 0; i < head.field_count(); ++i) {
        const auto f = head.field(i);
        if (is_hop_by_hop(f.known) || f.known == field_name::expect || is_forwarded(f.known) ||
            (connection_options && named_by_connection(head, f.name)))
            continue; // turnout frames the hop and states the forwarded fields itself
        if (restore_id && sid_source_ == session_source::header && f.known == field_name::mcp_session_id)
            out.field(f.name, sid_backend_);
        else
            out.field(f.name, f.value);
    }
    // X-Forwarded-For: the addresses the client's request already listed, then the client's.
    out << "X-Forwarded-For: ";
    if (head.count(field_name::x_forwarded_for) != 0) {
        for (std::size_t i = 0; i < head.field_count(); ++i) {
            const auto f = head.field(i);
            if (f.known == field_name::x_forwarded_for && !f.value.empty())
                out << f.value << ", ";
        }
    }
    out << client_address_ << "\r\n";
    out.field("X-Forwarded-Proto", tls_ ? "https" : "http");
    if (const auto host = head.find(field_name::host); host && !host->empty())
        out.field("X-Forwarded-Host", *host);
    if (request_chunked_)
        out << "Transfer-Encoding: chunked\r\n";
    out << "\r\n";
}

namespace {

// The client's status line: always HTTP/1.1 (turnout speaks it to every client), the backend's
// status and reason, or the standard reason when the backend sent none.
void start_status_line(head_writer& out, const message_head& head)
{
    out << "HTTP/1.1 " << head.status() << ' ';
    out << (head.reason().empty() ? reason_phrase(head.status()) : head.reason()) << "\r\n";
}

} // namespace

void downstream_connection::build_interim_head()
{
    const auto& head = response_.head();
    client_head_.clear();
    head_writer out(client_head_);
    start_status_line(out, head);
    for (std::size_t i = 0; i < head.field_count(); ++i) {
        const auto f = head.field(i);
        if (!is_hop_by_hop(f.known))
            out.field(f.name, f.value);
    }
    out << "\r\n";
}

bool downstream_connection::response_may_have_body() const noexcept
{
    const auto status = response_.head().status();
    return request_.method() != HTTP_HEAD && status != 204 && status != 304 && status >= 200;
}

void downstream_connection::build_client_head()
{
    const auto& head = response_.head();
    const bool connection_options = has_connection_options(head);
    const bool client_is_http10 = request_.head().version_minor() == 0;

    // Added: status line and end, Transfer-Encoding, Connection, a session token.
    const std::size_t added = 96 + 2 * sid_to_client_.size();
    client_head_.clear();
    head_writer out(client_head_, head_room(head, added, response_.content_length(), up_in_.size()));
    start_status_line(out, head);
    for (std::size_t i = 0; i < head.field_count(); ++i) {
        const auto f = head.field(i);
        if (is_hop_by_hop(f.known) || (connection_options && named_by_connection(head, f.name)))
            continue;
        if (!sid_to_client_.empty() && f.known == field_name::mcp_session_id)
            out.field(f.name, sid_to_client_);
        else if (!(rewrite_endpoint_ && f.known == field_name::content_length))
            out.field(f.name, f.value);
    }

    response_chunked_out_ = false;
    if (response_may_have_body() && (!response_.content_length() || rewrite_endpoint_)) {
        if (client_is_http10)
            keep_alive_ = false; // HTTP/1.0 has no chunked: the body ends with the connection
        else {
            out << "Transfer-Encoding: chunked\r\n";
            response_chunked_out_ = true;
        }
    }
    if (draining_ || retiring_ || req_phase_ != request_phase::sent)
        keep_alive_ = false;
    if (!keep_alive_)
        out << "Connection: close\r\n";
    else if (client_is_http10)
        out << "Connection: keep-alive\r\n";
    out << "\r\n";
}

// ---- failures -------------------------------------------------------------------------------

bool downstream_connection::retry_on_fresh_connection(boost::system::error_code ec)
{
    // A reused keep-alive connection that the backend closed just as the request went out:
    // the request is still whole in memory (it went out in one write), so it is sent again
    // on a new connection — what a client would do, minus the error.
    const bool stale = ec == asio::error::eof || ec == asio::error::connection_reset ||
                       ec == asio::error::broken_pipe;
    if (!stale || !upstream_ || !upstream_->reused() || !replayable_ || response_bytes_in_ > 0)
        return false;
    do_replay();
    return true;
}

void downstream_connection::do_replay()
{
    resp_phase_ = response_phase::none;
    response_.reset();
    connect_upstream(&downstream_connection::on_replay_connect);
}

void downstream_connection::on_replay_connect(boost::system::error_code ec)
{
    if (closed_ || failed_)
        return;
    if (ec) {
        note_backend_failure();
        const bool gone = ec == asio::error::connection_refused;
        // No process there any more: for a session, its state went with it.
        if (pinned_)
            return gone ? respond_session_not_found()
                        : fail_exchange(proxy_error::bad_gateway, "reconnect to backend failed");
        // A new session: the request never reached a live process, so another backend may
        // take it, exactly as if the first connect had been refused.
        auto choice = worker_.balancer().choose(*upstream_state_, tried_);
        if (!choice)
            return fail_exchange(proxy_error::bad_gateway, "reconnect to backend failed");
        move_accounting_to(std::move(choice->target));
        pool_index_ = choice->pool;
        tried_.push_back(backend_.get());
        return do_replay();
    }
    tune_upstream_socket();
    set_deadline(wait_kind::response, snapshot_->proxy().response_timeout);
    request_head_sent_ = false; // the saved buffers hold the head
    upstream_writing_ = true;
    upstream_->stream().async_write(up_bufs_,
                      [self = shared_from_this()](boost::system::error_code write_ec, std::size_t n) {
                          self->on_write_upstream(write_ec, n);
                      });
}

void downstream_connection::move_accounting_to(std::shared_ptr<upstream::backend> next)
{
    if (accounted_) {
        backend_->counters().in_flight.fetch_sub(1, std::memory_order_relaxed);
        next->counters().in_flight.fetch_add(1, std::memory_order_relaxed);
        next->counters().requests_total.fetch_add(1, std::memory_order_relaxed);
    }
    backend_ = std::move(next);
}

void downstream_connection::fail_exchange(proxy_error e, std::string_view detail)
{
    if (failed_ || closed_)
        return;
    if (is_backend_failure(e) && backend_)
        spdlog::warn("{} {} via backend {}: {}", request_.head().method(), request_.head().target(),
                     backend_->address(), detail);
    if (response_head_sent_ || client_writing_) {
        // Part of the response is out: cutting the connection is the only honest signal.
        status_ = status_ ? status_ : status_of(e);
        return close();
    }
    respond_error(e);
}

void downstream_connection::respond_error(proxy_error e)
{
    respond(status_of(e), make_error_response(e, false)); // the failure was counted where it happened
}

void downstream_connection::respond_session_not_found()
{
    // What an MCP server answers for a session it doesn't have: SDK clients re-initialize.
    forget_session();
    respond(404, make_json_response(404, session_not_found_body, false));
}

void downstream_connection::respond(unsigned status, std::string response)
{
    failed_ = true;
    status_ = status;
    keep_alive_ = false;
    upstream_.reset();
    end_accounting(false);
    record_outcome(); // before the answer leaves, as in do_write_client
    clear_deadline();
    client_head_ = std::move(response);
    client_writing_ = true;
    client_.async_write(asio::buffer(client_head_),
                      [self = shared_from_this()](boost::system::error_code ec, std::size_t n) {
                          self->client_writing_ = false;
                          self->bytes_out_ += n;
                          self->log_access();
                          if (ec)
                              return self->close();
                          self->linger_close();
                      });
}

void downstream_connection::linger_close()
{
    if (closed_)
        return;
    lingering_ = true;
    set_deadline(wait_kind::linger, linger_timeout);
    if (client_.is_tls()) {
        // close_notify, then the client's (or the linger deadline: a peer that never answers
        // close_notify must not hold the connection).
        client_.tls().async_shutdown([self = shared_from_this()](boost::system::error_code) { self->close(); });
        return;
    }
    boost::system::error_code ignored;
    client_.next_layer().shutdown(tcp::socket::shutdown_send, ignored);
    do_read_client();
}

void downstream_connection::close()
{
    if (closed_)
        return;
    if (req_phase_ != request_phase::idle && !status_)
        status_ = 499; // the client closed before an answer
    end_accounting(status_ >= 500 && status_ != 499);
    if (req_phase_ != request_phase::idle)
        log_access();
    closed_ = true;
    boost::system::error_code ignored;
    timer_.cancel();
    client_.next_layer().close(ignored);
    upstream_.reset();
    worker_.remove(this);
}

// ---- deadlines ------------------------------------------------------------------------------

void downstream_connection::set_deadline(wait_kind kind, std::chrono::milliseconds timeout, clock::time_point now)
{
    waiting_for_ = kind;
    if (kind == wait_kind::none || timeout.count() == 0) {
        deadline_ = clock::time_point::max();
        return;
    }
    deadline_ = now + timeout;
    // Lazy re-arming: a later deadline is noticed when the timer fires; only an earlier one
    // needs the timer moved. Most requests move no timer at all.
    if (!timer_armed_ || deadline_ < timer_expiry_)
        arm_timer();
}

void downstream_connection::arm_timer()
{
    timer_armed_ = true;
    timer_expiry_ = deadline_;
    timer_.expires_at(deadline_);
    timer_.async_wait([self = shared_from_this()](boost::system::error_code ec) { self->on_timer(ec); });
}

void downstream_connection::on_timer(boost::system::error_code ec)
{
    if (closed_ || ec == asio::error::operation_aborted)
        return;
    timer_armed_ = false;
    const auto now = clock::now();
    if (now >= close_at_) {
        status_ = status_ ? status_ : 200;
        return close(); // a drained pool's stream: its grace is over
    }
    if (deadline_ == clock::time_point::max() && close_at_ == clock::time_point::max())
        return;
    if (now < deadline_ && now < close_at_) {
        const auto deadline = deadline_;
        deadline_ = std::min(deadline_, close_at_);
        arm_timer();
        deadline_ = deadline;
        return;
    }
    on_deadline(waiting_for_);
}

void downstream_connection::on_deadline(wait_kind kind)
{
    deadline_ = clock::time_point::max();
    switch (kind) {
    case wait_kind::none:
        return;
    case wait_kind::idle:
    case wait_kind::linger:
        return close();
    case wait_kind::header:
        if (req_phase_ == request_phase::head && !client_writing_)
            return respond_error(proxy_error::header_timeout);
        return close();
    case wait_kind::connect:
        // Aborting the connect makes on_connect try the next backend.
        if (upstream_) {
            boost::system::error_code ignored;
            upstream_->socket().close(ignored);
        }
        return;
    case wait_kind::response:
    case wait_kind::body:
        if (backend_)
            note_backend_failure();
        return fail_exchange(proxy_error::gateway_timeout, "backend did not answer in time");
    case wait_kind::stream:
        return fail_exchange(proxy_error::gateway_timeout, "event stream idle");
    }
}

// ---- sessions -------------------------------------------------------------------------------

bool downstream_connection::resolve_session()
{
    const auto& head = request_.head();
    std::string_view id;
    if (const auto field = head.find(field_name::mcp_session_id)) {
        id = *field;
        sid_source_ = session_source::header;
    } else if (const auto located = session::legacy_session_id(head.target())) {
        id = located->value;
        sid_param_ = located->name;
        sid_source_ = session_source::query;
    } else {
        return true; // no session yet: the balancer places it
    }
    if (!session::is_valid_session_id(id)) {
        sid_source_ = session_source::none;
        respond_error(proxy_error::bad_session_id);
        return false;
    }
    sid_client_.assign(id);
    sid_backend_.assign(id);

    auto& shared = worker_.shared();
    std::optional<upstream::pick> owner;
    if (const auto& tokens = upstream_state_->tokens) {
        // The token names its owner; a forged or altered one opens to nothing.
        auto opened = tokens->open(id);
        if (opened)
            owner = upstream::locate(*upstream_state_, opened->backend_address);
        if (!owner) {
            respond_session_not_found();
            return false;
        }
        sid_backend_ = std::move(opened->original_id);
    } else {
        sid_key_ = shared.sessions.key_of(id);
        if (const auto owner_id = shared.sessions.find(sid_key_, shared.now_s())) {
            sid_known_ = true;
            auto* b = shared.backends.get(*owner_id);
            if (!b || !b->in_service()) {
                respond_session_not_found(); // its backend left: the session's state went with it
                return false;
            }
            owner = upstream::locate(*upstream_state_, b);
            if (owner && owner->pool < upstream_state_->pools.size() &&
                upstream_state_->pools[owner->pool].drain_expired) {
                respond_session_not_found(); // drained past its deadline
                return false;
            }
            if (!owner) // in service, but listed in another upstream: still its owner
                owner = upstream::pick{upstream_state_->pools.size(),
                                       std::shared_ptr<upstream::backend>(std::shared_ptr<void>{}, b)};
        } else {
            owner = upstream::rendezvous_pick(*upstream_state_, id);
            if (!owner) {
                respond_error(proxy_error::no_backend);
                return false;
            }
        }
    }
    pinned_ = true;
    pool_index_ = owner->pool;
    backend_ = std::move(owner->target);
    return true;
}

void downstream_connection::learn_session()
{
    const auto& head = response_.head();
    const auto status = head.status();
    auto& shared = worker_.shared();
    const bool table_mode = !upstream_state_->tokens;

    if (status >= 500)
        backend_->record_failure();
    else
        backend_->record_success();
    scan_jsonrpc_error_ = content_type_is(head, "application/json");

    is_stream_ = content_type_is(head, "text/event-stream");
    if (is_stream_) {
        // From here on it is an open stream, not a request in flight (SPEC's status counts
        // them apart, and power-of-two-choices should weigh work, not idle streams).
        auto& c = backend_->counters();
        c.streams.fetch_add(1, std::memory_order_relaxed);
        c.in_flight.fetch_sub(1, std::memory_order_relaxed);
    }

    if (sid_source_ != session_source::none &&
        (status == 404 || (request_.method() == HTTP_DELETE && status >= 200 && status < 300)))
        forget_session(); // the owner no longer has it, or it was ended

    if (const auto minted = head.find(field_name::mcp_session_id); minted && session::is_valid_session_id(*minted)) {
        if (table_mode) {
            if (!(sid_known_ && *minted == sid_client_))
                shared.sessions.insert(shared.sessions.key_of(*minted), backend_->id(), shared.now_s());
        } else {
            sid_to_client_ = *minted == sid_backend_ && sid_source_ != session_source::none
                                 ? sid_client_
                                 : upstream_state_->tokens->seal(*minted, backend_->address());
        }
    }

    const bool legacy_stream_start = is_stream_ && sid_source_ == session_source::none &&
                                     request_.method() == HTTP_GET && status < 300;
    if (is_stream_ && table_mode && sid_source_ != session_source::none && status < 300 &&
        shared.sessions.open_stream(sid_key_, shared.now_s())) {
        stream_key_ = sid_key_;
        stream_counted_ = true;
    }
    if (legacy_stream_start) {
        endpoint_scanner_.emplace(); // 2024-11-05 transport: the session is announced in the stream
        // Rewriting changes the body's length: possible only when turnout frames it (chunked).
        rewrite_endpoint_ = !table_mode && request_.head().version_minor() >= 1;
        held_.clear();
    }
}

void downstream_connection::watch_stream_for_endpoint()
{
    // Observes the bytes on their way out; nothing is held back.
    for (const auto piece : response_.body()) {
        const auto url = endpoint_scanner_->feed(piece);
        if (!url) {
            if (endpoint_scanner_->done())
                break;
            continue;
        }
        if (const auto id = session::legacy_session_id(*url); id && session::is_valid_session_id(id->value)) {
            auto& shared = worker_.shared();
            const auto key = shared.sessions.key_of(id->value);
            shared.sessions.insert(key, backend_->id(), shared.now_s());
            if (shared.sessions.open_stream(key, shared.now_s())) {
                stream_key_ = key;
                stream_counted_ = true;
            }
        }
        break;
    }
    if (endpoint_scanner_->done())
        endpoint_scanner_.reset();
}

void downstream_connection::rewrite_stream_endpoint()
{
    for (const auto piece : response_.body()) {
        held_.append(piece);
        if (endpoint_scanner_->done())
            continue; // bytes after the endpoint event, in the same read
        const auto url = endpoint_scanner_->feed(piece);
        if (!url)
            continue;
        const auto id = session::legacy_session_id(*url);
        if (!id || !session::is_valid_session_id(id->value))
            continue;
        const auto token = upstream_state_->tokens->seal(id->value, backend_->address());
        const auto rewritten = session::replace_query_parameter(*url, id->name, token);
        if (const auto at = held_.rfind(*url); at != std::string::npos)
            held_.replace(at, url->size(), rewritten);
    }
    if (!endpoint_scanner_->done() && resp_phase_ != response_phase::done)
        return; // still inside the first event(s): hold them
    rewrite_endpoint_ = false;
    endpoint_scanner_.reset();
    if (!held_.empty()) {
        down_bufs_.push_back(chunk_header(down_chunk_, held_.size()));
        down_bufs_.emplace_back(asio::buffer(held_));
        down_bufs_.emplace_back(asio::buffer(chunk_end));
    }
}

void downstream_connection::forget_session()
{
    if (sid_source_ == session_source::none || !upstream_state_ || upstream_state_->tokens)
        return;
    worker_.shared().sessions.erase(sid_key_);
}

void downstream_connection::end_session_stream()
{
    if (!stream_counted_)
        return;
    stream_counted_ = false;
    auto& shared = worker_.shared();
    shared.sessions.close_stream(stream_key_, shared.now_s());
}

// ---- accounting -----------------------------------------------------------------------------

void downstream_connection::begin_accounting()
{
    if (accounted_)
        return;
    accounted_ = true;
    auto& c = backend_->counters();
    c.in_flight.fetch_add(1, std::memory_order_relaxed);
    c.requests_total.fetch_add(1, std::memory_order_relaxed);
}

void downstream_connection::end_accounting(bool failed)
{
    if (!accounted_)
        return;
    accounted_ = false;
    auto& c = backend_->counters();
    if (is_stream_)
        c.streams.fetch_sub(1, std::memory_order_relaxed); // in_flight was released when it became one
    else
        c.in_flight.fetch_sub(1, std::memory_order_relaxed);
    if (failed)
        c.errors_total.fetch_add(1, std::memory_order_relaxed);
    end_session_stream();
}

void downstream_connection::note_backend_failure()
{
    backend_->counters().errors_total.fetch_add(1, std::memory_order_relaxed);
    backend_->record_failure();
}

void downstream_connection::scan_for_jsonrpc_error()
{
    // A JSON-RPC answer's object names "result" or "error", usually within its first bytes:
    // the first of the two names among the first 256 bytes of the first piece decides. Looking
    // no further keeps this off the data path's cost, at the price of missing an "error"
    // member placed after a long one (none of the SDKs does that).
    scan_jsonrpc_error_ = false;
    const auto first = response_.body().front().substr(0, 256);
    for (auto quote = first.find('"'); quote != std::string_view::npos; quote = first.find('"', quote + 1)) {
        const auto name = first.substr(quote + 1);
        if (name.starts_with("result\""))
            return;
        if (name.starts_with("error\"")) {
            backend_->counters().jsonrpc_errors_total.fetch_add(1, std::memory_order_relaxed);
            return;
        }
    }
}

void downstream_connection::record_outcome()
{
    if (outcome_recorded_)
        return;
    outcome_recorded_ = true;
    if (!backend_ || upstream_started_ < started_ || status_ < 100 || status_ > 599 || status_ == 499)
        return;
    auto& c = backend_->counters();
    c.responses_by_class[status_ / 100 - 1].fetch_add(1, std::memory_order_relaxed);
    const auto elapsed = std::chrono::duration<double>(clock::now() - started_).count();
    std::size_t bucket = 0;
    while (elapsed > upstream::latency_bounds[bucket])
        ++bucket;
    c.latency_buckets[bucket].fetch_add(1, std::memory_order_relaxed);
    c.latency_sum_us.fetch_add(static_cast<std::uint64_t>(elapsed * 1e6), std::memory_order_relaxed);
}

void downstream_connection::log_access()
{
    if (logged_)
        return;
    logged_ = true;
    record_outcome();
    if (!snapshot_ || !snapshot_->access_log)
        return;
    const auto now = clock::now();
    const auto seconds = [](clock::duration d) { return std::chrono::duration<double>(d).count(); };
    const bool reached_backend = backend_ && upstream_started_ >= started_;
    std::string_view pool = "-";
    if (reached_backend && upstream_state_ && pool_index_ < upstream_state_->pools.size())
        pool = upstream_state_->pools[pool_index_].name;
    snapshot_->access_log->info("{} \"{} {}\" {} {} pool={} backend={} upstream_time={:.3f} time={:.3f}",
                                client_address_, request_.head().method(), request_.head().target(),
                                status_, bytes_out_, pool, reached_backend ? backend_->address() : "-",
                                reached_backend ? seconds(now - upstream_started_) : 0.0,
                                seconds(now - started_));
}

} // namespace turnout::http
