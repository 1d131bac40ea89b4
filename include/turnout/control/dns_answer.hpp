#pragma once
// The records of a DNS answer that discovery uses — A, AAAA and SRV, each with its TTL — read
// from the raw message c-ares hands over. c-ares' own SRV parser drops the TTL, and discovery
// is paced by TTLs, so the answer section is walked here (names expanded by c-ares, which
// follows compression pointers safely).

#include <boost/asio/ip/address.hpp>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace turnout::control {

enum class dns_type : std::uint16_t { a = 1, aaaa = 28, srv = 33 };

struct dns_record {
    dns_type type = dns_type::a;
    std::uint32_t ttl = 0;
    boost::asio::ip::address address; // a, aaaa
    std::uint16_t priority = 0;       // srv
    std::uint16_t weight = 0;         // srv
    std::uint16_t port = 0;           // srv
    std::string target;               // srv: the name to resolve, without the final dot
};

/// The answer section's records of type wanted (others, such as a CNAME on the way, are
/// skipped). nullopt when the message is malformed.
std::optional<std::vector<dns_record>> parse_dns_answer(const unsigned char* message, std::size_t length,
                                                        dns_type wanted);

/// SRV records grouped by priority, lowest value first (RFC 2782: the targets to use are
/// those of the lowest priority that can be reached; a higher value is a fallback). Targets
/// "." (the service is decidedly not offered) are left out, and a priority with no other
/// target with them. Weights are kept in the records but not used: see dns_resolver.
std::vector<std::vector<dns_record>> srv_by_priority(const std::vector<dns_record>& records);

} // namespace turnout::control
