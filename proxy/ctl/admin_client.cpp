#include "turnout/ctl/admin_client.hpp"

#include "turnout/version.hpp"

#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>
#include <boost/json.hpp>

#include <cctype>

namespace turnout::ctl {
namespace {

namespace net = boost::asio;
namespace http = boost::beast::http;
namespace json = boost::json;
using clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

// Long enough for a state-file fsync on a slow disk, short enough that a wedged server never
// hangs a deploy script.
constexpr auto request_timeout = 10s;

} // namespace

reply admin_client::request(http::verb verb, const std::string& target, std::optional<std::string> body)
{
    const auto deadline = clock::now() + request_timeout;
    local_socket socket{io_};

    if (const auto ec = run_until(socket, deadline, [&](auto handler) {
            socket.async_connect(net::local::stream_protocol::endpoint{path_}, std::move(handler));
        }))
        throw failure("cannot connect to " + path_ + ": " + ec.message());

    http::request<http::string_body> req{verb, target, 11};
    req.set(http::field::host, "localhost");
    req.set(http::field::user_agent, "turnoutctl/" + std::string(turnout::version()));
    req.set(http::field::accept, "application/json");
    req.keep_alive(false);
    if (body) {
        req.set(http::field::content_type, "application/json");
        req.body() = std::move(*body);
    }
    req.prepare_payload();
    if (const auto ec = run_until(socket, deadline,
                                  [&](auto handler) { http::async_write(socket, req, std::move(handler)); }))
        throw failure("cannot send to " + path_ + ": " + ec.message());

    boost::beast::flat_buffer buffer;
    http::response_parser<http::string_body> parser;
    parser.body_limit(64 * 1024 * 1024); // a status of many backends is larger than Beast's 8 MB default
    if (const auto ec = run_until(socket, deadline, [&](auto handler) {
            http::async_read(socket, buffer, parser, std::move(handler));
        }))
        throw failure("no answer from " + path_ + ": " + ec.message());

    auto response = parser.release();
    return {response.result_int(), std::move(response.body())};
}

// Runs one asynchronous step until it completes or the deadline passes; on the deadline the
// socket is closed so the step ends with an error and nothing is left pending.
template <class Start>
boost::system::error_code admin_client::run_until(local_socket& socket, clock::time_point deadline, Start start)
{
    std::optional<boost::system::error_code> outcome;
    start([&outcome](boost::system::error_code ec, auto&&...) { outcome = ec; });
    io_.restart();
    io_.run_until(deadline);
    if (outcome)
        return *outcome;
    boost::system::error_code ignored;
    socket.close(ignored);
    io_.restart();
    io_.run();
    return net::error::timed_out;
}

std::string error_text(const reply& r)
{
    boost::system::error_code ec;
    const json::value doc = json::parse(r.body, ec);
    if (!ec && doc.is_object())
        if (const auto* e = doc.as_object().if_contains("error"); e && e->is_string())
            return std::string(e->as_string());
    std::string text = "server answered " + std::to_string(r.status) + " " +
                       std::string(http::obsolete_reason(static_cast<http::status>(r.status)));
    if (const auto line = r.body.substr(0, r.body.find('\n')); !line.empty() && line.size() <= 200)
        text += ": " + line;
    return text;
}

reply expect_success(reply r)
{
    if (!r.ok())
        throw failure(error_text(r));
    return r;
}

json::value parse_json(const reply& r)
{
    if (r.body.empty())
        return json::object{};
    boost::system::error_code ec;
    json::value doc = json::parse(r.body, ec);
    if (ec)
        throw failure("the server's answer is not JSON: " + ec.message());
    return doc;
}

std::string path_segment(std::string_view name)
{
    static constexpr char hex[] = "0123456789ABCDEF";
    std::string out;
    for (const unsigned char c : name) {
        if (std::isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~') {
            out += static_cast<char>(c);
        } else {
            out += '%';
            out += hex[c >> 4];
            out += hex[c & 0xF];
        }
    }
    return out;
}

std::string upstream_path(std::string_view upstream)
{
    return "/v1/upstreams/" + path_segment(upstream);
}

std::string pool_path(std::string_view upstream, std::string_view pool)
{
    return upstream_path(upstream) + "/pools/" + path_segment(pool);
}

std::string backend_path(std::string_view upstream, std::string_view pool, std::string_view address)
{
    return pool_path(upstream, pool) + "/backends/" + path_segment(address);
}

} // namespace turnout::ctl
