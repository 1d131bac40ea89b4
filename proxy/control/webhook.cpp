#include "turnout/control/webhook.hpp"

#include "turnout/version.hpp"

#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http.hpp>

#include <spdlog/spdlog.h>

namespace turnout::control {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;

struct target_url {
    std::string host;
    std::string port = "80";
    std::string path = "/";
};

/// http://host[:port][/path] (config::is_valid_webhook checked the shape before).
target_url split_url(std::string_view url)
{
    target_url t;
    auto rest = url.substr(std::string_view("http://").size());
    const auto slash = rest.find('/');
    if (slash != std::string_view::npos) {
        t.path = std::string(rest.substr(slash));
        rest = rest.substr(0, slash);
    }
    if (rest.starts_with('[')) { // [v6]:port
        const auto close = rest.find(']');
        t.host = std::string(rest.substr(1, close - 1));
        rest = close == std::string_view::npos ? std::string_view{} : rest.substr(close + 1);
        if (rest.starts_with(':'))
            t.port = std::string(rest.substr(1));
        return t;
    }
    const auto colon = rest.find(':');
    t.host = std::string(rest.substr(0, colon));
    if (colon != std::string_view::npos)
        t.port = std::string(rest.substr(colon + 1));
    return t;
}

class post_op : public std::enable_shared_from_this<post_op> {
public:
    post_op(asio::io_context& io, std::string url, std::string body, std::shared_ptr<std::size_t> in_flight)
        : resolver_(io), stream_(io), url_(std::move(url)), in_flight_(std::move(in_flight))
    {
        const auto t = split_url(url_);
        target_ = t;
        request_ = {http::verb::post, t.path, 11};
        request_.set(http::field::host, t.host + ":" + t.port);
        request_.set(http::field::user_agent, "turnout/" + std::string(version()));
        request_.set(http::field::content_type, "application/json");
        request_.body() = std::move(body);
        request_.prepare_payload();
        ++*in_flight_;
    }
    ~post_op() { --*in_flight_; }

    void start()
    {
        stream_.expires_after(webhook_sender::timeout);
        resolver_.async_resolve(target_.host, target_.port,
                                [self = shared_from_this()](beast::error_code ec, asio::ip::tcp::resolver::results_type r) {
                                    self->on_resolve(ec, std::move(r));
                                });
    }

private:
    void on_resolve(beast::error_code ec, const asio::ip::tcp::resolver::results_type& results)
    {
        if (ec)
            return fail("resolve", ec);
        stream_.async_connect(results, [self = shared_from_this()](beast::error_code ec, const auto&) {
            if (ec)
                return self->fail("connect", ec);
            http::async_write(self->stream_, self->request_, [self](beast::error_code ec, std::size_t) {
                if (ec)
                    return self->fail("write", ec);
                http::async_read(self->stream_, self->buffer_, self->response_,
                                 [self](beast::error_code ec, std::size_t) { self->on_read(ec); });
            });
        });
    }

    void on_read(beast::error_code ec)
    {
        if (ec)
            return fail("read", ec);
        if (response_.result_int() / 100 != 2)
            spdlog::warn("rollout webhook {} answered {}", url_, response_.result_int());
        beast::error_code ignored;
        stream_.socket().shutdown(asio::ip::tcp::socket::shutdown_both, ignored);
    }

    void fail(const char* step, beast::error_code ec)
    {
        spdlog::warn("rollout webhook {} failed ({}): {}", url_, step, ec.message());
    }

    asio::ip::tcp::resolver resolver_;
    beast::tcp_stream stream_;
    std::string url_;
    target_url target_;
    std::shared_ptr<std::size_t> in_flight_;
    http::request<http::string_body> request_;
    http::response<http::string_body> response_;
    beast::flat_buffer buffer_;
};

} // namespace

void webhook_sender::post(const std::string& url, std::string body)
{
    if (*in_flight_ >= max_in_flight) {
        spdlog::warn("rollout webhook {}: {} posts still running, this event is not sent", url, *in_flight_);
        return;
    }
    std::make_shared<post_op>(io_, url, std::move(body), in_flight_)->start();
}

} // namespace turnout::control
