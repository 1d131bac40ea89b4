// libFuzzer target: control::parse_dns_answer, the walker of DNS answers from the network.
//
// Input: a DNS message as a server could send it.
//
// Invariants: never reads outside the message (ASan); for each wanted type, every record
// returned has that type, A records are IPv4 and AAAA records IPv6, and there are no more
// records than the header's answer count.

#include "turnout/control/dns_answer.hpp"

#include <cstddef>
#include <cstdint>
#include <cstdlib>

using namespace turnout::control;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size)
{
    const unsigned answers = size >= 8 ? (unsigned{data[6]} << 8 | data[7]) : 0;
    for (const auto type : {dns_type::a, dns_type::aaaa, dns_type::srv}) {
        const auto records = parse_dns_answer(data, size, type);
        if (!records)
            continue;
        if (records->size() > answers)
            std::abort();
        for (const auto& r : *records) {
            if (r.type != type)
                std::abort();
            if (type == dns_type::a && !r.address.is_v4())
                std::abort();
            if (type == dns_type::aaaa && !r.address.is_v6())
                std::abort();
        }
    }
    return 0;
}
