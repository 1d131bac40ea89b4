#pragma once
// Who a request is from, as [[upstream]] client_key and [[listen]] rate_limit name it: the
// client's address, or a header's value (an API key, an Authorization token). Only its hash
// (XXH3, seeded) leaves this function's caller: a key is never logged or stored in clear.

#include "turnout/config/config.hpp"
#include "turnout/http/message_parser.hpp"

#include <cstdint>
#include <optional>
#include <string_view>

namespace turnout::edge {

/// The key of a request, as a view into the head or into client_address; nullopt when the
/// spec is "none" or names a header the request does not carry.
std::optional<std::string_view> client_key_of(const config::client_key_config& spec, const http::message_head& head,
                                              std::string_view client_address) noexcept;

/// The key's hash under seed.
std::uint64_t hash_client_key(std::string_view key, std::uint64_t seed) noexcept;

} // namespace turnout::edge
