#pragma once
// A pool backend found through DNS rather than written as an address: "dns:NAME:PORT" (the
// name's A and AAAA records, each on PORT) or "srv:_service._proto.NAME" (the SRV records'
// targets, each on its own port). Parsed and checked here; resolved by control::dns_discovery.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace turnout::config {

struct discovery_name {
    enum class kind { address, service }; // dns: (A/AAAA) | srv: (SRV)
    kind type = kind::address;
    std::string name;       // what is queried
    std::uint16_t port = 0; // dns: only
    std::string text;       // as written ("dns:mcp-blue.default.svc:3000")

    friend bool operator==(const discovery_name&, const discovery_name&) = default;
};

/// Whether text is written as a discovery name (starts with "dns:" or "srv:").
bool is_discovery_name(std::string_view text);

/// Parses "dns:NAME:PORT" or "srv:_service._proto.NAME"; nullopt with why set otherwise.
std::optional<discovery_name> parse_discovery_name(std::string_view text, std::string& why);

} // namespace turnout::config
