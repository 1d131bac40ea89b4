#include "turnout/http/headers.hpp"

#include <algorithm>
#include <bit>
#include <cstring>
#include <utility>

namespace turnout::http {

bool has_token(std::string_view list, std::string_view token) noexcept
{
    bool found = false;
    for_each_token(list, [&](std::string_view item) { found = found || iequals(item, token); });
    return found;
}

namespace {

// A lowercase field name as a template argument, so that its comparison patterns are built
// at compile time.
template <std::size_t N>
struct lowercase_name {
    char text[N];
    constexpr lowercase_name(const char (&s)[N]) { std::copy_n(s, N, text); }
    static constexpr std::size_t size = N - 1;
};

// Compares sizeof(Word) bytes of a name at Offset with L's in any case, in one load, one OR and
// one compare: the pattern ORs 0x20 into the bytes where L has a letter (which makes 'A'..'Z'
// and 'a'..'z' alike) and leaves the other bytes ('-') to match exactly.
template <class Word, lowercase_name L, std::size_t Offset>
bool word_matches(const char* name) noexcept
{
    static constexpr auto pattern = [] {
        std::pair<Word, Word> case_bits_and_value{0, 0};
        for (std::size_t i = 0; i < sizeof(Word); ++i) {
            const char c = L.text[Offset + i];
            const auto shift = 8 * (std::endian::native == std::endian::little ? i : sizeof(Word) - 1 - i);
            if (c >= 'a' && c <= 'z')
                case_bits_and_value.first |= Word{0x20} << shift;
            case_bits_and_value.second |= Word{static_cast<unsigned char>(c)} << shift;
        }
        return case_bits_and_value;
    }();
    Word w;
    std::memcpy(&w, name + Offset, sizeof w);
    return (w | pattern.first) == pattern.second;
}

// name, whose length the caller has checked to be L's, spells L in any case. Two or three
// overlapping word compares cover every length from 2 to 23.
template <lowercase_name L>
bool spells(std::string_view name) noexcept
{
    constexpr auto n = L.size;
    static_assert(n >= 2 && n <= 24);
    const char* p = name.data();
    if constexpr (n > 16)
        return word_matches<std::uint64_t, L, 0>(p) && word_matches<std::uint64_t, L, 8>(p) &&
               word_matches<std::uint64_t, L, n - 8>(p);
    else if constexpr (n >= 8)
        return word_matches<std::uint64_t, L, 0>(p) && word_matches<std::uint64_t, L, n - 8>(p);
    else if constexpr (n >= 4)
        return word_matches<std::uint32_t, L, 0>(p) && word_matches<std::uint32_t, L, n - 4>(p);
    else
        return word_matches<std::uint16_t, L, 0>(p) && word_matches<std::uint16_t, L, n - 2>(p);
}

} // namespace

field_name classify_field(std::string_view name) noexcept
{
    // Every field of every message passes through here once: the length picks the one or two
    // candidates, so a name is compared at most twice.
    using enum field_name;
    switch (name.size()) {
    case 2: return spells<"te">(name) ? te : other;
    case 4: return spells<"host">(name) ? host : other;
    case 6: return spells<"expect">(name) ? expect : spells<"origin">(name) ? origin : other;
    case 7: return spells<"trailer">(name) ? trailer : spells<"upgrade">(name) ? upgrade : other;
    case 8: return spells<"mcp-name">(name) ? mcp_name : other;
    case 10:
        return spells<"connection">(name)   ? connection
             : spells<"keep-alive">(name)   ? keep_alive
             : spells<"mcp-method">(name)   ? mcp_method
                                            : other;
    case 12: return spells<"content-type">(name) ? content_type : other;
    case 14:
        return spells<"content-length">(name) ? content_length : spells<"mcp-session-id">(name) ? mcp_session_id : other;
    case 15: return spells<"x-forwarded-for">(name) ? x_forwarded_for : other;
    case 16:
        return spells<"proxy-connection">(name) ? proxy_connection : spells<"x-forwarded-host">(name) ? x_forwarded_host : other;
    case 17:
        return spells<"transfer-encoding">(name) ? transfer_encoding
             : spells<"x-forwarded-proto">(name) ? x_forwarded_proto
                                                  : other;
    default: return other;
    }
}

} // namespace turnout::http
