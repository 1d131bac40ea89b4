// libFuzzer target: the edge's Origin and Host reading (edge/origin, edge/origin_policy) on
// values from outside.
//
// Input: a Host value, a newline, an Origin value (each cut at the first CR, LF or NUL).
//
// Invariants: normalizing an origin is idempotent and keeps its parts (lowercase); a request
// whose Origin is "http://" + its own Host passes the check whenever that Host is an
// authority; allowed_origins = ["*"] with no allowed_hosts lets everything through; a Host
// listed in allowed_hosts is never refused as a host.

#include "fuzz_support.hpp"

#include "turnout/edge/origin.hpp"
#include "turnout/edge/origin_policy.hpp"
#include "turnout/http/message_parser.hpp"

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

using namespace turnout;

namespace {

std::string_view line(std::string_view& in)
{
    const auto end = in.find('\n');
    auto value = in.substr(0, end);
    in = end == std::string_view::npos ? std::string_view{} : in.substr(end + 1);
    value = value.substr(0, value.find_first_of(std::string_view("\r\0", 2)));
    return value;
}

// A parsed request with these Host and Origin values, or nullptr when they do not make a head.
std::unique_ptr<http::message_parser> request_with(std::string_view host, std::string_view origin)
{
    auto p = std::make_unique<http::message_parser>(http::message_parser::kind::request, http::message_parser::limits{});
    const std::string text = "GET / HTTP/1.1\r\nHost: " + std::string(host) + "\r\nOrigin: " + std::string(origin) + "\r\n\r\n";
    p->parse(text.data(), text.size());
    if (!p->head_complete())
        return nullptr;
    return p;
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size)
{
    std::string_view in(reinterpret_cast<const char*>(data), size);
    const auto host = line(in);
    const auto origin = line(in);

    const fuzz::exact_copy exact{origin};
    const auto normalized = edge::normalize_origin(exact.view());
    if (!normalized.empty()) {
        FUZZ_CHECK(edge::normalize_origin(normalized) == normalized);
        const auto a = edge::parse_origin(exact.view());
        const auto b = edge::parse_origin(normalized);
        FUZZ_CHECK(a && b && a->port == b->port && a->host.size() == b->host.size());
    }
    const fuzz::exact_copy exact_host{host};
    (void)edge::parse_authority(exact_host.view(), 80);

    if (const auto p = request_with(host, origin)) {
        config::listen_config open;
        open.any_origin = true;
        FUZZ_CHECK(!edge::check_origin(open, p->head(), false));
        config::listen_config listed;
        listed.any_origin = true;
        listed.allowed_hosts = {std::string(host)};
        const auto parsed_host = edge::parse_authority(p->head().find(http::field_name::host).value_or(""), 0);
        if (parsed_host && edge::parse_authority(host, 0))
            FUZZ_CHECK(!edge::check_origin(listed, p->head(), false));
        (void)edge::check_origin(config::listen_config{}, p->head(), true);
    }
    if (const auto own = request_with(host, "http://" + std::string(host)); own && edge::parse_authority(host, 80)) {
        const auto field = own->head().find(http::field_name::host).value_or("");
        if (field == host) // the parser kept the value as sent (no trimming)
            FUZZ_CHECK(!edge::check_origin(config::listen_config{}, own->head(), false));
    }
    return 0;
}
