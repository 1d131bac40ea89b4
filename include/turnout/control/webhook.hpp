#pragma once
// Rollout events POSTed as JSON to an operator's http:// URL. Fire and forget on the control
// thread: each post has 5 s in all, its failure is logged and nothing else happens, and at
// most max_in_flight posts run at once (more are dropped, and said so), so a slow or dead
// receiver never holds a rollout back.

#include <boost/asio/io_context.hpp>

#include <chrono>
#include <cstddef>
#include <memory>
#include <string>

namespace turnout::control {

class webhook_sender {
public:
    static constexpr std::size_t max_in_flight = 16;
    static constexpr std::chrono::seconds timeout{5};

    explicit webhook_sender(boost::asio::io_context& io) : io_(io), in_flight_(std::make_shared<std::size_t>(0)) {}

    void post(const std::string& url, std::string body);

private:
    boost::asio::io_context& io_;
    std::shared_ptr<std::size_t> in_flight_; // shared with the posts, which may outlive this
};

} // namespace turnout::control
