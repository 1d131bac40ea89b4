#include "turnout/net/endpoint.hpp"

#include <doctest/doctest.h>

#include <boost/asio/error.hpp>
#include <boost/asio/ip/address.hpp>

#include <cstdint>
#include <string>
#include <utility>

using turnout::config::host_port;
using turnout::net::resolve;
using turnout::net::tcp;
using turnout::net::to_string;

namespace {

host_port address_of(std::string host, std::uint16_t port)
{
    std::string text = host.find(':') == std::string::npos ? host : "[" + host + "]";
    text += ":" + std::to_string(port);
    return host_port{std::move(host), port, std::move(text)};
}

} // namespace

TEST_CASE("resolve takes an IPv4 literal as it is")
{
    boost::system::error_code ec;
    const auto endpoint = resolve(address_of("127.0.0.1", 3001), ec);
    REQUIRE_FALSE(ec);
    CHECK(endpoint.address() == boost::asio::ip::make_address("127.0.0.1"));
    CHECK(endpoint.address().is_v4());
    CHECK(endpoint.port() == 3001);

    const auto any = resolve(address_of("0.0.0.0", 0), ec);
    REQUIRE_FALSE(ec);
    CHECK(any.address().is_unspecified());
    CHECK(any.port() == 0);
}

TEST_CASE("resolve takes an IPv6 literal as it is")
{
    boost::system::error_code ec;
    const auto endpoint = resolve(address_of("::1", 8080), ec);
    REQUIRE_FALSE(ec);
    CHECK(endpoint.address().is_v6());
    CHECK(endpoint.address().is_loopback());
    CHECK(endpoint.port() == 8080);

    const auto other = resolve(address_of("2001:db8::1", 443), ec);
    REQUIRE_FALSE(ec);
    CHECK(other.address() == boost::asio::ip::make_address("2001:db8::1"));
    CHECK(other.port() == 443);
}

TEST_CASE("resolve looks up localhost to a loopback address")
{
    boost::system::error_code ec;
    const auto endpoint = resolve(address_of("localhost", 3002), ec);
    REQUIRE_FALSE(ec);
    CHECK(endpoint.address().is_loopback());
    CHECK(endpoint.port() == 3002);
}

TEST_CASE("resolve reports a name that does not resolve and clears an old error on success")
{
    boost::system::error_code ec;
    // .invalid is reserved (RFC 6761): it never resolves.
    (void)resolve(address_of("no-such-host.invalid", 80), ec);
    CHECK(ec);

    ec = boost::asio::error::host_not_found;
    (void)resolve(address_of("127.0.0.1", 80), ec);
    CHECK_FALSE(ec);
}

TEST_CASE("to_string formats IPv4 as address:port and IPv6 in brackets")
{
    CHECK(to_string(tcp::endpoint{boost::asio::ip::make_address("127.0.0.1"), 8080}) == "127.0.0.1:8080");
    CHECK(to_string(tcp::endpoint{boost::asio::ip::make_address("::1"), 80}) == "[::1]:80");
    CHECK(to_string(tcp::endpoint{boost::asio::ip::make_address("2001:db8::1"), 443}) == "[2001:db8::1]:443");
    CHECK(to_string(tcp::endpoint{boost::asio::ip::make_address("0.0.0.0"), 0}) == "0.0.0.0:0");
}

TEST_CASE("to_string of a resolved literal gives back the configured text")
{
    boost::system::error_code ec;
    for (const auto& address : {address_of("127.0.0.1", 3001), address_of("::1", 3001)}) {
        CAPTURE(address.text);
        CHECK(to_string(resolve(address, ec)) == address.text);
        CHECK_FALSE(ec);
    }
}
