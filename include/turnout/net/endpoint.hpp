#pragma once
// Turning configured "host:port" addresses into socket endpoints, and back into text.

#include "turnout/config/config.hpp"

#include <boost/asio/ip/tcp.hpp>
#include <boost/system/error_code.hpp>

#include <string>

namespace turnout::net {

using tcp = boost::asio::ip::tcp;

/// Resolves a host_port to its first endpoint (IP literals need no lookup). Blocking: for
/// start-up, reload and admin changes only, never on a worker.
tcp::endpoint resolve(const config::host_port& address, boost::system::error_code& ec);

/// "127.0.0.1:8080" or "[::1]:8080".
std::string to_string(const tcp::endpoint& endpoint);

} // namespace turnout::net
