#pragma once
// What DNS discovery found for each dns:/srv: name, as the snapshot builder reads it: the
// addresses the last good answer listed, and those that vanished from it and drain until
// their deadline. Kept by control::dns_discovery on the control thread, per process — never
// in the state file or a shared store: every instance of a fleet asks DNS for itself.

#include <boost/asio/ip/tcp.hpp>

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

namespace turnout::runtime {

struct discovered_address {
    std::string address; // "10.0.0.7:3000", "[fd00::7]:3000": the backend registry's key
    boost::asio::ip::tcp::endpoint endpoint;

    friend bool operator==(const discovered_address&, const discovered_address&) = default;
};

/// An address the name no longer lists: drained (no new sessions, its sessions still
/// forwarded) until deadline_ms (Unix time), then gone from the pool.
struct leaving_address {
    discovered_address where;
    std::int64_t deadline_ms = 0;
};

struct discovered_set {
    std::vector<discovered_address> current;
    std::vector<leaving_address> leaving;
};

/// By the name as written in the configuration (config::discovery_name::text).
using discovered_sets = std::map<std::string, discovered_set, std::less<>>;

} // namespace turnout::runtime
