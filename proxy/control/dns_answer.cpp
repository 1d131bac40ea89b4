#include "turnout/control/dns_answer.hpp"

#include <ares.h>

#include <algorithm>
#include <array>

namespace turnout::control {

namespace {

constexpr std::size_t header_size = 12;
constexpr std::size_t fixed_rr_size = 10; // type, class, ttl, rdlength

std::uint16_t read16(const unsigned char* p)
{
    return static_cast<std::uint16_t>((p[0] << 8) | p[1]);
}

std::uint32_t read32(const unsigned char* p)
{
    return (std::uint32_t{p[0]} << 24) | (std::uint32_t{p[1]} << 16) | (std::uint32_t{p[2]} << 8) | p[3];
}

/// The name at at, expanded; advances at past its encoded form. nullopt when malformed.
std::optional<std::string> read_name(const unsigned char* message, std::size_t length, std::size_t& at)
{
    if (at >= length)
        return std::nullopt;
    char* expanded = nullptr;
    long encoded = 0;
    if (ares_expand_name(message + at, message, static_cast<int>(length), &expanded, &encoded) != ARES_SUCCESS)
        return std::nullopt;
    std::string name(expanded);
    ares_free_string(expanded);
    at += static_cast<std::size_t>(encoded);
    return name;
}

std::optional<dns_record> read_rdata(const unsigned char* message, std::size_t length, std::size_t at,
                                     std::size_t rdlength, dns_type type, std::uint32_t ttl)
{
    dns_record r;
    r.type = type;
    r.ttl = ttl;
    switch (type) {
    case dns_type::a: {
        if (rdlength != 4)
            return std::nullopt;
        std::array<unsigned char, 4> bytes{};
        std::copy_n(message + at, 4, bytes.begin());
        r.address = boost::asio::ip::address_v4(bytes);
        return r;
    }
    case dns_type::aaaa: {
        if (rdlength != 16)
            return std::nullopt;
        std::array<unsigned char, 16> bytes{};
        std::copy_n(message + at, 16, bytes.begin());
        r.address = boost::asio::ip::address_v6(bytes);
        return r;
    }
    case dns_type::srv: {
        if (rdlength < 7)
            return std::nullopt;
        r.priority = read16(message + at);
        r.weight = read16(message + at + 2);
        r.port = read16(message + at + 4);
        std::size_t name_at = at + 6;
        auto target = read_name(message, length, name_at);
        if (!target || name_at > at + rdlength)
            return std::nullopt;
        r.target = std::move(*target);
        return r;
    }
    }
    return std::nullopt;
}

} // namespace

std::optional<std::vector<dns_record>> parse_dns_answer(const unsigned char* message, std::size_t length,
                                                        dns_type wanted)
{
    if (!message || length < header_size)
        return std::nullopt;
    const unsigned questions = read16(message + 4);
    const unsigned answers = read16(message + 6);
    std::size_t at = header_size;
    for (unsigned i = 0; i < questions; ++i) {
        if (!read_name(message, length, at) || at + 4 > length)
            return std::nullopt;
        at += 4; // type, class
    }
    std::vector<dns_record> records;
    for (unsigned i = 0; i < answers; ++i) {
        if (!read_name(message, length, at) || at + fixed_rr_size > length)
            return std::nullopt;
        const auto type = read16(message + at);
        const auto ttl = read32(message + at + 4);
        const std::size_t rdlength = read16(message + at + 8);
        at += fixed_rr_size;
        if (at + rdlength > length)
            return std::nullopt;
        if (type == static_cast<std::uint16_t>(wanted)) {
            auto record = read_rdata(message, length, at, rdlength, wanted, ttl & 0x7fffffffu);
            if (!record)
                return std::nullopt;
            records.push_back(std::move(*record));
        }
        at += rdlength;
    }
    return records;
}

std::vector<std::vector<dns_record>> srv_by_priority(const std::vector<dns_record>& records)
{
    std::vector<dns_record> usable;
    for (const auto& r : records)
        if (r.type == dns_type::srv && !r.target.empty() && r.target != ".")
            usable.push_back(r);
    // Stable: within a priority the answer's order stays (the endpoints are sorted later anyway).
    std::stable_sort(usable.begin(), usable.end(),
                     [](const dns_record& a, const dns_record& b) { return a.priority < b.priority; });
    std::vector<std::vector<dns_record>> classes;
    for (auto& r : usable) {
        if (classes.empty() || classes.back().front().priority != r.priority)
            classes.emplace_back();
        classes.back().push_back(std::move(r));
    }
    return classes;
}

} // namespace turnout::control
