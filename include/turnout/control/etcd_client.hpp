#pragma once
// HTTP toward etcd's v3 JSON gateway (Beast): one-shot POSTs (range, txn) and the streaming
// watch. A POST runs on any io_context: on the control thread's for the reconnect path, or on
// a private one for the blocking, time-bounded call an admin change waits for (like the
// upgrade's hand-over, the control thread waits for it; the bound keeps that short). Endpoints
// are tried in order, starting with the last that answered. Over TLS when the endpoints are
// https:// (the CA, an optional client certificate); with etcd's authentication when a user is
// configured (a token from /v3/auth/authenticate in the Authorization header, fetched again
// when etcd says it expired).

#include "turnout/config/host_port.hpp"
#include "turnout/control/etcd_codec.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/json/value.hpp>

#include <chrono>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

namespace turnout::control::etcd {

/// No endpoint could be reached, or none answered in time.
class unreachable : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

/// How to reach etcd: [runtime]'s endpoints, TLS files and credentials.
struct client_options {
    std::vector<config::host_port> endpoints;
    bool tls = false;
    std::string ca_file;   // empty: the system's trust store
    std::string cert_file; // with key_file: a client certificate
    std::string key_file;
    std::string username; // empty: no authentication
    std::string password;
};

class client {
public:
    /// (error, body): error empty on a 200 answer; else one sentence (the body is then empty).
    using answer_handler = std::function<void(std::string error, std::string body)>;
    /// Each JSON object of the watch stream.
    using message_handler = std::function<void(const boost::json::value&)>;
    /// The watch ended (error says how); not called after cancel_watch().
    using end_handler = std::function<void(std::string error)>;

    /// Throws std::runtime_error (one sentence) when a TLS file cannot be loaded.
    client(boost::asio::io_context& io, client_options options);
    ~client();

    /// POST path with a JSON body on the control thread's io_context.
    void async_post(std::string path, std::string body, std::chrono::milliseconds timeout, answer_handler done);
    /// The same, waiting for the answer: throws unreachable (network, timeout, non-200 status).
    std::string post(std::string path, std::string body, std::chrono::milliseconds timeout);

    /// Opens the watch stream with this create request. One at a time: a new one replaces the old.
    void watch(std::string body, message_handler on_message, end_handler on_end);
    void cancel_watch();

private:
    struct request_op;
    struct watch_op;
    struct shared;
    struct post_op;

    void do_post(boost::asio::io_context& io, std::string path, std::string body, std::chrono::milliseconds timeout,
                 answer_handler done);

    boost::asio::io_context& io_;
    boost::asio::io_context private_io_{1};
    std::shared_ptr<shared> shared_; // options, TLS context, token: outlive requests in flight
    std::vector<config::host_port> endpoints_;
    std::shared_ptr<std::size_t> preferred_shared_; // the endpoint that answered last (requests in flight update it)
    std::shared_ptr<watch_op> watch_;
};

} // namespace turnout::control::etcd
