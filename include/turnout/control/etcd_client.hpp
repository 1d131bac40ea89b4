#pragma once
// HTTP toward etcd's v3 JSON gateway (Beast): one-shot POSTs (range, txn) and the streaming
// watch. A POST runs on any io_context: on the control thread's for the reconnect path, or on
// a private one for the blocking, time-bounded call an admin change waits for (like the
// upgrade's hand-over, the control thread waits for it; the bound keeps that short). Endpoints
// are tried in order, starting with the last that answered.

#include "turnout/config/host_port.hpp"
#include "turnout/control/etcd_codec.hpp"

#include <boost/asio/io_context.hpp>
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

class client {
public:
    /// (error, body): error empty on a 200 answer; else one sentence (the body is then empty).
    using answer_handler = std::function<void(std::string error, std::string body)>;
    /// Each JSON object of the watch stream.
    using message_handler = std::function<void(const boost::json::value&)>;
    /// The watch ended (error says how); not called after cancel_watch().
    using end_handler = std::function<void(std::string error)>;

    client(boost::asio::io_context& io, std::vector<config::host_port> endpoints);
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

    boost::asio::io_context& io_;
    boost::asio::io_context private_io_{1};
    std::vector<config::host_port> endpoints_;
    std::shared_ptr<std::size_t> preferred_shared_; // the endpoint that answered last (requests in flight update it)
    std::shared_ptr<watch_op> watch_;
};

} // namespace turnout::control::etcd
