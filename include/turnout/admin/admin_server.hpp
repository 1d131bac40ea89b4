#pragma once
// The admin socket: HTTP/1.1 + JSON over a Unix socket (mode 0600), served with Boost.Beast
// on the control thread; each request is answered by admin::handle_request (admin_api.hpp).

#include "turnout/admin/admin_api.hpp"
#include "turnout/admin/control.hpp"

#include <boost/asio/io_context.hpp>

#include <memory>
#include <string>

namespace turnout::admin {

class admin_server {
public:
    /// Creates the socket at path (replacing a stale one), mode 0600. Throws std::runtime_error.
    admin_server(boost::asio::io_context& io, std::string path, control& c);
    ~admin_server();

    void start();
    void close(); // also removes the socket file

private:
    struct impl;
    std::shared_ptr<impl> impl_;
};

} // namespace turnout::admin
