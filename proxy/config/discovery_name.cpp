#include "turnout/config/discovery_name.hpp"

#include "turnout/config/host_port.hpp"

namespace turnout::config {

namespace {

constexpr std::string_view dns_prefix = "dns:";
constexpr std::string_view srv_prefix = "srv:";

std::optional<discovery_name> parse_dns(std::string_view text, std::string& why)
{
    const auto rest = text.substr(dns_prefix.size());
    const auto colon = rest.rfind(':');
    const auto parsed = colon == std::string_view::npos ? std::nullopt : parse_host_port(rest);
    if (!parsed || parsed->port == 0) {
        why = "expected dns:NAME:PORT with a port between 1 and 65535, such as \"dns:mcp.default.svc:3000\", got \"" +
              std::string(text) + "\"";
        return std::nullopt;
    }
    if (is_ip_literal(parsed->host)) {
        why = "\"" + std::string(text) + "\" names an IP address, not a DNS name: write it without dns:";
        return std::nullopt;
    }
    return discovery_name{discovery_name::kind::address, parsed->host, parsed->port, std::string(text)};
}

// An SRV owner name (RFC 2782): _service._proto.name, where turnout connects over TCP.
std::optional<discovery_name> parse_srv(std::string_view text, std::string& why)
{
    auto name = text.substr(srv_prefix.size());
    if (name.ends_with('.'))
        name.remove_suffix(1);
    const auto first_dot = name.find('.');
    const auto second_dot = first_dot == std::string_view::npos ? first_dot : name.find('.', first_dot + 1);
    const bool shaped = is_host_name(name) && name.starts_with('_') && second_dot != std::string_view::npos &&
                        first_dot > 1 && second_dot + 1 < name.size();
    if (!shaped) {
        why = "expected srv:_service._proto.NAME such as \"srv:_mcp._tcp.mcp.default.svc\", got \"" +
              std::string(text) + "\"";
        return std::nullopt;
    }
    if (name.substr(first_dot + 1, second_dot - first_dot - 1) != "_tcp") {
        why = "\"" + std::string(text) + "\": turnout reaches backends over TCP, so the protocol label must be _tcp";
        return std::nullopt;
    }
    return discovery_name{discovery_name::kind::service, std::string(name), 0, std::string(text)};
}

} // namespace

bool is_discovery_name(std::string_view text)
{
    return text.starts_with(dns_prefix) || text.starts_with(srv_prefix);
}

std::optional<discovery_name> parse_discovery_name(std::string_view text, std::string& why)
{
    if (text.starts_with(dns_prefix))
        return parse_dns(text, why);
    if (text.starts_with(srv_prefix))
        return parse_srv(text, why);
    why = "\"" + std::string(text) + "\" is not a discovery name (dns:NAME:PORT or srv:_service._proto.NAME)";
    return std::nullopt;
}

} // namespace turnout::config
