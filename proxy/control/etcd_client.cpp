#include "turnout/control/etcd_client.hpp"

#include "turnout/net/endpoint.hpp"

#include <boost/asio/connect.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/error.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>

#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <array>
#include <optional>

namespace turnout::control::etcd {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace ssl = asio::ssl;

constexpr auto watch_connect_timeout = std::chrono::seconds(2);

http::request<http::string_body> make_request(const config::host_port& to, const std::string& path, std::string body,
                                              const std::string& token)
{
    http::request<http::string_body> req{http::verb::post, path, 11};
    req.set(http::field::host, to.text);
    req.set(http::field::content_type, "application/json");
    if (!token.empty())
        req.set(http::field::authorization, token);
    req.body() = std::move(body);
    req.prepare_payload();
    return req;
}

std::string describe(const config::host_port& to, std::string_view what, const boost::system::error_code& ec)
{
    return "etcd at " + to.text + ": " + std::string(what) + ": " + ec.message();
}

// A connection to one endpoint: plain TCP, or TLS over it. Beast's HTTP operations read and
// write through it whichever it is.
class etcd_stream {
public:
    using executor_type = asio::any_io_executor;

    etcd_stream(asio::io_context& io, ssl::context* tls)
    {
        if (tls)
            tls_.emplace(io, *tls);
        else
            plain_.emplace(io);
    }

    beast::tcp_stream& tcp() { return tls_ ? tls_->next_layer() : *plain_; }
    executor_type get_executor() { return tcp().get_executor(); }

    template <class Buffers, class Handler> void async_read_some(const Buffers& buffers, Handler&& handler)
    {
        if (tls_)
            tls_->async_read_some(buffers, std::forward<Handler>(handler));
        else
            plain_->async_read_some(buffers, std::forward<Handler>(handler));
    }

    template <class Buffers, class Handler> void async_write_some(const Buffers& buffers, Handler&& handler)
    {
        if (tls_)
            tls_->async_write_some(buffers, std::forward<Handler>(handler));
        else
            plain_->async_write_some(buffers, std::forward<Handler>(handler));
    }

    /// The TLS handshake toward host (its certificate must name it: a DNS name, or an IP
    /// address literal); at once without TLS.
    template <class Handler> void async_handshake(const std::string& host, Handler&& handler)
    {
        if (!tls_)
            return asio::post(get_executor(), [h = std::forward<Handler>(handler)]() mutable { h({}); });
        SSL* native = tls_->native_handle();
        boost::system::error_code ec;
        const auto literal = asio::ip::make_address(host, ec);
        const bool named = ec ? SSL_set_tlsext_host_name(native, host.c_str()) == 1 && SSL_set1_host(native, host.c_str()) == 1
                              : X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(native), literal.to_string().c_str()) == 1;
        if (!named)
            return asio::post(get_executor(), [h = std::forward<Handler>(handler)]() mutable {
                h(boost::system::error_code(asio::error::invalid_argument)); // a host OpenSSL cannot check against
            });
        tls_->async_handshake(ssl::stream_base::client, std::forward<Handler>(handler));
    }

    void close()
    {
        boost::system::error_code ignored;
        tcp().socket().shutdown(asio::ip::tcp::socket::shutdown_both, ignored);
        tcp().close();
    }

private:
    std::optional<beast::ssl_stream<beast::tcp_stream>> tls_;
    std::optional<beast::tcp_stream> plain_;
};

std::unique_ptr<ssl::context> make_tls_context(const client_options& o)
{
    if (!o.tls)
        return nullptr;
    auto ctx = std::make_unique<ssl::context>(ssl::context::tls_client);
    SSL_CTX_set_min_proto_version(ctx->native_handle(), TLS1_2_VERSION);
    ctx->set_verify_mode(ssl::verify_peer);
    const auto load = [](const std::string& what, const std::string& path, auto step) {
        try {
            step();
        } catch (const boost::system::system_error& e) {
            throw std::runtime_error("etcd: cannot load the " + what + " " + path + ": " + e.code().message());
        }
    };
    if (o.ca_file.empty())
        ctx->set_default_verify_paths();
    else
        load("CA file", o.ca_file, [&] { ctx->load_verify_file(o.ca_file); });
    if (!o.cert_file.empty()) {
        load("client certificate", o.cert_file, [&] { ctx->use_certificate_chain_file(o.cert_file); });
        load("client key", o.key_file, [&] { ctx->use_private_key_file(o.key_file, ssl::context::pem); });
    }
    return ctx;
}

/// (error, HTTP status, body): what one request_op ends with.
using raw_handler = std::function<void(std::string error, unsigned status, std::string body)>;

} // namespace

struct client::shared {
    client_options options;
    std::unique_ptr<ssl::context> tls;
    std::string token; // etcd's authentication token (empty: none yet, or none needed)

    bool authenticates() const { return !options.username.empty(); }
};

// One POST, tried on each endpoint in turn (from the preferred one) until one answers or the
// deadline passes.
struct client::request_op : std::enable_shared_from_this<request_op> {
    request_op(asio::io_context& io, ssl::context* tls, const std::vector<config::host_port>& endpoints,
               std::shared_ptr<std::size_t> preferred, std::string path, std::string body, std::string token,
               std::chrono::steady_clock::time_point deadline, raw_handler done)
        : io(io), tls(tls), endpoints(endpoints), preferred(std::move(preferred)), path(std::move(path)),
          body(std::move(body)), token(std::move(token)), deadline(deadline), done(std::move(done))
    {
    }

    void start() { try_endpoint(0); }

    void try_endpoint(std::size_t tried)
    {
        if (tried == endpoints.size() || std::chrono::steady_clock::now() >= deadline)
            return finish(errors.empty() ? "no etcd endpoint answered in time" : errors, 0, {});
        attempt = tried;
        const auto& to = current();
        boost::system::error_code ec;
        const auto endpoint = net::resolve(to, ec);
        if (ec) {
            note(describe(to, "cannot resolve", ec));
            return try_endpoint(tried + 1);
        }
        if (stream)
            stream->close();
        stream.emplace(io, tls); // a TLS session is not reused across connections
        buffer.clear();
        res = {};
        stream->tcp().expires_at(deadline);
        stream->tcp().async_connect(endpoint, [self = shared_from_this()](boost::system::error_code ec) { self->on_connect(ec); });
    }

    void on_connect(boost::system::error_code ec)
    {
        if (ec)
            return next(describe(current(), "connect", ec));
        stream->async_handshake(current().host, [self = shared_from_this()](boost::system::error_code ec) {
            if (ec)
                return self->next(describe(self->current(), "TLS handshake", ec));
            self->do_write();
        });
    }

    void do_write()
    {
        req = make_request(current(), path, body, token);
        http::async_write(*stream, req, [self = shared_from_this()](boost::system::error_code ec, std::size_t) {
            if (ec)
                return self->next(describe(self->current(), "write", ec));
            http::async_read(*self->stream, self->buffer, self->res,
                             [self](boost::system::error_code ec, std::size_t) { self->on_read(ec); });
        });
    }

    void on_read(boost::system::error_code ec)
    {
        if (ec)
            return next(describe(current(), "read", ec));
        stream->close();
        *preferred = (*preferred + attempt) % endpoints.size();
        if (res.result() != http::status::ok)
            return finish("etcd at " + current().text + " answered " + std::to_string(res.result_int()) + ": " +
                              res.body().substr(0, 200),
                          res.result_int(), {});
        finish({}, 200, std::move(res.body()));
    }

    void next(std::string error)
    {
        note(std::move(error));
        try_endpoint(attempt + 1);
    }

    void note(std::string error) { errors = errors.empty() ? std::move(error) : errors + "; " + error; }

    void finish(std::string error, unsigned status, std::string answer)
    {
        if (auto d = std::move(done)) {
            done = nullptr;
            d(std::move(error), status, std::move(answer));
        }
    }

    const config::host_port& current() const { return endpoints[(*preferred + attempt) % endpoints.size()]; }

    asio::io_context& io;
    ssl::context* tls;
    std::optional<etcd_stream> stream;
    std::vector<config::host_port> endpoints;
    std::shared_ptr<std::size_t> preferred;
    std::string path;
    std::string body;
    std::string token;
    std::chrono::steady_clock::time_point deadline;
    raw_handler done;
    std::size_t attempt = 0;
    std::string errors;
    http::request<http::string_body> req;
    http::response<http::string_body> res;
    beast::flat_buffer buffer;
};

// The watch: one long POST whose answer body is the stream of watch messages.
struct client::watch_op : std::enable_shared_from_this<watch_op> {
    watch_op(asio::io_context& io, ssl::context* tls, config::host_port to, std::string body, const std::string& token,
             message_handler on_message, end_handler on_end)
        : stream(io, tls), to(std::move(to)), on_message(std::move(on_message)), on_end(std::move(on_end))
    {
        req = make_request(this->to, "/v3/watch", std::move(body), token);
    }

    void start()
    {
        boost::system::error_code ec;
        const auto endpoint = net::resolve(to, ec);
        if (ec)
            return asio::post(stream.get_executor(),
                              [self = shared_from_this(), ec] { self->end(describe(self->to, "cannot resolve", ec)); });
        stream.tcp().expires_after(watch_connect_timeout);
        stream.tcp().async_connect(endpoint, [self = shared_from_this()](boost::system::error_code ec) {
            if (ec)
                return self->end(describe(self->to, "connect", ec));
            self->stream.async_handshake(self->to.host, [self](boost::system::error_code ec) {
                if (ec)
                    return self->end(describe(self->to, "TLS handshake", ec));
                self->do_write();
            });
        });
    }

    void do_write()
    {
        http::async_write(stream, req, [self = shared_from_this()](boost::system::error_code ec, std::size_t) {
            if (ec)
                return self->end(describe(self->to, "write", ec));
            self->parser.body_limit(boost::none);
            http::async_read_header(self->stream, self->buffer, self->parser,
                                    [self](boost::system::error_code ec, std::size_t) { self->on_header(ec); });
        });
    }

    void on_header(boost::system::error_code ec)
    {
        if (ec)
            return end(describe(to, "reading the watch answer", ec));
        if (parser.get().result() != http::status::ok)
            return end("etcd at " + to.text + " answered the watch with " + std::to_string(parser.get().result_int()));
        stream.tcp().expires_never(); // a quiet watch is a healthy one
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
        stream.close();
    }

    etcd_stream stream;
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

// A POST with etcd's authentication: a token first when there is none, and once more when
// etcd says the one sent is no longer valid (it restarted, or the token's TTL passed).
struct client::post_op : std::enable_shared_from_this<post_op> {
    post_op(asio::io_context& io, std::shared_ptr<client::shared> sh, const std::vector<config::host_port>& endpoints,
            std::shared_ptr<std::size_t> preferred, std::string path, std::string body, std::chrono::milliseconds timeout,
            answer_handler done)
        : io(io), sh(std::move(sh)), endpoints(endpoints), preferred(std::move(preferred)), path(std::move(path)),
          body(std::move(body)), deadline(std::chrono::steady_clock::now() + timeout), done(std::move(done))
    {
    }

    void start()
    {
        if (sh->authenticates() && sh->token.empty())
            return authenticate();
        send();
    }

    void authenticate()
    {
        run("/v3/auth/authenticate", authenticate_request(sh->options.username, sh->options.password), {},
            [self = shared_from_this()](std::string error, unsigned, std::string answer) {
                if (!error.empty())
                    return self->done("etcd authentication as " + self->sh->options.username + ": " + error, {});
                try {
                    self->sh->token = parse_token(answer);
                } catch (const std::exception& e) {
                    return self->done("etcd authentication: " + std::string(e.what()), {});
                }
                self->send();
            });
    }

    void send()
    {
        run(path, body, sh->token, [self = shared_from_this()](std::string error, unsigned status, std::string answer) {
            if (status == 401 && self->sh->authenticates() && !self->retried) {
                self->retried = true;
                self->sh->token.clear();
                return self->authenticate();
            }
            self->done(std::move(error), std::move(answer));
        });
    }

    void run(std::string to, std::string what, std::string token, raw_handler then)
    {
        std::make_shared<request_op>(io, sh->tls.get(), endpoints, preferred, std::move(to), std::move(what),
                                     std::move(token), deadline, std::move(then))
            ->start();
    }

    asio::io_context& io;
    std::shared_ptr<client::shared> sh;
    const std::vector<config::host_port>& endpoints;
    std::shared_ptr<std::size_t> preferred;
    std::string path;
    std::string body;
    std::chrono::steady_clock::time_point deadline;
    answer_handler done;
    bool retried = false;
};

client::client(asio::io_context& io, client_options options)
    : io_(io), shared_(std::make_shared<shared>()), endpoints_(options.endpoints),
      preferred_shared_(std::make_shared<std::size_t>(0))
{
    shared_->tls = make_tls_context(options);
    shared_->options = std::move(options);
}

client::~client()
{
    cancel_watch();
}

void client::do_post(asio::io_context& io, std::string path, std::string body, std::chrono::milliseconds timeout,
                     answer_handler done)
{
    std::make_shared<post_op>(io, shared_, endpoints_, preferred_shared_, std::move(path), std::move(body), timeout,
                              std::move(done))
        ->start();
}

void client::async_post(std::string path, std::string body, std::chrono::milliseconds timeout, answer_handler done)
{
    do_post(io_, std::move(path), std::move(body), timeout, std::move(done));
}

std::string client::post(std::string path, std::string body, std::chrono::milliseconds timeout)
{
    std::string error, answer;
    do_post(private_io_, std::move(path), std::move(body), timeout, [&](std::string e, std::string b) {
        error = std::move(e);
        answer = std::move(b);
    });
    private_io_.restart();
    private_io_.run();
    if (!error.empty())
        throw unreachable(error);
    return answer;
}

void client::watch(std::string body, message_handler on_message, end_handler on_end)
{
    cancel_watch();
    watch_ = std::make_shared<watch_op>(io_, shared_->tls.get(), endpoints_[*preferred_shared_ % endpoints_.size()],
                                        std::move(body), shared_->token, std::move(on_message), std::move(on_end));
    watch_->start();
}

void client::cancel_watch()
{
    if (watch_)
        watch_->cancel();
    watch_.reset();
}

} // namespace turnout::control::etcd
