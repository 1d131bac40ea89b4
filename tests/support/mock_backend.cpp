//
// turnout-mock-backend: a fast mock MCP server for the demo, the integration tests and the
// benchmarks.
//
//   turnout-mock-backend [--listen HOST:PORT] [--name NAME] [--threads N] [--sse-interval-ms N]
//                        [--silent-streams] [--no-accept]
//
// It speaks MCP Streamable HTTP on /mcp, the legacy HTTP+SSE transport (2024-11-05) on
// /sse + /messages, and a handful of plain HTTP helpers (/echo, /headers, /status/CODE, ...)
// that let the proxy's tests look at exactly what reached the backend.
//
// Shape (Beast's server-multi-io-context): one io_context per thread, each with its own
// SO_REUSEPORT acceptor, so threads share nothing on the request path except the session
// tables. Each connection reads one request, answers it, and only then reads the next, which
// answers pipelined requests in order for free. The benchmarks compare proxies in front of
// this server, so the hot path (a session-less tools/call) avoids logging and reuses its
// buffers: the flat_buffer, the JSON parser and a per-connection arena for the JSON values.
//

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/json.hpp>

#include <algorithm>
#include <array>
#include <charconv>
#include <chrono>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <deque>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

namespace {

namespace beast = boost::beast;
namespace http = beast::http;
namespace net = boost::asio;
namespace json = boost::json;
using tcp = net::ip::tcp;
using namespace std::chrono_literals;

// Large enough that the proxy's own limits (16 KiB heads, 8 MiB bodies) are what tests hit.
constexpr std::size_t header_limit = 64 * 1024;
constexpr std::uint64_t body_limit = 64 * 1024 * 1024;
// Delays requested by clients (/delay, the sleep tool) are capped so a typo cannot wedge a test.
constexpr std::chrono::milliseconds max_delay = 10min;

constexpr std::string_view default_protocol_version = "2025-06-18";
constexpr std::array<std::string_view, 3> known_protocol_versions = {"2024-11-05", "2025-03-26",
                                                                     "2025-06-18"};

constexpr std::string_view session_not_found_body =
    R"({"jsonrpc":"2.0","error":{"code":-32001,"message":"Session not found"},"id":null})";
constexpr std::string_view parse_error_body =
    R"({"jsonrpc":"2.0","error":{"code":-32700,"message":"Parse error"},"id":null})";

constexpr std::string_view tools_list_json = R"({"tools":[
  {"name":"echo","description":"Returns the given text.",
   "inputSchema":{"type":"object","properties":{"text":{"type":"string"}},"required":["text"]}},
  {"name":"whoami","description":"Returns the name of the backend that answered.",
   "inputSchema":{"type":"object","properties":{}}},
  {"name":"sleep","description":"Answers after the given number of milliseconds.",
   "inputSchema":{"type":"object","properties":{"ms":{"type":"integer","minimum":0}},
                  "required":["ms"]}}]})";

//------------------------------------------------------------------------------
// Small helpers

// 128 random bits as 32 lowercase hex characters. Not a security token: it only has to be
// unique among the sessions of a test run.
std::string random_session_id()
{
    thread_local std::mt19937_64 rng = [] {
        // Several words of seed: two mock processes must not hand out the same ids.
        std::random_device rd;
        std::seed_seq seed{rd(), rd(), rd(), rd()};
        return std::mt19937_64{seed};
    }();
    static constexpr char digits[] = "0123456789abcdef";
    std::string id(32, '0');
    for (std::size_t half = 0; half < 2; ++half) {
        std::uint64_t bits = rng();
        for (std::size_t i = 0; i < 16; ++i, bits >>= 4)
            id[half * 16 + i] = digits[bits & 0xf];
    }
    return id;
}

// Splits "/path?query" into its two parts (the query without the '?').
std::pair<std::string_view, std::string_view> split_target(std::string_view target)
{
    auto const q = target.find('?');
    if (q == std::string_view::npos)
        return {target, {}};
    return {target.substr(0, q), target.substr(q + 1)};
}

// The raw value of `key` in an application/x-www-form-urlencoded query. The mock only reads
// numbers and hex ids, so no percent-decoding is needed.
std::optional<std::string_view> query_param(std::string_view query, std::string_view key)
{
    while (!query.empty()) {
        auto const amp = query.find('&');
        auto const pair = query.substr(0, amp);
        auto const eq = pair.find('=');
        if (pair.substr(0, eq) == key)
            return eq == std::string_view::npos ? std::string_view{} : pair.substr(eq + 1);
        if (amp == std::string_view::npos)
            break;
        query.remove_prefix(amp + 1);
    }
    return std::nullopt;
}

template <class Int> std::optional<Int> parse_int(std::string_view text)
{
    Int value{};
    auto const [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (ec != std::errc{} || end != text.data() + text.size())
        return std::nullopt;
    return value;
}

std::chrono::milliseconds clamp_delay(std::int64_t ms)
{
    return std::clamp(std::chrono::milliseconds{ms}, 0ms, max_delay);
}

std::string sse_event(std::string_view event, std::string_view data)
{
    std::string out;
    out.reserve(event.size() + data.size() + 16);
    if (!event.empty()) {
        out += "event: ";
        out += event;
        out += '\n';
    }
    out += "data: ";
    out += data;
    out += "\n\n";
    return out;
}

// Statuses whose responses never carry a body, and so must not carry Content-Length either
// (RFC 9110 §8.6 forbids it for 1xx and 204; for 304 it would describe a body we don't have).
bool body_forbidden(http::status status)
{
    return http::to_status_class(status) == http::status_class::informational ||
           status == http::status::no_content || status == http::status::not_modified;
}

//------------------------------------------------------------------------------
// JSON-RPC message builders. They take the storage of the connection's arena so that a
// reply is built without touching the heap.

json::value rpc_result(json::value const& id, json::value result, json::storage_ptr sp)
{
    json::object reply(sp);
    reply.reserve(3);
    reply.emplace("jsonrpc", "2.0");
    reply.emplace("id", id);
    reply.emplace("result", std::move(result));
    return reply;
}

json::value rpc_error(json::value const& id, int code, std::string_view message, json::storage_ptr sp)
{
    json::object error(sp);
    error.emplace("code", code);
    error.emplace("message", message);
    json::object reply(sp);
    reply.reserve(3);
    reply.emplace("jsonrpc", "2.0");
    reply.emplace("id", id);
    reply.emplace("error", std::move(error));
    return reply;
}

// The result of a tools/call: {"content":[{"type":"text","text":TEXT}]}.
json::value text_content(std::string_view text, json::storage_ptr sp)
{
    json::object item(sp);
    item.emplace("type", "text");
    item.emplace("text", text);
    json::array content(sp);
    content.emplace_back(std::move(item));
    json::object result(sp);
    result.emplace("content", std::move(content));
    return result;
}

//------------------------------------------------------------------------------
// Process-wide state, shared by all threads.

class connection;

// Transparent hashing lets string_views from requests be looked up without a copy.
struct string_hash : std::hash<std::string_view> {
    using is_transparent = void;
};

// Streamable HTTP sessions created by `initialize`. Only requests that carry a session id look
// here, so one mutex is plenty.
class session_registry {
public:
    std::string create()
    {
        auto id = random_session_id();
        std::lock_guard lock{mutex_};
        ids_.insert(id);
        return id;
    }

    bool contains(std::string_view id) const
    {
        std::lock_guard lock{mutex_};
        return ids_.find(id) != ids_.end();
    }

    bool remove(std::string_view id)
    {
        std::lock_guard lock{mutex_};
        auto const it = ids_.find(id);
        if (it == ids_.end())
            return false;
        ids_.erase(it);
        return true;
    }

private:
    mutable std::mutex mutex_;
    std::unordered_set<std::string, string_hash, std::equal_to<>> ids_;
};

// Legacy HTTP+SSE sessions: the id announced in an `endpoint` event, mapped to the
// connection that carries the stream. POSTs to /messages may arrive on any thread; they hand
// the reply to the stream's own executor.
class legacy_stream_registry {
public:
    void add(std::string const& id, std::weak_ptr<connection> stream)
    {
        std::lock_guard lock{mutex_};
        streams_[id] = std::move(stream);
    }

    std::shared_ptr<connection> find(std::string_view id) const
    {
        std::lock_guard lock{mutex_};
        auto const it = streams_.find(id);
        return it == streams_.end() ? nullptr : it->second.lock();
    }

    void remove(std::string const& id)
    {
        std::lock_guard lock{mutex_};
        streams_.erase(id);
    }

private:
    mutable std::mutex mutex_;
    std::unordered_map<std::string, std::weak_ptr<connection>, string_hash, std::equal_to<>> streams_;
};

struct backend_state {
    std::string name;
    std::chrono::milliseconds sse_interval{1000};
    // GET /mcp streams send their head and then nothing (the benchmark's silent streams).
    bool silent_streams = false;
    json::value tools = json::parse(tools_list_json);
    session_registry sessions;
    legacy_stream_registry legacy_streams;
};

//------------------------------------------------------------------------------
// The outcome of running the JSON-RPC message(s) of one POST body.
struct rpc_exchange {
    bool parse_error = false;
    bool opened_session = false;        // an `initialize` was answered
    std::chrono::milliseconds delay{0}; // the sleep tool: answer no earlier than this
    std::optional<json::value> reply;   // empty when only notifications/responses came in
};

//------------------------------------------------------------------------------
// One client connection. It serves plain request/response exchanges and, for the SSE and
// chunked routes, turns into a chunked stream fed by a queue of ready-made chunks.
class connection : public std::enable_shared_from_this<connection> {
public:
    connection(tcp::socket socket, backend_state& state)
        : socket_(std::move(socket)), timer_(socket_.get_executor()), state_(state)
    {
    }

    ~connection()
    {
        if (!legacy_session_.empty())
            state_.legacy_streams.remove(legacy_session_);
    }

    void start() { do_read(); }

    net::any_io_executor executor() { return socket_.get_executor(); }

    // Queues one chunk of a stream for writing. Must run on this connection's executor.
    void send_chunk(std::string chunk)
    {
        if (!socket_.is_open() || !streaming_)
            return;
        chunks_.push_back(std::move(chunk));
        pump_stream();
    }

private:
    enum class stream_kind { none, mcp_ticks, legacy, counter, chunked_echo };

    //--------------------------------------------------------------------------
    // Request/response cycle

    void do_read()
    {
        // A fresh parser per request is how Beast resets its state; the buffer is kept, so
        // bytes of a pipelined next request are not lost.
        parser_.emplace();
        parser_->header_limit(header_limit);
        parser_->body_limit(body_limit);
        http::async_read_header(socket_, buffer_, *parser_,
                                beast::bind_front_handler(&connection::on_read_header, shared_from_this()));
    }

    // The head is read first only so that a client waiting on `Expect: 100-continue` (curl
    // does, for larger bodies) is told to go on instead of stalling for a second.
    void on_read_header(beast::error_code ec, std::size_t)
    {
        if (ec)
            return on_read(ec, 0);
        auto const& req = parser_->get();
        if (req.version() >= 11 && beast::iequals(req[http::field::expect], "100-continue")) {
            static constexpr std::string_view continue_line = "HTTP/1.1 100 Continue\r\n\r\n";
            return net::async_write(
                socket_, net::buffer(continue_line),
                beast::bind_front_handler(&connection::on_write_continue, shared_from_this()));
        }
        do_read_body();
    }

    void on_write_continue(beast::error_code ec, std::size_t)
    {
        if (ec)
            return do_close();
        do_read_body();
    }

    void do_read_body()
    {
        if (parser_->is_done()) // no body: skip a trip through the io_context
            return handle_request();
        http::async_read(socket_, buffer_, *parser_,
                         beast::bind_front_handler(&connection::on_read, shared_from_this()));
    }

    void on_read(beast::error_code ec, std::size_t)
    {
        if (ec == http::error::end_of_stream || ec == net::error::operation_aborted)
            return do_close();
        if (ec) {
            if (ec == http::error::header_limit)
                return fail_request(http::status::request_header_fields_too_large);
            if (ec == http::error::body_limit)
                return fail_request(http::status::payload_too_large);
            // Any other error of Beast's HTTP category is a malformed request.
            if (ec.category() == beast::error_code{http::error::end_of_stream}.category())
                return fail_request(http::status::bad_request);
            return do_close();
        }
        handle_request();
    }

    // A request we could not parse: answer it and hang up, since the framing is unknown.
    void fail_request(http::status status)
    {
        res_ = {};
        res_.version(11);
        res_.keep_alive(false);
        res_.set("X-Backend", state_.name);
        head_ = false;
        json::object error;
        error.emplace("error", http::obsolete_reason(status));
        send_json(status, json::serialize(error));
    }

    void handle_request()
    {
        auto const& req = parser_->get();
        head_ = req.method() == http::verb::head;

        res_ = {};
        res_.version(req.version());
        res_.keep_alive(req.keep_alive());
        res_.set("X-Backend", state_.name);

        auto const [path, query] = split_target(req.target());
        if (path == "/mcp")
            return route_mcp();
        if (path == "/sse")
            return query_param(query, "n") ? route_sse_counter(query) : route_legacy_sse();
        if (path == "/messages")
            return route_legacy_messages(query);
        if (path == "/health")
            return route_health();
        if (path == "/echo")
            return route_echo();
        if (path == "/headers")
            return route_headers();
        if (path.starts_with("/status/"))
            return route_status(path.substr(8));
        if (path == "/delay")
            return route_delay(query);
        if (path == "/close")
            return route_close();
        send_json(http::status::not_found, R"({"error":"not found"})");
    }

    void send_json(http::status status, std::string_view body)
    {
        res_.result(status);
        res_.set(http::field::content_type, "application/json");
        res_.body() = body;
        send_response();
    }

    void send_method_not_allowed(std::string_view allow)
    {
        res_.set(http::field::allow, allow);
        send_json(http::status::method_not_allowed, R"({"error":"method not allowed"})");
    }

    // Frames res_ and writes it, after `delay` if one is asked for (the timer keeps the
    // thread free for other connections meanwhile).
    void send_response(std::chrono::milliseconds delay = 0ms)
    {
        if (body_forbidden(res_.result())) {
            res_.body().clear();
            res_.erase(http::field::content_length);
        } else {
            res_.prepare_payload();
        }
        // HEAD: the same Content-Length a GET would get, but no body.
        if (head_)
            res_.body().clear();

        if (delay <= 0ms)
            return do_write();
        timer_.expires_after(delay);
        timer_.async_wait(beast::bind_front_handler(&connection::on_delay, shared_from_this()));
    }

    void on_delay(beast::error_code ec)
    {
        if (ec || !socket_.is_open())
            return;
        deliver_legacy_reply();
        do_write();
    }

    void do_write()
    {
        http::async_write(socket_, res_,
                          beast::bind_front_handler(&connection::on_write, shared_from_this()));
    }

    void on_write(beast::error_code ec, std::size_t)
    {
        if (ec)
            return do_close();
        if (!res_.keep_alive())
            return do_shutdown();
        do_read();
    }

    // Graceful end after a `Connection: close` response. Closing at once while the client
    // still sends (a pipelined request, an unread body) would answer with a RST, which can
    // destroy our response in the client's receive buffer before it reads it. So: FIN, then
    // read and discard until the client closes too, or for a couple of seconds at most.
    void do_shutdown()
    {
        beast::error_code ec;
        socket_.shutdown(tcp::socket::shutdown_send, ec);
        timer_.expires_after(2s);
        timer_.async_wait([self = shared_from_this()](beast::error_code e) {
            if (!e)
                self->do_close();
        });
        do_drain();
    }

    void do_drain()
    {
        socket_.async_read_some(net::buffer(discard_),
                                beast::bind_front_handler(&connection::on_drain, shared_from_this()));
    }

    void on_drain(beast::error_code ec, std::size_t)
    {
        if (ec)
            return do_close();
        do_drain();
    }

    void do_close()
    {
        beast::error_code ec;
        timer_.cancel();
        if (socket_.is_open())
            socket_.close(ec);
        streaming_ = false;
        if (!legacy_session_.empty()) {
            state_.legacy_streams.remove(legacy_session_);
            legacy_session_.clear();
        }
    }

    //--------------------------------------------------------------------------
    // Streamed (chunked) responses: SSE streams and the chunked echo

    // The head of every SSE response.
    void set_event_stream_headers()
    {
        res_.set(http::field::content_type, "text/event-stream");
        res_.set(http::field::cache_control, "no-cache");
    }

    // Writes the head prepared in res_ as the start of a chunked stream. Chunks queued with
    // send_chunk() follow as soon as the head is out. Streams that never end watch the socket
    // so that a client hanging up is noticed at once, not at the next write.
    void start_stream(stream_kind kind)
    {
        res_.result(http::status::ok);
        stream_res_ = http::response<http::empty_body>{std::move(res_.base())};
        // HTTP/1.0 has no chunked coding: the stream is the rest of the connection.
        chunked_ = stream_res_.version() >= 11;
        if (chunked_)
            stream_res_.chunked(true);
        else
            stream_res_.keep_alive(false);

        kind_ = head_ ? stream_kind::none : kind;
        streaming_ = !head_;
        stream_ending_ = false;
        stream_writing_ = true; // the head goes first
        chunks_.clear();
        stream_sr_.emplace(stream_res_);
        http::async_write_header(socket_, *stream_sr_,
                                 beast::bind_front_handler(&connection::on_write_head, shared_from_this()));

        if (kind_ == stream_kind::mcp_ticks || kind_ == stream_kind::legacy)
            do_watch_disconnect();
    }

    void on_write_head(beast::error_code ec, std::size_t)
    {
        if (ec)
            return do_close();
        stream_writing_ = false;
        if (head_)
            return finish_stream();
        pump_stream();
    }

    // Starts the next write, if any and if none is under way.
    void pump_stream()
    {
        if (stream_writing_ || !socket_.is_open())
            return;
        if (!chunks_.empty())
            return do_write_chunk();
        if (stream_ending_)
            do_write_last_chunk();
    }

    void do_write_chunk()
    {
        stream_writing_ = true;
        chunk_ = std::move(chunks_.front());
        chunks_.pop_front();
        auto handler = beast::bind_front_handler(&connection::on_write_chunk, shared_from_this());
        if (chunked_)
            net::async_write(socket_, http::make_chunk(net::buffer(chunk_)), std::move(handler));
        else
            net::async_write(socket_, net::buffer(chunk_), std::move(handler));
    }

    void on_write_chunk(beast::error_code ec, std::size_t)
    {
        if (ec)
            return do_close();
        stream_writing_ = false;
        pump_stream();
    }

    // Ends a finite stream once everything queued so far is written.
    void end_stream()
    {
        stream_ending_ = true;
        pump_stream();
    }

    void do_write_last_chunk()
    {
        if (!chunked_)
            return do_shutdown();
        stream_writing_ = true;
        net::async_write(socket_, http::make_chunk_last(),
                         beast::bind_front_handler(&connection::on_write_last_chunk, shared_from_this()));
    }

    void on_write_last_chunk(beast::error_code ec, std::size_t)
    {
        if (ec)
            return do_close();
        finish_stream();
    }

    // The stream's response is complete: back to keep-alive.
    void finish_stream()
    {
        streaming_ = false;
        stream_writing_ = false;
        kind_ = stream_kind::none;
        stream_sr_.reset();
        if (!stream_res_.keep_alive())
            return do_shutdown();
        do_read();
    }

    // Endless streams only ever get bytes from the client when it misbehaves; what matters is
    // the EOF or reset that tells us it is gone.
    void do_watch_disconnect()
    {
        socket_.async_read_some(
            net::buffer(discard_),
            beast::bind_front_handler(&connection::on_watch_disconnect, shared_from_this()));
    }

    void on_watch_disconnect(beast::error_code ec, std::size_t)
    {
        if (ec)
            return do_close();
        do_watch_disconnect();
    }

    // Periodic streams (ticks, /sse?n=) produce their next event from the timer.
    void do_wait_next_event(std::chrono::milliseconds interval)
    {
        timer_.expires_after(interval);
        timer_.async_wait(beast::bind_front_handler(&connection::on_next_event, shared_from_this()));
    }

    void on_next_event(beast::error_code ec)
    {
        if (ec || !streaming_)
            return;
        if (kind_ == stream_kind::mcp_ticks)
            return send_tick();
        if (kind_ == stream_kind::counter)
            return send_counter_event();
    }

    //--------------------------------------------------------------------------
    // Streamable HTTP: /mcp

    void route_mcp()
    {
        auto const& req = parser_->get();
        auto const sid = req.find("Mcp-Session-Id");
        bool const has_session = sid != req.end();
        if (has_session && !state_.sessions.contains(sid->value()))
            return send_json(http::status::not_found, session_not_found_body);

        switch (req.method()) {
        case http::verb::post:
            return route_mcp_post();
        case http::verb::get:
        case http::verb::head:
            return route_mcp_stream();
        case http::verb::delete_:
            if (!has_session)
                return send_json(http::status::bad_request,
                                 R"({"jsonrpc":"2.0","error":{"code":-32000,)"
                                 R"("message":"Mcp-Session-Id header is required"},"id":null})");
            state_.sessions.remove(sid->value());
            res_.result(http::status::ok);
            return send_response();
        default:
            return send_method_not_allowed("GET, POST, DELETE");
        }
    }

    void route_mcp_post()
    {
        auto ex = run_rpc(parser_->get().body());
        if (ex.parse_error)
            return send_json(http::status::bad_request, parse_error_body);
        if (!ex.reply) {
            res_.result(http::status::accepted);
            return send_response(ex.delay);
        }
        if (ex.opened_session)
            res_.set("Mcp-Session-Id", state_.sessions.create());
        res_.result(http::status::ok);
        res_.set(http::field::content_type, "application/json");
        res_.body() = json::serialize(*ex.reply);
        send_response(ex.delay);
    }

    void route_mcp_stream()
    {
        auto const accept = parser_->get()[http::field::accept];
        if (accept.find("text/event-stream") == std::string_view::npos)
            return send_json(http::status::not_acceptable,
                             R"({"jsonrpc":"2.0","error":{"code":-32000,)"
                             R"("message":"Not Acceptable: Accept must include )"
                             R"(text/event-stream"},"id":null})");
        set_event_stream_headers();
        start_stream(stream_kind::mcp_ticks);
        if (streaming_ && !state_.silent_streams) {
            ticks_ = 0;
            send_tick();
        }
    }

    void send_tick()
    {
        auto text = "tick " + std::to_string(++ticks_) + " from " + state_.name;
        json::value note = {{"jsonrpc", "2.0"},
                            {"method", "notifications/message"},
                            {"params", {{"level", "info"}, {"data", std::move(text)}}}};
        send_chunk(sse_event("message", json::serialize(note)));
        do_wait_next_event(state_.sse_interval);
    }

    //--------------------------------------------------------------------------
    // Legacy HTTP+SSE: GET /sse, POST /messages?sessionId=

    void route_legacy_sse()
    {
        auto const method = parser_->get().method();
        if (method != http::verb::get && method != http::verb::head)
            return send_method_not_allowed("GET");
        set_event_stream_headers();
        start_stream(stream_kind::legacy);
        if (!streaming_)
            return;
        legacy_session_ = random_session_id();
        state_.legacy_streams.add(legacy_session_, weak_from_this());
        send_chunk(sse_event("endpoint", "/messages?sessionId=" + legacy_session_));
    }

    void route_legacy_messages(std::string_view query)
    {
        if (parser_->get().method() != http::verb::post)
            return send_method_not_allowed("POST");
        // The TypeScript SDK names the parameter sessionId, the Python SDK session_id.
        auto id = query_param(query, "sessionId");
        if (!id)
            id = query_param(query, "session_id");
        auto stream = id ? state_.legacy_streams.find(*id) : nullptr;
        if (!stream)
            return send_json(http::status::not_found, session_not_found_body);

        auto ex = run_rpc(parser_->get().body());
        if (ex.parse_error)
            return send_json(http::status::bad_request, parse_error_body);
        if (ex.reply) {
            legacy_target_ = std::move(stream);
            legacy_reply_ = sse_event("message", json::serialize(*ex.reply));
        }
        res_.result(http::status::accepted);
        res_.set(http::field::content_type, "text/plain");
        res_.body() = "Accepted";
        if (ex.delay <= 0ms)
            deliver_legacy_reply();
        send_response(ex.delay);
    }

    // Hands the reply of a /messages POST to the thread that owns its SSE stream.
    void deliver_legacy_reply()
    {
        if (!legacy_target_)
            return;
        auto target = std::move(legacy_target_);
        net::post(target->executor(), [target, event = std::move(legacy_reply_)]() mutable {
            target->send_chunk(std::move(event));
        });
    }

    //--------------------------------------------------------------------------
    // JSON-RPC

    rpc_exchange run_rpc(std::string_view body)
    {
        rpc_exchange ex;
        // Everything parsed or built for this request lives in the arena, which is rewound
        // here; the previous request's values are gone by now.
        arena_.release();
        json::storage_ptr sp{&arena_};
        json_parser_.reset(sp);
        beast::error_code ec;
        json_parser_.write(body.data(), body.size(), ec);
        if (ec) {
            ex.parse_error = true;
            return ex;
        }
        json::value const message = json_parser_.release();

        if (auto const* batch = message.if_array(); batch && !batch->empty()) {
            json::array replies(sp);
            for (auto const& m : *batch)
                if (auto r = handle_rpc(m, ex, sp))
                    replies.push_back(std::move(*r));
            if (!replies.empty())
                ex.reply = json::value(std::move(replies));
            return ex;
        }
        ex.reply = handle_rpc(message, ex, sp);
        return ex;
    }

    // Answers one JSON-RPC message; nothing for notifications and for client responses.
    std::optional<json::value> handle_rpc(json::value const& message, rpc_exchange& ex, json::storage_ptr sp)
    {
        static json::value const null_id;
        auto const* msg = message.if_object();
        if (!msg)
            return rpc_error(null_id, -32600, "Invalid Request", sp);
        auto const* id = msg->if_contains("id");
        auto const* method = msg->if_contains("method");
        if (!method || !method->is_string()) {
            if (id && (msg->contains("result") || msg->contains("error")))
                return std::nullopt; // a response to a server request we never made
            return rpc_error(id ? *id : null_id, -32600, "Invalid Request", sp);
        }
        if (!id)
            return std::nullopt; // a notification

        json::object const* params = nullptr;
        if (auto const* p = msg->if_contains("params"))
            params = p->if_object();

        auto const name = method->get_string();
        if (name == "tools/call")
            return call_tool(*id, params, ex, sp);
        if (name == "initialize") {
            ex.opened_session = true;
            return rpc_result(*id, initialize_result(params, sp), sp);
        }
        if (name == "ping")
            return rpc_result(*id, json::object(sp), sp);
        if (name == "tools/list")
            return rpc_result(*id, json::value(state_.tools, sp), sp);
        return rpc_error(*id, -32601, "Method not found", sp);
    }

    json::value initialize_result(json::object const* params, json::storage_ptr sp)
    {
        std::string_view version = default_protocol_version;
        if (params)
            if (auto const* requested = params->if_contains("protocolVersion"))
                if (auto const* s = requested->if_string())
                    if (std::ranges::find(known_protocol_versions, std::string_view{*s}) !=
                        known_protocol_versions.end())
                        version = *s;

        json::object capabilities(sp);
        capabilities.emplace("tools", json::object(sp));
        json::object server_info(sp);
        server_info.emplace("name", "turnout-mock");
        server_info.emplace("version", "1.0.0");
        json::object result(sp);
        result.emplace("protocolVersion", version);
        result.emplace("capabilities", std::move(capabilities));
        result.emplace("serverInfo", std::move(server_info));
        return result;
    }

    json::value call_tool(json::value const& id, json::object const* params, rpc_exchange& ex,
                          json::storage_ptr sp)
    {
        json::string const* tool = nullptr;
        json::object const* args = nullptr;
        if (params) {
            if (auto const* n = params->if_contains("name"))
                tool = n->if_string();
            if (auto const* a = params->if_contains("arguments"))
                args = a->if_object();
        }
        if (!tool)
            return rpc_error(id, -32602, "Invalid params: tool name is required", sp);

        if (*tool == "echo") {
            json::value const* text = args ? args->if_contains("text") : nullptr;
            if (!text || !text->is_string())
                return rpc_error(id, -32602, "Invalid params: echo needs a string 'text'", sp);
            return rpc_result(id, text_content(text->get_string(), sp), sp);
        }
        if (*tool == "whoami")
            return rpc_result(id, text_content(state_.name, sp), sp);
        if (*tool == "sleep") {
            json::value const* ms = args ? args->if_contains("ms") : nullptr;
            std::optional<std::int64_t> value;
            if (ms && ms->is_int64())
                value = ms->get_int64();
            else if (ms && ms->is_uint64())
                value = static_cast<std::int64_t>(
                    std::min<std::uint64_t>(ms->get_uint64(), static_cast<std::uint64_t>(max_delay.count())));
            if (!value || *value < 0)
                return rpc_error(id, -32602, "Invalid params: sleep needs an integer 'ms' >= 0", sp);
            ex.delay = std::max(ex.delay, clamp_delay(*value));
            return rpc_result(id, text_content("slept " + std::to_string(*value) + " ms", sp), sp);
        }
        return rpc_error(id, -32602, "Unknown tool: " + std::string{*tool}, sp);
    }

    //--------------------------------------------------------------------------
    // Test helpers

    bool is_get() const
    {
        auto const method = parser_->get().method();
        return method == http::verb::get || method == http::verb::head;
    }

    void route_health()
    {
        if (!is_get())
            return send_method_not_allowed("GET, HEAD");
        send_json(http::status::ok, R"({"status":"ok"})");
    }

    void route_echo()
    {
        auto& req = parser_->get();
        auto const method = req.method();
        if (method != http::verb::post && method != http::verb::put && !head_)
            return send_method_not_allowed("POST, PUT, HEAD");

        if (auto const type = req[http::field::content_type]; !type.empty())
            res_.set(http::field::content_type, type);
        if (req["X-Chunked-Response"] != "1") {
            res_.result(http::status::ok);
            res_.body() = std::move(req.body());
            return send_response();
        }

        // Three chunks (fewer for tiny bodies), so that framing is really exercised.
        start_stream(stream_kind::chunked_echo);
        if (!streaming_)
            return;
        std::string_view const body = req.body();
        std::size_t const part = (body.size() + 2) / 3;
        for (std::size_t pos = 0; pos < body.size(); pos += part)
            send_chunk(std::string{body.substr(pos, part)});
        end_stream();
    }

    // Any method: framing tests POST bodies here too, to see how they were forwarded.
    void route_headers()
    {
        auto const& req = parser_->get();
        json::array headers;
        for (auto const& field : req)
            headers.push_back(json::array{field.name_string(), field.value()});
        json::object seen;
        seen["method"] = req.method_string();
        seen["target"] = req.target();
        seen["version"] = req.version() == 10 ? "HTTP/1.0" : "HTTP/1.1";
        seen["headers"] = std::move(headers);
        seen["body_length"] = req.body().size();
        send_json(http::status::ok, json::serialize(seen));
    }

    // /sse?n=N&interval_ms=M: N events "data: event I", M ms apart, then the end.
    void route_sse_counter(std::string_view query)
    {
        if (!is_get())
            return send_method_not_allowed("GET, HEAD");
        auto const n = parse_int<std::uint64_t>(query_param(query, "n").value_or(""));
        auto const interval = parse_int<std::int64_t>(query_param(query, "interval_ms").value_or("0"));
        if (!n || !interval)
            return send_json(http::status::bad_request, R"({"error":"bad n or interval_ms"})");

        set_event_stream_headers();
        start_stream(stream_kind::counter);
        if (!streaming_)
            return;
        events_wanted_ = *n;
        events_sent_ = 0;
        counter_interval_ = clamp_delay(*interval);
        send_counter_event();
    }

    void send_counter_event()
    {
        if (events_sent_ == events_wanted_)
            return end_stream();
        send_chunk(sse_event({}, "event " + std::to_string(++events_sent_)));
        if (events_sent_ == events_wanted_)
            return end_stream();
        do_wait_next_event(counter_interval_);
    }

    void route_status(std::string_view code_text)
    {
        if (!is_get())
            return send_method_not_allowed("GET, HEAD");
        auto const code = parse_int<unsigned>(code_text);
        if (!code || *code < 200 || *code > 599)
            return send_json(http::status::bad_request, R"({"error":"status must be 200-599"})");
        auto const status = static_cast<http::status>(*code);
        res_.result(*code);
        if (!body_forbidden(status)) {
            res_.set(http::field::content_type, "application/json");
            res_.body() = R"({"status":)" + std::to_string(*code) + "}";
        }
        send_response();
    }

    void route_delay(std::string_view query)
    {
        auto const method = parser_->get().method();
        if (method != http::verb::post && !is_get())
            return send_method_not_allowed("GET, POST, HEAD");
        auto const ms = parse_int<std::int64_t>(query_param(query, "ms").value_or("0"));
        if (!ms || *ms < 0)
            return send_json(http::status::bad_request, R"({"error":"bad ms"})");
        auto const delay = clamp_delay(*ms);
        res_.result(http::status::ok);
        res_.set(http::field::content_type, "application/json");
        res_.body() = R"({"delayed":)" + std::to_string(delay.count()) + "}";
        send_response(delay);
    }

    void route_close()
    {
        res_.keep_alive(false);
        send_json(http::status::ok, R"({"closing":true})");
    }

    //--------------------------------------------------------------------------

    tcp::socket socket_;
    net::steady_timer timer_;
    backend_state& state_;
    beast::flat_buffer buffer_;
    std::optional<http::request_parser<http::string_body>> parser_;
    http::response<http::string_body> res_;
    bool head_ = false;

    // JSON-RPC: a reusable parser and an arena that covers typical messages without malloc.
    unsigned char parser_stack_[1024];
    json::parser json_parser_{json::storage_ptr{}, json::parse_options{}, parser_stack_};
    unsigned char arena_buffer_[8192];
    json::monotonic_resource arena_{arena_buffer_, sizeof arena_buffer_};

    // Streams
    http::response<http::empty_body> stream_res_;
    std::optional<http::response_serializer<http::empty_body>> stream_sr_;
    std::deque<std::string> chunks_;
    std::string chunk_; // the chunk being written
    stream_kind kind_ = stream_kind::none;
    bool streaming_ = false;
    bool stream_writing_ = false;
    bool stream_ending_ = false;
    bool chunked_ = true;
    std::array<char, 512> discard_{};
    std::uint64_t ticks_ = 0;
    std::uint64_t events_wanted_ = 0;
    std::uint64_t events_sent_ = 0;
    std::chrono::milliseconds counter_interval_{0};

    // Legacy transport: the stream this connection carries, or the reply a POST passes on.
    std::string legacy_session_;
    std::shared_ptr<connection> legacy_target_;
    std::string legacy_reply_;
};

//------------------------------------------------------------------------------
// Accepts connections on one io_context.
class listener : public std::enable_shared_from_this<listener> {
public:
    listener(tcp::acceptor acceptor, backend_state& state)
        : acceptor_(std::move(acceptor)), retry_timer_(acceptor_.get_executor()), state_(state)
    {
    }

    void start() { do_accept(); }

private:
    void do_accept()
    {
        acceptor_.async_accept(beast::bind_front_handler(&listener::on_accept, shared_from_this()));
    }

    void on_accept(beast::error_code ec, tcp::socket socket)
    {
        if (ec == net::error::operation_aborted)
            return;
        if (ec) {
            // Typically EMFILE: back off a little instead of spinning on the error.
            std::fprintf(stderr, "accept: %s\n", ec.message().c_str());
            retry_timer_.expires_after(50ms);
            retry_timer_.async_wait([self = shared_from_this()](beast::error_code e) {
                if (!e)
                    self->do_accept();
            });
            return;
        }
        // SSE events are small writes that must leave at once.
        socket.set_option(tcp::no_delay(true), ec);
        std::make_shared<connection>(std::move(socket), state_)->start();
        do_accept();
    }

    tcp::acceptor acceptor_;
    net::steady_timer retry_timer_;
    backend_state& state_;
};

using reuse_port = net::detail::socket_option::boolean<SOL_SOCKET, SO_REUSEPORT>;

tcp::acceptor open_acceptor(net::io_context& ioc, tcp::endpoint const& endpoint, bool share_port)
{
    tcp::acceptor acceptor{ioc};
    acceptor.open(endpoint.protocol());
    acceptor.set_option(net::socket_base::reuse_address(true));
    if (share_port)
        acceptor.set_option(reuse_port(true));
    acceptor.bind(endpoint);
    acceptor.listen(net::socket_base::max_listen_connections);
    return acceptor;
}

//------------------------------------------------------------------------------
// Command line

struct options {
    std::string host = "127.0.0.1";
    std::string port = "0";
    std::string name = "mock";
    unsigned threads = 1;
    std::chrono::milliseconds sse_interval{1000};
    bool silent_streams = false;
    // Listen with a backlog of 0 and never accept: once one connection waits in the queue the
    // kernel drops further SYNs, so a connect to this address hangs (connect_timeout tests).
    bool no_accept = false;
};

[[noreturn]] void usage(char const* why)
{
    std::fprintf(stderr,
                 "turnout-mock-backend: %s\n"
                 "usage: turnout-mock-backend [--listen HOST:PORT] [--name NAME] "
                 "[--threads N] [--sse-interval-ms N] [--silent-streams] [--no-accept]\n",
                 why);
    std::exit(2);
}

options parse_options(int argc, char** argv)
{
    options opts;
    for (int i = 1; i < argc; ++i) {
        std::string_view arg = argv[i];
        std::string value;
        if (arg == "--no-accept") {
            opts.no_accept = true;
            continue;
        }
        if (arg == "--silent-streams") {
            opts.silent_streams = true;
            continue;
        }
        // Both "--opt VALUE" and "--opt=VALUE".
        auto const eq = arg.find('=');
        if (eq != std::string_view::npos) {
            value = arg.substr(eq + 1);
            arg = arg.substr(0, eq);
        } else if (arg == "--help" || arg == "-h") {
            usage("a mock MCP backend");
        } else if (i + 1 < argc) {
            value = argv[++i];
        } else {
            usage("missing value");
        }

        if (arg == "--listen") {
            auto const colon = value.rfind(':');
            if (colon == std::string::npos)
                usage("--listen wants HOST:PORT");
            opts.host = value.substr(0, colon);
            opts.port = value.substr(colon + 1);
            if (opts.host.size() >= 2 && opts.host.front() == '[' && opts.host.back() == ']')
                opts.host = opts.host.substr(1, opts.host.size() - 2);
        } else if (arg == "--name") {
            opts.name = value;
        } else if (arg == "--threads") {
            auto const n = parse_int<unsigned>(value);
            if (!n || *n == 0 || *n > 1024)
                usage("--threads wants a number from 1 to 1024");
            opts.threads = *n;
        } else if (arg == "--sse-interval-ms") {
            auto const n = parse_int<std::int64_t>(value);
            if (!n || *n <= 0)
                usage("--sse-interval-ms wants a positive number");
            opts.sse_interval = std::chrono::milliseconds{*n};
        } else {
            usage("unknown option");
        }
    }
    return opts;
}

tcp::endpoint resolve_listen_address(options const& opts)
{
    auto const port = parse_int<unsigned short>(opts.port);
    if (!port)
        usage("bad port");
    beast::error_code ec;
    auto const address = net::ip::make_address(opts.host, ec);
    if (!ec)
        return {address, *port};
    // A host name such as "localhost": take its first address.
    net::io_context ioc;
    tcp::resolver resolver{ioc};
    auto const results = resolver.resolve(opts.host, opts.port);
    return *results.begin();
}

std::string format_endpoint(tcp::endpoint const& ep)
{
    auto const address = ep.address().to_string();
    auto const port = std::to_string(ep.port());
    return ep.address().is_v6() ? "[" + address + "]:" + port : address + ":" + port;
}

// One thread and one io_context. The listener's pending accept keeps run() going; stop() is
// what ends it.
struct worker {
    net::io_context ioc{1};
    std::thread thread;

    void run()
    {
        for (;;) {
            try {
                ioc.run();
                return;
            } catch (std::exception const& e) {
                // A bug in one exchange must not take the whole backend down mid-test.
                std::fprintf(stderr, "turnout-mock-backend: %s\n", e.what());
            }
        }
    }
};

} // namespace

int main(int argc, char** argv)
{
    auto const opts = parse_options(argc, argv);
    try {
        backend_state state;
        state.name = opts.name;
        state.sse_interval = opts.sse_interval;
        state.silent_streams = opts.silent_streams;

        // Install the signal handlers before announcing the port, so that a test which
        // stops us right after reading "listening on" gets a clean exit.
        net::io_context main_ioc{1};
        net::signal_set signals{main_ioc, SIGINT, SIGTERM};

        std::vector<std::unique_ptr<worker>> workers;
        tcp::endpoint endpoint = resolve_listen_address(opts);
        std::optional<tcp::acceptor> never_accepting;
        if (opts.no_accept) {
            never_accepting.emplace(main_ioc);
            never_accepting->open(endpoint.protocol());
            never_accepting->bind(endpoint);
            never_accepting->listen(0);
            endpoint = never_accepting->local_endpoint();
        }
        bool const share_port = opts.threads > 1;
        for (unsigned i = 0; !opts.no_accept && i < opts.threads; ++i) {
            auto w = std::make_unique<worker>();
            auto acceptor = open_acceptor(w->ioc, endpoint, share_port);
            // Port 0 picks a port for the first acceptor; the others must join that one.
            endpoint = acceptor.local_endpoint();
            std::make_shared<listener>(std::move(acceptor), state)->start();
            workers.push_back(std::move(w));
        }

        std::printf("listening on %s\n", format_endpoint(endpoint).c_str());
        std::fflush(stdout);

        for (auto& w : workers)
            w->thread = std::thread([&w = *w] { w.run(); });

        signals.async_wait([&](beast::error_code, int) {
            for (auto& w : workers)
                w->ioc.stop();
        });
        main_ioc.run();
        for (auto& w : workers)
            w->thread.join();
        // Connections still open die with their io_contexts, before `state` they refer to.
        workers.clear();
        return 0;
    } catch (std::exception const& e) {
        std::fprintf(stderr, "turnout-mock-backend: %s\n", e.what());
        return 1;
    }
}
