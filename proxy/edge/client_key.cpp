#include "turnout/edge/client_key.hpp"

#include <xxhash.h>

namespace turnout::edge {

std::optional<std::string_view> client_key_of(const config::client_key_config& spec, const http::message_head& head,
                                              std::string_view client_address) noexcept
{
    switch (spec.source) {
    case config::client_key_config::kind::none: return std::nullopt;
    case config::client_key_config::kind::ip: return client_address;
    case config::client_key_config::kind::header: {
        const auto value = head.find(std::string_view{spec.header});
        if (!value || value->empty())
            return std::nullopt;
        return value;
    }
    }
    return std::nullopt;
}

std::uint64_t hash_client_key(std::string_view key, std::uint64_t seed) noexcept
{
    return XXH3_64bits_withSeed(key.data(), key.size(), seed);
}

} // namespace turnout::edge
