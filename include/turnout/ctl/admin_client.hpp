#pragma once
// turnoutctl's side of the admin socket: one HTTP/1.1 + JSON request per connection, every step
// bounded by a deadline, and the readings of an answer every command shares (its one-sentence
// error, its JSON) and the paths that name upstreams, pools and backends.

#include <boost/asio/io_context.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/beast/http/verb.hpp>
#include <boost/json/value.hpp>

#include <chrono>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>

namespace turnout::ctl {

/// The request was refused or could not be made: turnoutctl exits 1 with this one line.
struct failure : std::runtime_error {
    using std::runtime_error::runtime_error;
};

struct reply {
    unsigned status = 0;
    std::string body;

    bool ok() const { return status >= 200 && status < 300; }
};

class admin_client {
public:
    explicit admin_client(std::string socket_path) : path_(std::move(socket_path)) {}

    const std::string& path() const { return path_; }

    /// Sends one request and returns the answer, whatever its status. Throws failure when the
    /// socket cannot be reached or does not answer in time.
    reply request(boost::beast::http::verb verb, const std::string& target,
                  std::optional<std::string> body = std::nullopt);

private:
    using local_socket = boost::asio::local::stream_protocol::socket;

    template <class Start>
    boost::system::error_code run_until(local_socket& socket, std::chrono::steady_clock::time_point deadline,
                                        Start start);

    boost::asio::io_context io_;
    std::string path_;
};

/// The one-sentence reason of a refused request: the server's {"error": ...}, else its status.
std::string error_text(const reply& r);
/// r when it succeeded; throws failure with its error_text otherwise.
reply expect_success(reply r);
/// The answer's JSON (an empty object for an empty body); throws failure when it is not JSON.
boost::json::value parse_json(const reply& r);

/// A name or address as one path segment: anything outside RFC 3986's unreserved set is
/// percent-encoded, so it can never change the route.
std::string path_segment(std::string_view name);
std::string upstream_path(std::string_view upstream);
std::string pool_path(std::string_view upstream, std::string_view pool);
std::string backend_path(std::string_view upstream, std::string_view pool, std::string_view address);

} // namespace turnout::ctl
