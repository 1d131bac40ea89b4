#include "turnout/control/etcd_client.hpp"

#include "turnout/net/endpoint.hpp"

#include <boost/asio/connect.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http.hpp>

#include <array>

namespace turnout::control::etcd {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;

constexpr auto watch_connect_timeout = std::chrono::seconds(2);

http::request<http::string_body> make_request(const config::host_port& to, const std::string& path, std::string body)
{
    http::request<http::string_body> req{http::verb::post, path, 11};
    req.set(http::field::host, to.text);
    req.set(http::field::content_type, "application/json");
    req.body() = std::move(body);
    req.prepare_payload();
    return req;
}

std::string describe(const config::host_port& to, std::string_view what, const boost::system::error_code& ec)
{
    return "etcd at " + to.text + ": " + std::string(what) + ": " + ec.message();
}

} // namespace

// One POST, tried on each endpoint in turn (from the preferred one) until one answers or the
// deadline passes.
struct client::request_op : std::enable_shared_from_this<request_op> {
    request_op(asio::io_context& io, const std::vector<config::host_port>& endpoints, std::shared_ptr<std::size_t> preferred,
               std::string path, std::string body, std::chrono::milliseconds timeout, answer_handler done)
        : stream(io), endpoints(endpoints), preferred(std::move(preferred)), path(std::move(path)), body(std::move(body)),
          deadline(std::chrono::steady_clock::now() + timeout), done(std::move(done))
    {
    }

    void start() { try_endpoint(0); }

    void try_endpoint(std::size_t tried)
    {
        if (tried == endpoints.size() || std::chrono::steady_clock::now() >= deadline)
            return finish(errors.empty() ? "no etcd endpoint answered in time" : errors, {});
        attempt = tried;
        const auto& to = current();
        boost::system::error_code ec;
        const auto endpoint = net::resolve(to, ec);
        if (ec) {
            note(describe(to, "cannot resolve", ec));
            return try_endpoint(tried + 1);
        }
        stream.close();
        stream.expires_at(deadline);
        stream.async_connect(endpoint, [self = shared_from_this()](boost::system::error_code ec) { self->on_connect(ec); });
    }

    void on_connect(boost::system::error_code ec)
    {
        if (ec)
            return next(describe(current(), "connect", ec));
        req = make_request(current(), path, body);
        http::async_write(stream, req, [self = shared_from_this()](boost::system::error_code ec, std::size_t) {
            if (ec)
                return self->next(describe(self->current(), "write", ec));
            http::async_read(self->stream, self->buffer, self->res,
                             [self](boost::system::error_code ec, std::size_t) { self->on_read(ec); });
        });
    }

    void on_read(boost::system::error_code ec)
    {
        if (ec)
            return next(describe(current(), "read", ec));
        stream.close();
        *preferred = (*preferred + attempt) % endpoints.size();
        if (res.result() != http::status::ok)
            return finish("etcd at " + current().text + " answered " + std::to_string(res.result_int()) + ": " +
                              res.body().substr(0, 200),
                          {});
        finish({}, std::move(res.body()));
    }

    void next(std::string error)
    {
        note(std::move(error));
        try_endpoint(attempt + 1);
    }

    void note(std::string error) { errors = errors.empty() ? std::move(error) : errors + "; " + error; }

    void finish(std::string error, std::string answer)
    {
        if (auto d = std::move(done)) {
            done = nullptr;
            d(std::move(error), std::move(answer));
        }
    }

    const config::host_port& current() const { return endpoints[(*preferred + attempt) % endpoints.size()]; }

    beast::tcp_stream stream;
    std::vector<config::host_port> endpoints;
    std::shared_ptr<std::size_t> preferred;
    std::string path;
    std::string body;
    std::chrono::steady_clock::time_point deadline;
    answer_handler done;
    std::size_t attempt = 0;
    std::string errors;
    http::request<http::string_body> req;
    http::response<http::string_body> res;
    beast::flat_buffer buffer;
};

// The watch: one long POST whose answer body is the stream of watch messages.
struct client::watch_op : std::enable_shared_from_this<watch_op> {
    watch_op(asio::io_context& io, config::host_port to, std::string body, message_handler on_message, end_handler on_end)
        : stream(io), to(std::move(to)), on_message(std::move(on_message)), on_end(std::move(on_end))
    {
        req = make_request(this->to, "/v3/watch", std::move(body));
    }

    void start()
    {
        boost::system::error_code ec;
        const auto endpoint = net::resolve(to, ec);
        if (ec)
            return asio::post(stream.get_executor(),
                              [self = shared_from_this(), ec] { self->end(describe(self->to, "cannot resolve", ec)); });
        stream.expires_after(watch_connect_timeout);
        stream.async_connect(endpoint, [self = shared_from_this()](boost::system::error_code ec) {
            if (ec)
                return self->end(describe(self->to, "connect", ec));
            http::async_write(self->stream, self->req, [self](boost::system::error_code ec, std::size_t) {
                if (ec)
                    return self->end(describe(self->to, "write", ec));
                self->parser.body_limit(boost::none);
                http::async_read_header(self->stream, self->buffer, self->parser,
                                        [self](boost::system::error_code ec, std::size_t) { self->on_header(ec); });
            });
        });
    }

    void on_header(boost::system::error_code ec)
    {
        if (ec)
            return end(describe(to, "reading the watch answer", ec));
        if (parser.get().result() != http::status::ok)
            return end("etcd at " + to.text + " answered the watch with " + std::to_string(parser.get().result_int()));
        stream.expires_never(); // a quiet watch is a healthy one
        do_read_body();
    }

    void do_read_body()
    {
        parser.get().body().data = chunk.data();
        parser.get().body().size = chunk.size();
        // read_some: each piece as it arrives (read would wait for a full buffer).
        http::async_read_some(stream, buffer, parser, [self = shared_from_this()](boost::system::error_code ec, std::size_t) {
            self->on_body(ec);
        });
    }

    void on_body(boost::system::error_code ec)
    {
        if (ec == http::error::need_buffer)
            ec = {};
        if (cancelled)
            return;
        const auto got = chunk.size() - parser.get().body().size;
        try {
            for (const auto& v : sequence.feed({chunk.data(), got})) {
                on_message(v);
                if (cancelled)
                    return;
            }
        } catch (const std::exception& e) {
            return end(e.what());
        }
        if (ec)
            return end(describe(to, "watch stream", ec));
        if (parser.is_done())
            return end("etcd at " + to.text + " ended the watch stream");
        do_read_body();
    }

    void end(std::string error)
    {
        if (cancelled)
            return;
        cancel();
        on_end(std::move(error));
    }

    void cancel()
    {
        cancelled = true;
        boost::system::error_code ignored;
        stream.socket().shutdown(asio::ip::tcp::socket::shutdown_both, ignored);
        stream.close();
    }

    beast::tcp_stream stream;
    config::host_port to;
    message_handler on_message;
    end_handler on_end;
    http::request<http::string_body> req;
    http::response_parser<http::buffer_body> parser;
    beast::flat_buffer buffer;
    std::array<char, 8192> chunk{};
    json_sequence sequence;
    bool cancelled = false;
};

client::client(asio::io_context& io, std::vector<config::host_port> endpoints)
    : io_(io), endpoints_(std::move(endpoints)), preferred_shared_(std::make_shared<std::size_t>(0))
{
}

client::~client()
{
    cancel_watch();
}

void client::async_post(std::string path, std::string body, std::chrono::milliseconds timeout, answer_handler done)
{
    std::make_shared<request_op>(io_, endpoints_, preferred_shared_, std::move(path), std::move(body), timeout,
                                 std::move(done))
        ->start();
}

std::string client::post(std::string path, std::string body, std::chrono::milliseconds timeout)
{
    std::string error, answer;
    std::make_shared<request_op>(private_io_, endpoints_, preferred_shared_, std::move(path), std::move(body), timeout,
                                 [&](std::string e, std::string b) {
                                     error = std::move(e);
                                     answer = std::move(b);
                                 })
        ->start();
    private_io_.restart();
    private_io_.run();
    if (!error.empty())
        throw unreachable(error);
    return answer;
}

void client::watch(std::string body, message_handler on_message, end_handler on_end)
{
    cancel_watch();
    watch_ = std::make_shared<watch_op>(io_, endpoints_[*preferred_shared_ % endpoints_.size()], std::move(body),
                                        std::move(on_message), std::move(on_end));
    watch_->start();
}

void client::cancel_watch()
{
    if (watch_)
        watch_->cancel();
    watch_.reset();
}

} // namespace turnout::control::etcd
