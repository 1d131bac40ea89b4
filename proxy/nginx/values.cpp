#include "turnout/nginx/values.hpp"

#include "turnout/config/host_port.hpp"
#include "turnout/config/rules.hpp"

#include <charconv>
#include <limits>

namespace turnout::nginx {

namespace {

std::optional<std::uint64_t> number(std::string_view digits)
{
    std::uint64_t value = 0;
    if (digits.empty())
        return std::nullopt;
    const auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), value);
    if (ec != std::errc{} || end != digits.data() + digits.size())
        return std::nullopt;
    return value;
}

bool all_digits(std::string_view s)
{
    return !s.empty() && s.find_first_not_of("0123456789") == std::string_view::npos;
}

std::optional<std::string> with_port(std::string_view text, std::uint16_t default_port)
{
    if (text.empty() || text.starts_with("unix:"))
        return std::nullopt;
    std::string candidate{text};
    const bool bracketed = text.starts_with('[');
    const auto close = text.find(']');
    const bool has_port = bracketed ? close != std::string_view::npos && close + 1 < text.size()
                                    : text.find(':') != std::string_view::npos;
    if (!has_port)
        candidate += ":" + std::to_string(default_port);
    const auto parsed = config::parse_host_port(candidate);
    if (!parsed)
        return std::nullopt;
    return candidate;
}

} // namespace

std::optional<std::uint64_t> parse_size(std::string_view text)
{
    if (text.empty())
        return std::nullopt;
    std::uint64_t scale = 1;
    switch (text.back()) {
    case 'k': case 'K': scale = 1024; break;
    case 'm': case 'M': scale = 1024 * 1024; break;
    case 'g': case 'G': scale = 1024 * 1024 * 1024; break;
    default: break;
    }
    const auto value = number(scale == 1 ? text : text.substr(0, text.size() - 1));
    if (!value || *value > std::numeric_limits<std::int64_t>::max() / scale)
        return std::nullopt;
    return *value * scale;
}

std::optional<config::duration> parse_time(std::string_view text)
{
    if (all_digits(text)) {
        const auto seconds = number(text);
        if (!seconds || *seconds > 100'000'000'000ull)
            return std::nullopt;
        return config::duration(*seconds * 1000);
    }
    std::uint64_t total_ms = 0;
    while (!text.empty()) {
        const auto digits = text.find_first_not_of("0123456789");
        if (digits == 0 || digits == std::string_view::npos)
            return std::nullopt;
        const auto value = number(text.substr(0, digits));
        text.remove_prefix(digits);
        std::uint64_t unit_ms = 0;
        if (text.starts_with("ms")) {
            unit_ms = 1;
            text.remove_prefix(2);
        } else {
            switch (text.front()) {
            case 's': unit_ms = 1000; break;
            case 'm': unit_ms = 60'000; break;
            case 'h': unit_ms = 3'600'000; break;
            case 'd': unit_ms = 86'400'000; break;
            case 'w': unit_ms = 7 * 86'400'000ull; break;
            case 'M': unit_ms = 30 * 86'400'000ull; break;
            case 'y': unit_ms = 365 * 86'400'000ull; break;
            default: return std::nullopt;
            }
            text.remove_prefix(1);
        }
        if (!value || *value > 100'000'000'000ull)
            return std::nullopt;
        total_ms += *value * unit_ms;
        if (total_ms > 100'000'000'000'000ull)
            return std::nullopt;
    }
    return config::duration(total_ms);
}

std::optional<std::string> listen_address(std::string_view text)
{
    if (all_digits(text))
        return with_port("0.0.0.0:" + std::string(text), 80);
    if (text.starts_with("*:"))
        return with_port("0.0.0.0" + std::string(text.substr(1)), 80);
    return with_port(text, 80);
}

std::optional<std::string> backend_address(std::string_view text, std::uint16_t default_port)
{
    return with_port(text, default_port);
}

std::string safe_name(std::string_view text)
{
    std::string out;
    for (const char c : text.substr(0, config::max_name_length))
        out += config::is_name_char(c) ? c : '_';
    return out.empty() ? "_" : out;
}

// Well-formed UTF-8 (RFC 3629): no overlong forms, no surrogates, nothing past U+10FFFF —
// what toml++ accepts.
bool valid_utf8(std::string_view s)
{
    const auto byte = [&s](std::size_t i) { return static_cast<unsigned char>(s[i]); };
    for (std::size_t i = 0; i < s.size();) {
        const unsigned c = byte(i);
        std::size_t n = 0;
        unsigned low = 0x80, high = 0xbf; // the range of the second byte
        if (c < 0x80) {
            ++i;
            continue;
        }
        if (c >= 0xc2 && c <= 0xdf) {
            n = 2;
        } else if (c >= 0xe0 && c <= 0xef) {
            n = 3;
            low = c == 0xe0 ? 0xa0 : 0x80;
            high = c == 0xed ? 0x9f : 0xbf;
        } else if (c >= 0xf0 && c <= 0xf4) {
            n = 4;
            low = c == 0xf0 ? 0x90 : 0x80;
            high = c == 0xf4 ? 0x8f : 0xbf;
        } else {
            return false;
        }
        if (i + n > s.size() || byte(i + 1) < low || byte(i + 1) > high)
            return false;
        for (std::size_t k = 2; k < n; ++k)
            if ((byte(i + k) & 0xc0) != 0x80)
                return false;
        i += n;
    }
    return true;
}

std::string toml_text(std::string_view text)
{
    std::string out{text};
    if (!valid_utf8(out))
        for (char& c : out)
            if (static_cast<unsigned char>(c) >= 0x80)
                c = '?';
    for (char& c : out) {
        const auto u = static_cast<unsigned char>(c);
        if (c == '\n' || c == '\r')
            c = ' ';
        else if ((u < 0x20 && c != '\t') || u == 0x7f)
            c = '?'; // TOML allows no control characters in comments
    }
    return out;
}

std::string toml_string(std::string_view raw)
{
    // TOML is UTF-8: text that is not keeps its ASCII, the other bytes become '?'
    const std::string checked = valid_utf8(raw) ? std::string(raw) : toml_text(raw);
    const std::string_view text = checked;
    static constexpr char hex[] = "0123456789abcdef";
    std::string out = "\"";
    for (const char c : text) {
        const auto u = static_cast<unsigned char>(c);
        if (c == '"' || c == '\\') {
            out += '\\';
            out += c;
        } else if (u < 0x20 || u == 0x7f) {
            out += "\\u00";
            out += hex[u >> 4];
            out += hex[u & 15];
        } else {
            out += c;
        }
    }
    return out + "\"";
}

} // namespace turnout::nginx
