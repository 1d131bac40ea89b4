#include "turnout/net/endpoint.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/address.hpp>

namespace turnout::net {

tcp::endpoint resolve(const config::host_port& address, boost::system::error_code& ec)
{
    ec.clear();
    auto ip = boost::asio::ip::make_address(address.host, ec);
    if (!ec)
        return {ip, address.port};

    // A name: resolve it once, synchronously, outside the data path.
    boost::asio::io_context io;
    tcp::resolver resolver(io);
    auto results = resolver.resolve(address.host, std::to_string(address.port),
                                    tcp::resolver::numeric_service, ec);
    if (ec)
        return {};
    if (results.empty()) {
        ec = boost::asio::error::host_not_found;
        return {};
    }
    return results.begin()->endpoint();
}

std::string to_string(const tcp::endpoint& endpoint)
{
    const auto address = endpoint.address();
    std::string text = address.is_v6() ? "[" + address.to_string() + "]" : address.to_string();
    text += ':';
    text += std::to_string(endpoint.port());
    return text;
}

} // namespace turnout::net
