#include "turnout/net/downstream_connection.hpp"

#include "turnout/edge/gate.hpp"
#include "turnout/http/error_response.hpp"
#include "turnout/net/body_hold.hpp"
#include "turnout/http/forwarding.hpp"
#include "turnout/http/head_writer.hpp"
#include "turnout/http/headers.hpp"
#include "turnout/log/access_line.hpp"
#include "turnout/routing/fixed_answer.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cerrno>

#include <sys/socket.h>

namespace turnout::net {
namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;

// One read that never blocks, whatever mode the socket is in. The sockets themselves stay
// blocking: on io_uring, Asio submits a real receive for a blocking socket, but a poll and
// then a recv of its own for one set non-blocking (on epoll Asio makes them non-blocking
// itself either way).
std::size_t read_now(asio::ip::tcp::socket& s, asio::mutable_buffer into, boost::system::error_code& ec)
{
    const auto n = ::recv(s.native_handle(), into.data(), into.size(), MSG_DONTWAIT);
    if (n > 0) {
        ec = {};
        return static_cast<std::size_t>(n);
    }
    ec = n == 0 ? boost::system::error_code(asio::error::eof)
                : boost::system::error_code(errno, boost::system::system_category());
    return 0;
}
using http::proxy_error;
using http::field_name;

constexpr std::size_t max_response_head = 65536;
constexpr auto linger_timeout = 2s;
constexpr std::string_view continue_response = "HTTP/1.1 100 Continue\r\n\r\n";

/// Appends every piece after the first (which is a view of owned) to owned, leaving pieces
/// as the one buffer of owned: the message no longer points into a read buffer.
void own_pieces(std::string& owned, std::vector<asio::const_buffer>& pieces)
{
    std::size_t total = 0;
    for (std::size_t i = 1; i < pieces.size(); ++i)
        total += pieces[i].size();
    {
        http::head_writer out(owned, total);
        for (std::size_t i = 1; i < pieces.size(); ++i)
            out << std::string_view(static_cast<const char*>(pieces[i].data()), pieces[i].size());
    }
    pieces.assign(1, asio::buffer(owned));
}

/// A body of content_length that is already whole among the buffered bytes: its size, else 0.
std::size_t whole_body(std::optional<std::uint64_t> content_length, std::size_t buffered)
{
    return content_length && *content_length <= buffered ? *content_length : 0;
}

// The media type of a Content-Type value starts it; parameters (charset=…) follow. media_type
// is lowercase.
bool content_type_is(const http::message_head& head, std::string_view media_type)
{
    const auto type = head.find(field_name::content_type);
    return type && http::starts_with_lowercase(*type, media_type);
}

bool is_backend_failure(proxy_error e)
{
    return e == proxy_error::bad_gateway || e == proxy_error::gateway_timeout;
}

/// A failed connect or write worth a word in the log.
std::string_view connect_failure(boost::system::error_code ec)
{
    return ec == asio::error::operation_aborted ? "timed out" : std::string_view{};
}

} // namespace

void serve(worker& w, asio::ip::tcp::socket socket, std::size_t listen_index)
{
    auto c = std::make_shared<downstream_connection>(w, std::move(socket), listen_index);
    c->start();
    if (w.draining())
        c->retire(); // accepted as the listeners closed: one answer, then Connection: close
}

downstream_connection::downstream_connection(worker& w, tcp::socket socket, std::size_t listen_index)
    : worker_(w),
      router_(w.router()),
      client_(std::move(socket)),
      listen_index_(listen_index),
      request_(http::message_parser::kind::request, {}),
      response_(http::message_parser::kind::response, {max_response_head, max_response_head})
{}

downstream_connection::~downstream_connection()
{
    // Every buffer goes back where it came from, so the held counts in /metrics stay exact.
    worker_.client_buffers().reclaim_all(in_);
    worker_.response_buffers().reclaim_all(up_in_);
    end_park();
    worker_.remove(this);
}

void downstream_connection::start()
{
    worker_.add(this);
    boost::system::error_code ec;
    const auto remote = client_.next_layer().remote_endpoint(ec);
    client_address_ = ec ? "-" : remote.address().to_string();
    client_.next_layer().set_option(tcp::no_delay(true), ec);
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

std::shared_ptr<tls_client_context> downstream_connection::backend_tls() const
{
    const auto& dest = exchange_.dest;
    if (!dest.upstream || dest.pool >= dest.upstream->pools.size())
        return nullptr; // a session owner listed in another upstream: plain, as before TLS
    return dest.upstream->pools[dest.pool].tls;
}

void downstream_connection::do_upstream_handshake()
{
    const auto tls = backend_tls();
    auto& stream = exchange_.upstream->stream().enable_tls(tls->context());
    if (!tls->prepare(stream.native_handle(), exchange_.dest.backend->endpoint()))
        return on_connect(make_error_code(asio::error::invalid_argument));
    stream.async_handshake(asio::ssl::stream_base::client,
                           [self = shared_from_this()](boost::system::error_code ec) { self->on_connect(ec); });
}

// ---- connection_handle ----------------------------------------------------------------------

void downstream_connection::drain()
{
    draining_ = true;
    keep_alive_ = false;
    if (exchange_.request == request_phase::idle && !client_writing_)
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
    if (closed_ || !exchange_.stream || !exchange_.dest.backend ||
        std::find(targets.begin(), targets.end(), exchange_.dest.backend.get()) == targets.end())
        return false;
    close_at_ = std::min(close_at_, at);
    keep_alive_ = false;
    schedule_deadline();
    return true;
}

// ---- request flow ---------------------------------------------------------------------------

void downstream_connection::do_read_client()
{
    if (client_reading_ || closed_)
        return;
    if (waits_without_buffer() && !may_park_read())
        return do_wait_client();
    if (in_.capacity() == 0)
        worker_.client_buffers().lend_small(in_);
    // Forgetting consumed bytes is safe only when no body view into them is still being
    // written, and never while a finished request may have to be replayed.
    const auto phase = exchange_.request;
    if (in_.space() == 0 && (lingering_ || phase == request_phase::idle || phase == request_phase::head ||
                             phase == request_phase::inspect || (phase == request_phase::body && !upstream_writing_)))
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
           (exchange_.request == request_phase::idle || exchange_.request == request_phase::sent);
}

bool downstream_connection::may_park_read()
{
    if (exchange_.request != request_phase::idle || park_expired_ || !worker_.take_park_slot())
        return false;
    parked_ = true;
    park_until_ = clock::now() + worker::park_time;
    schedule_deadline();
    return true;
}

void downstream_connection::end_park() noexcept
{
    if (!parked_)
        return;
    parked_ = false;
    park_until_ = clock::time_point::max();
    worker_.give_park_slot();
}

// The client stayed quiet: give the buffer back and wait for readability instead. Cancelling
// touches only the reactor's queue (no system call); nothing else is pending on the socket
// between requests.
void downstream_connection::expire_park()
{
    end_park();
    park_expired_ = true;
    if (client_reading_ && !client_writing_) {
        boost::system::error_code ignored;
        client_.next_layer().cancel(ignored);
    }
}

void downstream_connection::do_wait_client()
{
    // Under load the next request is usually there already: try it first, as Asio's own
    // speculative read would. The completion is posted, never run inline, because callers
    // go on with the connection's state after do_read_client() returns.
    if (in_.capacity() == 0)
        worker_.client_buffers().lend_small(in_);
    boost::system::error_code ec;
    const auto n = read_now(client_.next_layer(), asio::buffer(in_.write_data(), in_.space()), ec);
    client_reading_ = true;
    if (ec != asio::error::would_block && ec != asio::error::try_again) {
        asio::post(worker_.io(), [self = shared_from_this(), ec, n] { self->on_read_client(ec, n); });
        return;
    }
    worker_.client_buffers().reclaim(in_);
    if (exchange_.request == request_phase::idle)
        release_idle_memory();
    client_.next_layer().async_wait(tcp::socket::wait_read, [self = shared_from_this()](boost::system::error_code wait_ec) {
        self->on_client_readable(wait_ec);
    });
}

// Between requests, with nothing to read: the connection may now sit idle for minutes, so what
// it kept for the next exchange (the heads' memory, the scratch for writing them) goes, and an
// idle connection costs its object and its socket only. A busy connection rarely gets here: its
// parked read, or the read just tried, finds the next request first.
void downstream_connection::release_idle_memory() noexcept
{
    request_.release_memory();
    response_.release_memory();
    std::string{}.swap(up_head_);
    std::string{}.swap(client_head_);
    std::vector<asio::const_buffer>{}.swap(up_bufs_);
    std::vector<asio::const_buffer>{}.swap(down_bufs_);
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
    end_park();
    if (closed_)
        return;
    if (ec == asio::error::operation_aborted && park_expired_) {
        worker_.client_buffers().reclaim(in_);
        return do_wait_client();
    }
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
        if (exchange_.request != request_phase::idle || !in_.empty())
            exchange_.status = exchange_.status ? exchange_.status : 499;
        return close();
    }
    in_.commit(n);
    if (exchange_.failed)
        return;
    if (exchange_.request == request_phase::sent) {
        // Waiting for the response: hold pipelined bytes, keep watching for a disconnect.
        return do_read_client();
    }
    process_request_bytes();
}

void downstream_connection::process_request_bytes()
{
    if (exchange_.request == request_phase::idle) {
        if (in_.empty())
            return do_read_client();
        exchange_.request = request_phase::head;
        park_expired_ = false;
        snapshot_ = worker_.snapshot();
        const auto& proxy = snapshot_->proxy();
        request_.set_limits({proxy.max_header_bytes, proxy.max_uri_bytes});
        exchange_.started = clock::now();
        set_deadline(wait_kind::header, proxy.header_timeout, exchange_.started);
    }

    if (exchange_.request == request_phase::head) {
        in_.consume(request_.parse(in_.data(), in_.size()));
        if (request_.current() == http::message_parser::state::failed)
            return respond_error(request_.error());
        if (!request_.head_complete())
            return do_read_client();
        return on_request_head();
    }

    if (exchange_.request == request_phase::inspect)
        return continue_inspection();

    if (exchange_.request == request_phase::body) {
        in_.consume(request_.parse(in_.data(), in_.size()));
        if (request_.current() == http::message_parser::state::failed)
            return fail_exchange(request_.error(), request_.error_reason());
        if (request_.body_total() > snapshot_->proxy().max_body_bytes)
            return fail_exchange(proxy_error::body_too_large, "request body over max_body_bytes");
        if (!exchange_.request_head_sent || request_.body_size() > 0 ||
            request_.current() == http::message_parser::state::complete)
            return do_write_upstream();
        return do_read_client();
    }
}

void downstream_connection::on_request_head()
{
    const auto& head = request_.head();
    if (const auto problem = http::request_head_problem(request_, snapshot_->proxy().max_body_bytes))
        return respond_error(*problem);

    keep_alive_ = request_.keep_alive() && !draining_ && !retiring_;
    if (const auto& listeners = snapshot_->config->listeners; listen_index_ < listeners.size()) {
        if (const auto refused = edge::admit(worker_.shared().edge, listeners[listen_index_], listen_index_, head,
                                             tls_ != nullptr, client_address_, upstream::monotonic_ms(exchange_.started),
                                             exchange_.stream_slot))
            return respond_error(refused->error, refused->retry_after_s);
    }
    if (routing::body_to_inspect(snapshot_->router, head, request_.content_length(), request_.chunked(),
                                 snapshot_->proxy().max_inspect_bytes)) {
        exchange_.request = request_phase::inspect;
        return continue_inspection();
    }
    route_request(routing::header_facts(head));
}

// The body is read whole (it is at most max_inspect_bytes) into the read buffer, where it
// stays to be forwarded; then its JSON-RPC method and name route the request. An Expect:
// 100-continue is answered first, or the client would wait for it before sending the body.
void downstream_connection::continue_inspection()
{
    if (request_.chunked())
        return continue_chunked_inspection();
    const auto length = static_cast<std::size_t>(*request_.content_length());
    if (in_.size() < length) {
        exchange_.body_held |= make_room_for_body(in_, length, worker_.client_buffers());
        if (!exchange_.expect_continue && expects_continue()) {
            exchange_.expect_continue = true;
            return do_send_continue(&downstream_connection::do_read_client);
        }
        return do_read_client();
    }
    // The exchange's own JSON-RPC watch reads it (what it learns also counts the tool call, and
    // the body is not scanned again on its way out), unless it is longer than the watch reads.
    std::optional<mcp::request_inspector> longer;
    auto& inspector = length <= mcp::rpc_watch::inspect_limit ? exchange_.rpc.request_side() : longer.emplace(length);
    const auto inspected = routing::inspect_body(request_.head(), std::string_view(in_.data(), length), inspector);
    if (!inspected.mismatch.empty())
        return respond_error(proxy_error::header_mismatch, 0, inspected.mismatch);
    route_request(inspected.facts);
}

// A chunked body is held as it came, framing and all, until its last chunk (or until it proves
// too long to inspect); its payload is read in place, and the parser forwards the same bytes.
void downstream_connection::continue_chunked_inspection()
{
    std::optional<mcp::request_inspector> longer;
    const auto inspected = routing::inspect_chunked_body(request_.head(), std::string_view(in_.data(), in_.size()),
                                                         snapshot_->proxy().max_inspect_bytes, exchange_.rpc, longer);
    if (!inspected.route) {
        if (in_.capacity() < inspected.hold || in_.space() == 0) {
            const auto most = routing::chunked_hold_limit(snapshot_->proxy().max_inspect_bytes);
            const auto room = std::min(std::max(inspected.hold, 2 * in_.capacity()), most);
            exchange_.body_held |= make_room_for_body(in_, room, worker_.client_buffers());
        }
        if (!exchange_.expect_continue && expects_continue()) {
            exchange_.expect_continue = true;
            return do_send_continue(&downstream_connection::do_read_client);
        }
        return do_read_client();
    }
    if (!inspected.result.mismatch.empty())
        return respond_error(proxy_error::header_mismatch, 0, inspected.result.mismatch);
    route_request(inspected.result.facts);
}

void downstream_connection::route_request(routing::mcp_facts mcp)
{
    const auto& head = request_.head();
    if (const auto refused =
            router_.route(*snapshot_, head, exchange_.dest, exchange_.session, client_address_, mcp, listen_index_))
        return respond_error(*refused);
    if (const auto* answer = exchange_.dest.answer)
        return respond(answer->status, routing::render_answer(*answer, head, tls_ != nullptr));
    exchange_.request_chunked = request_.chunked();
    if (request_.method() == HTTP_POST)
        exchange_.rpc.watch_request();
    build_upstream_head();

    const bool answered_continue = exchange_.expect_continue; // during the inspection
    exchange_.request = request_phase::routing;
    const bool has_body = exchange_.request_chunked || request_.content_length().value_or(0) > 0;
    exchange_.expect_continue = has_body && expects_continue();
    if (exchange_.expect_continue && !answered_continue)
        return do_send_continue(&downstream_connection::do_connect);
    do_connect();
}

bool downstream_connection::expects_continue() const
{
    const auto& head = request_.head();
    const auto expect = head.find(field_name::expect);
    return expect && head.version_minor() >= 1 && http::iequals(*expect, "100-continue");
}

void downstream_connection::do_send_continue(void (downstream_connection::*then)())
{
    // turnout answers the expectation itself (as nginx does): the client's body is wanted as
    // soon as the limits above allowed it, and the backend never sees Expect.
    client_writing_ = true;
    client_.async_write(asio::buffer(continue_response),
                        [self = shared_from_this(), then](boost::system::error_code ec, std::size_t) {
                            self->client_writing_ = false;
                            if (self->closed_)
                                return;
                            if (ec)
                                return self->close();
                            ((*self).*then)();
                        });
}

// The upstream lifecycle, as nginx's: choose a backend, connect (or reuse an idle
// connection), and on a refused or timed-out connect try the next one. A replay after a
// stale keep-alive connection comes through here as well.
void downstream_connection::do_connect()
{
    const auto now = clock::now();
    auto& ex = exchange_;
    // Still alive here: the snapshot the exchange holds lists it (or a table's owner, the
    // registry does); a raw pointer spares an atomic count per request.
    auto* const previous = ex.dest.backend.get();
    if (const auto refused = router_.choose(ex.dest, ex.tried, upstream::monotonic_ms(now)))
        return ex.replaying ? fail_exchange(*refused, "reconnect to backend failed") : respond_error(*refused);
    if (previous)
        ex.move_accounting_from(*previous);
    ex.tried.push_back(ex.dest.backend.get());

    if (!ex.replaying) {
        if (auto idle = worker_.upstream_pool().take(*ex.dest.backend, backend_tls().get(), now)) {
            ex.upstream = std::move(idle);
            return on_upstream_ready(now);
        }
    }
    connect_upstream();
}

void downstream_connection::connect_upstream()
{
    auto tls = backend_tls();
    const bool use_tls = tls != nullptr;
    exchange_.upstream = std::make_unique<upstream::upstream_connection>(worker_.io(), exchange_.dest.backend, std::move(tls));
    // The deadline covers the TLS handshake too: a backend that accepts but never answers it
    // is as unavailable as one that never accepts.
    set_deadline(wait_kind::connect, snapshot_->proxy().connect_timeout);
    exchange_.upstream->socket().async_connect(exchange_.dest.backend->endpoint(),
                                               [self = shared_from_this(), use_tls](boost::system::error_code ec) {
                                                   if (ec || !use_tls || self->closed_ || !self->exchange_.upstream)
                                                       return self->on_connect(ec);
                                                   self->do_upstream_handshake();
                                               });
}

void downstream_connection::on_connect(boost::system::error_code ec)
{
    if (closed_ || exchange_.failed)
        return;
    auto& ex = exchange_;
    const auto now = clock::now();
    if (ec) {
        // Refused or timed out before a byte was sent: safe to try another backend. A pinned
        // session's backend that refuses is gone (and its state with it); one that is there
        // but not answering is not.
        ex.note_connect_failure(now);
        const auto why = connect_failure(ec);
        spdlog::warn("connect to backend {} failed: {}", ex.dest.backend->address(), why.empty() ? ec.message() : why);
        ex.upstream.reset();
        if (ex.dest.pinned && ec != asio::error::connection_refused)
            return fail_exchange(proxy_error::bad_gateway, "backend did not accept the connection");
        return do_connect();
    }
    boost::system::error_code ignored;
    ex.upstream->socket().set_option(tcp::no_delay(true), ignored);
    on_upstream_ready(now);
}

void downstream_connection::on_upstream_ready(clock::time_point now)
{
    auto& ex = exchange_;
    ex.begin_accounting();
    set_deadline(wait_kind::response, snapshot_->proxy().response_timeout, now);
    ex.request_head_sent = false;
    if (ex.replaying) {
        // The saved buffers hold the whole request: send them again as they are.
        upstream_writing_ = true;
        ex.upstream->stream().async_write(up_bufs_, [self = shared_from_this()](boost::system::error_code ec, std::size_t n) {
            self->on_write_upstream(ec, n);
        });
        return;
    }
    ex.upstream_started = now;
    ex.request = request_phase::body;
    process_request_bytes();
}

void downstream_connection::do_write_upstream()
{
    auto& ex = exchange_;
    up_bufs_.clear();
    if (!ex.request_head_sent)
        up_bufs_.emplace_back(asio::buffer(up_head_));
    const bool complete = request_.current() == http::message_parser::state::complete;
    ex.replayable = !ex.request_head_sent && complete && !ex.body_held;
    for (const auto piece : request_.body())
        ex.rpc.on_request_body(piece);
    up_framer_.append(up_bufs_, request_.body(), request_.body_size(), ex.request_chunked);
    if (complete && ex.request_chunked)
        http::chunk_framer::append_last(up_bufs_);
    if (ex.replayable) {
        // The request is whole in hand (head and a body of at most one read buffer): it goes
        // out as one owned string, so the read buffer goes back to the cache before the write
        // (unless a pipelined request waits in it), and a replay on a fresh connection has
        // everything it needs. Copying a few hundred bytes is cheaper than holding 2 KiB.
        own_pieces(up_head_, up_bufs_);
        worker_.client_buffers().reclaim(in_);
    }
    upstream_writing_ = true;
    ex.upstream->stream().async_write(up_bufs_, [self = shared_from_this()](boost::system::error_code ec, std::size_t n) {
        self->on_write_upstream(ec, n);
    });
}

void downstream_connection::on_write_upstream(boost::system::error_code ec, std::size_t)
{
    upstream_writing_ = false;
    if (closed_ || exchange_.failed)
        return;
    auto& ex = exchange_;
    if (ec) {
        if (retry_on_fresh_connection(ec))
            return;
        ex.note_backend_failure(clock::now());
        return fail_exchange(proxy_error::bad_gateway, "write to backend failed: " + ec.message());
    }
    ex.request_head_sent = true;
    request_.clear_body();
    if (ex.response == response_phase::none) {
        ex.response = response_phase::head;
        upstream_drained_ = true; // the answer is not there yet: wait before reading
        if (request_.method() == HTTP_HEAD)
            response_.expect_no_body();
        do_read_upstream();
    }
    if (request_.current() == http::message_parser::state::complete) {
        ex.request = request_phase::sent;
        // Nothing the backend needs is in the read buffer any more (no view was written from
        // it but by this completed write; a replay sends the owned copy).
        worker_.client_buffers().reclaim(in_);
        if (ex.stream)
            do_read_client(); // a stream already runs: notice a client that leaves
        return;
    }
    process_request_bytes();
}

// ---- response flow --------------------------------------------------------------------------

void downstream_connection::do_read_upstream()
{
    auto& ex = exchange_;
    if (upstream_reading_ || closed_ || !ex.upstream)
        return;
    if (waits_upstream_without_buffer())
        return do_wait_upstream();
    up_in_.compact(); // the previous client write finished: no view into up_in_ is live
    take_response_buffer();
    upstream_reading_ = true;
    ex.upstream->stream().async_read_some(
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
    return exchange_.stream && upstream_drained_ && up_in_.empty() && !exchange_.upstream->stream().is_tls();
}

void downstream_connection::do_wait_upstream()
{
    worker_.response_buffers().reclaim(up_in_);
    upstream_reading_ = true;
    exchange_.upstream->socket().async_wait(tcp::socket::wait_read,
                                            [self = shared_from_this()](boost::system::error_code ec) {
                                                self->on_upstream_readable(ec);
                                            });
}

void downstream_connection::on_upstream_readable(boost::system::error_code ec)
{
    upstream_reading_ = false;
    if (closed_ || exchange_.failed)
        return;
    if (ec)
        return on_read_upstream(ec, 0);
    worker_.response_buffers().lend_small(up_in_);
    const auto n = read_now(exchange_.upstream->socket(), asio::buffer(up_in_.write_data(), up_in_.space()), ec);
    if (ec == asio::error::would_block || ec == asio::error::try_again)
        return do_wait_upstream(); // readiness without bytes (spurious): wait again
    on_read_upstream(ec, n);
}

void downstream_connection::on_read_upstream(boost::system::error_code ec, std::size_t n)
{
    upstream_reading_ = false;
    if (closed_ || exchange_.failed)
        return;
    auto& ex = exchange_;
    if (ec) {
        if (ec == asio::error::eof && ex.response == response_phase::body && response_.finish_at_eof()) {
            // A body delimited by the end of the connection has ended.
            ex.response = response_phase::done;
            return do_write_client();
        }
        if (ex.response_bytes_in == 0 && retry_on_fresh_connection(ec))
            return;
        ex.note_backend_failure(clock::now());
        return fail_exchange(proxy_error::bad_gateway,
                             ec == asio::error::eof ? "backend closed the connection" : ec.message());
    }
    up_in_.commit(n);
    upstream_drained_ = up_in_.space() > 0; // a short read emptied the socket
    ex.response_bytes_in += n;
    if (ex.response == response_phase::body)
        set_deadline(waiting_for_, ex.stream ? snapshot_->proxy().stream_idle_timeout : snapshot_->proxy().idle_timeout);
    process_response_bytes();
}

void downstream_connection::process_response_bytes()
{
    auto& ex = exchange_;
    for (;;) {
        up_in_.consume(response_.parse(up_in_.data(), up_in_.size()));
        if (response_.current() == http::message_parser::state::failed) {
            ex.note_backend_failure(clock::now());
            return fail_exchange(proxy_error::bad_gateway,
                                 std::string("invalid response from backend: ").append(response_.error_reason()));
        }
        if (ex.response != response_phase::head || !response_.head_complete())
            break;

        const auto status = response_.head().status();
        if (status < 200) {
            if (status == 101) {
                ex.note_backend_failure(clock::now());
                return fail_exchange(proxy_error::bad_gateway, "backend switched protocols");
            }
            http::write_interim_head(client_head_, response_.head());
            ex.interim_pending = true;
            return do_write_client();
        }
        on_response_head();
        // loop: parse the body bytes that came with the head
    }

    if (ex.response == response_phase::head)
        return do_read_upstream();
    if (response_.current() == http::message_parser::state::complete)
        ex.response = response_phase::done;
    if (!ex.response_head_sent || response_.body_size() > 0 || ex.response == response_phase::done)
        return do_write_client();
    do_read_upstream();
}

void downstream_connection::on_response_head()
{
    auto& ex = exchange_;
    const auto& head = response_.head();
    ex.response = response_phase::body;
    ex.status = head.status();

    const auto now = clock::now(); // one reading for passive health and the next deadline
    if (ex.status >= 500)
        ex.dest.backend->record_failure(upstream::monotonic_ms(now));
    else
        ex.dest.backend->record_success(upstream::monotonic_ms(now));
    const bool event_stream = content_type_is(head, "text/event-stream");
    ex.rpc.watch_response(event_stream                            ? mcp::answer_kind::event_stream
                          : content_type_is(head, "application/json") ? mcp::answer_kind::json
                                                                      : mcp::answer_kind::other);
    if (event_stream)
        ex.become_stream();
    else
        ex.record_head_latency(now);
    router_.on_response_head(ex.dest, ex.session, request_.head(), head, ex.stream);
    build_client_head();

    if (ex.stream) {
        set_deadline(wait_kind::stream, snapshot_->proxy().stream_idle_timeout, now);
        // A stream may stay silent for long: watch the client so that one that leaves ends
        // the stream (and its accounting) at once, not at the next event. Short answers skip
        // this read, which would cost a syscall per request.
        if (ex.request == request_phase::sent)
            do_read_client();
    } else {
        set_deadline(wait_kind::body, snapshot_->proxy().idle_timeout, now);
    }
}

void downstream_connection::do_write_client()
{
    auto& ex = exchange_;
    down_bufs_.clear();
    if (ex.interim_pending) {
        down_bufs_.emplace_back(asio::buffer(client_head_));
    } else {
        if (!ex.response_head_sent)
            down_bufs_.emplace_back(asio::buffer(client_head_));
        add_response_body();
        if (ex.response == response_phase::done && ex.response_chunked)
            http::chunk_framer::append_last(down_bufs_);
        // A whole answer in one piece (the usual JSON-RPC result): as for requests, send an
        // owned copy and give the read buffer back before the write.
        if (!ex.response_head_sent && ex.response == response_phase::done && !ex.session.rewriting_endpoint()) {
            own_pieces(client_head_, down_bufs_);
            worker_.response_buffers().reclaim(up_in_);
        }
    }
    if (ex.response == response_phase::done && !ex.interim_pending) {
        // Counted before the last bytes leave, not when the write completes: a client reading
        // status or /metrics right after its answer must find this exchange in them.
        end_accounting(false);
        ex.record_outcome(clock::now());
    }
    if (down_bufs_.empty())
        return on_write_client({}, 0);

    client_writing_ = true;
    client_.async_write(down_bufs_, [self = shared_from_this()](boost::system::error_code ec, std::size_t n) {
        self->on_write_client(ec, n);
    });
}

// The body bytes parsed so far, framed for the client; the routing stage sees them first
// where the legacy transport announces a session in them.
void downstream_connection::add_response_body()
{
    auto& ex = exchange_;
    if (ex.session.rewriting_endpoint()) {
        if (router_.rewrite_stream(ex.dest, ex.session, response_.body(), ex.response == response_phase::done)) {
            const std::string_view held = ex.session.rewrite->held;
            down_framer_.append(down_bufs_, std::span(&held, 1), held.size(), true);
        }
        return;
    }
    if (response_.body_size() == 0)
        return;
    if (ex.session.scanning_endpoint())
        router_.watch_stream(ex.dest, ex.session, response_.body());
    for (const auto piece : response_.body())
        ex.rpc.on_response_body(piece);
    // A POST answered with an event stream (what the SDKs do for tool calls) is timed to its
    // JSON-RPC answer, not to the stream's head, which comes before any work is done.
    if (ex.stream && !ex.latency_recorded && ex.rpc.outcome() != mcp::rpc_outcome::none)
        ex.record_head_latency(clock::now());
    down_framer_.append(down_bufs_, response_.body(), response_.body_size(), ex.response_chunked);
}

void downstream_connection::on_write_client(boost::system::error_code ec, std::size_t n)
{
    client_writing_ = false;
    if (closed_)
        return;
    auto& ex = exchange_;
    ex.bytes_out += n;
    if (ec)
        return close(); // the client went away
    if (ex.failed)
        return;
    if (ex.interim_pending) {
        ex.interim_pending = false;
        response_.next_message();
        if (request_.method() == HTTP_HEAD)
            response_.expect_no_body();
        return process_response_bytes();
    }
    if (ex.stream && !ex.response_head_sent) {
        // A stream may stay open for hours, mostly silent: the heads' scratch (the request
        // kept for a replay, the answer's head) is done with, so its memory goes now.
        std::string{}.swap(up_head_);
        std::string{}.swap(client_head_);
    }
    ex.response_head_sent = true;
    response_.clear_body();
    if (ex.response == response_phase::done)
        return finish_exchange();
    if (!up_in_.empty())
        return process_response_bytes();
    do_read_upstream();
}

void downstream_connection::finish_exchange()
{
    auto& ex = exchange_;
    const bool request_done = ex.request == request_phase::sent;
    const auto now = clock::now();
    end_accounting(false);
    log_access();

    // The backend connection is reusable only if both messages ended cleanly on it.
    if (ex.upstream && request_done && response_.keep_alive() && !response_.needs_eof() && up_in_.empty() &&
        !upstream_reading_ && !upstream_writing_)
        worker_.upstream_pool().put(std::move(ex.upstream), now);
    if (!request_done)
        keep_alive_ = false; // the rest of the request is still on its way: no resync possible
    if (!keep_alive_ || draining_)
        return linger_close();

    exchange_ = {};
    worker_.response_buffers().reclaim(up_in_);
    request_.next_message();
    response_.reset();
    set_deadline(wait_kind::idle, snapshot_->proxy().idle_timeout, now);
    if (!in_.empty())
        return process_request_bytes(); // a pipelined request is already here
    do_read_client();
}

// ---- heads ----------------------------------------------------------------------------------

void downstream_connection::build_upstream_head()
{
    const auto& session = exchange_.session;
    const bool restore = session.restores_id();
    http::write_request_head(up_head_, request_.head(),
                             {.client_address = client_address_,
                              .https = tls_ != nullptr,
                              .chunked = exchange_.request_chunked,
                              .session_id = restore ? session.id_for_backend() : std::string_view{},
                              .session_param = session.source == routing::session_source::query ? session.param
                                                                                                : std::string_view{},
                              .whole_body = whole_body(request_.content_length(), in_.size())});
}

bool downstream_connection::response_may_have_body() const noexcept
{
    const auto status = response_.head().status();
    return request_.method() != HTTP_HEAD && status != 204 && status != 304 && status >= 200;
}

void downstream_connection::build_client_head()
{
    auto& ex = exchange_;
    const bool client_is_http10 = request_.head().version_minor() == 0;
    const bool rewrite = ex.session.rewriting_endpoint();

    ex.response_chunked = false;
    if (response_may_have_body() && (!response_.content_length() || rewrite)) {
        if (client_is_http10)
            keep_alive_ = false; // HTTP/1.0 has no chunked: the body ends with the connection
        else
            ex.response_chunked = true;
    }
    if (draining_ || retiring_ || ex.request != request_phase::sent)
        keep_alive_ = false;
    http::write_response_head(client_head_, response_.head(),
                              {.session_id = ex.session.to_client(),
                               .drop_content_length = rewrite,
                               .chunked = ex.response_chunked,
                               .close = !keep_alive_,
                               .keep_alive_http10 = keep_alive_ && client_is_http10,
                               .whole_body = whole_body(response_.content_length(), up_in_.size())});
}

// ---- failures -------------------------------------------------------------------------------

bool downstream_connection::retry_on_fresh_connection(boost::system::error_code ec)
{
    // A reused keep-alive connection that the backend closed just as the request went out:
    // the request is still whole in memory (it went out in one write), so it is sent again
    // on a new connection — what a client would do, minus the error.
    auto& ex = exchange_;
    const bool stale = ec == asio::error::eof || ec == asio::error::connection_reset || ec == asio::error::broken_pipe;
    if (!stale || !ex.upstream || !ex.upstream->reused() || !ex.replayable || ex.response_bytes_in > 0)
        return false;
    ex.replaying = true;
    ex.response = response_phase::none;
    response_.reset();
    connect_upstream(); // the same backend, on a new connection
    return true;
}

void downstream_connection::fail_exchange(proxy_error e, std::string_view detail)
{
    if (exchange_.failed || closed_)
        return;
    if (is_backend_failure(e) && exchange_.dest.backend)
        spdlog::warn("{} {} via backend {}: {}", request_.head().method(), request_.head().target(),
                     exchange_.dest.backend->address(), detail);
    if (exchange_.response_head_sent || client_writing_) {
        // Part of the response is out: cutting the connection is the only honest signal.
        exchange_.status = exchange_.status ? exchange_.status : http::status_of(e);
        return close();
    }
    respond_error(e);
}

void downstream_connection::respond_error(proxy_error e, unsigned retry_after_s, std::string answer)
{
    if (e == proxy_error::session_not_found)
        router_.forget(exchange_.dest, exchange_.session);
    respond(http::status_of(e), answer.empty() ? http::make_error_response(e, false, retry_after_s) : std::move(answer));
}

void downstream_connection::respond(unsigned status, std::string response)
{
    auto& ex = exchange_;
    ex.failed = true;
    ex.status = status;
    keep_alive_ = false;
    ex.upstream.reset();
    end_accounting(false); // the failure was counted where it happened
    ex.record_outcome(clock::now()); // before the answer leaves, as in do_write_client
    clear_deadline();
    client_head_ = std::move(response);
    client_writing_ = true;
    client_.async_write(asio::buffer(client_head_), [self = shared_from_this()](boost::system::error_code ec, std::size_t n) {
        self->client_writing_ = false;
        self->exchange_.bytes_out += n;
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
    auto& ex = exchange_;
    if (ex.request != request_phase::idle && !ex.status)
        ex.status = 499; // the client closed before an answer
    end_accounting(ex.status >= 500 && ex.status != 499);
    if (ex.request != request_phase::idle)
        log_access();
    ex.stream_slot.release(); // the client's stream count drops now, not when the last handler lets go
    closed_ = true;
    boost::system::error_code ignored;
    end_park();
    cancel(); // no deadline fires for a closed connection
    client_.next_layer().close(ignored);
    ex.upstream.reset();
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
    // A later deadline is noticed when the earlier one fires; only an earlier one moves the
    // entry, so most requests touch the wheel once or not at all.
    schedule_deadline();
}

void downstream_connection::on_due(clock::time_point now)
{
    if (closed_)
        return;
    auto self = shared_from_this(); // closing must not free it under this call
    if (parked_ && now >= park_until_)
        expire_park();
    if (now >= close_at_) {
        exchange_.status = exchange_.status ? exchange_.status : 200;
        return close(); // a drained pool's stream: its grace is over
    }
    if (now < deadline_)
        return schedule_deadline(); // moved later since it was scheduled (or none: max is not scheduled)
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
        if ((exchange_.request == request_phase::head || exchange_.request == request_phase::inspect) &&
            !client_writing_)
            return respond_error(proxy_error::header_timeout);
        return close();
    case wait_kind::connect:
        // Aborting the connect makes on_connect try the next backend.
        if (exchange_.upstream) {
            boost::system::error_code ignored;
            exchange_.upstream->socket().close(ignored);
        }
        return;
    case wait_kind::response:
    case wait_kind::body:
        if (exchange_.dest.backend)
            exchange_.note_backend_failure(clock::now());
        return fail_exchange(proxy_error::gateway_timeout, "backend did not answer in time");
    case wait_kind::stream:
        return fail_exchange(proxy_error::gateway_timeout, "event stream idle");
    }
}

// ---- accounting -----------------------------------------------------------------------------

void downstream_connection::end_accounting(bool failed)
{
    exchange_.end_accounting(failed);
    router_.end_stream(exchange_.session);
}

void downstream_connection::log_access()
{
    auto& ex = exchange_;
    if (ex.logged)
        return;
    ex.logged = true;
    if (!ex.outcome_recorded) // usually counted already, as the answer's last bytes left
        ex.record_outcome(clock::now());
    if (!snapshot_ || !snapshot_->access_log)
        return;
    const auto now = clock::now();
    const auto seconds = [](clock::duration d) { return std::chrono::duration<double>(d).count(); };
    const auto& head = request_.head();
    const bool reached = ex.reached_backend();
    log::access_record r;
    r.time = std::chrono::system_clock::now();
    r.client = client_address_;
    r.method = head.method();
    r.target = head.target();
    r.version = head.version_minor() == 0 ? "HTTP/1.0" : "HTTP/1.1";
    r.status = ex.status;
    r.bytes = ex.bytes_out;
    r.reached = reached;
    if (reached) {
        r.upstream = ex.dest.upstream ? std::string_view(ex.dest.upstream->config.name) : "-";
        r.pool = ex.dest.pool_name();
        r.backend = ex.dest.backend->address();
        r.upstream_time = seconds(now - ex.upstream_started);
    }
    r.request_time = seconds(now - ex.started);
    if (snapshot_->access_format != log::access_format::turnout) {
        r.referer = head.find("referer").value_or("");
        r.user_agent = head.find("user-agent").value_or("");
        r.authorization = head.find("authorization").value_or("");
        if (ex.session.present())
            r.session = worker_.shared().sessions.key_of(ex.session.client_id).low; // keyed hash, never the id
    }
    snapshot_->access_log->info("{}", log::format_access(snapshot_->access_format, r));
}

} // namespace turnout::net
