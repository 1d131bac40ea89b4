#include "turnout/http/chunked_peek.hpp"

#include <limits>

namespace turnout::http {
namespace {

// The last chunk and an empty trailer section: the least any body still ends with.
constexpr std::size_t last_chunk_bytes = 5; // "0\r\n\r\n"
// More hex digits than this overflow 64 bits; the parser refuses them too.
constexpr std::size_t max_size_digits = 16;

int hex_value(char c) noexcept
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

bool is_token_char(char c) noexcept
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

enum class line_end : std::uint8_t { found, missing, malformed };

// Finds the CRLF that ends the line starting at pos; a bare CR or LF is malformed.
line_end find_line_end(std::string_view s, std::size_t pos, std::size_t& end) noexcept
{
    for (std::size_t i = pos; i < s.size(); ++i) {
        if (s[i] == '\n')
            return line_end::malformed;
        if (s[i] == '\r') {
            if (i + 1 == s.size())
                return line_end::missing;
            if (s[i + 1] != '\n')
                return line_end::malformed;
            end = i;
            return line_end::found;
        }
    }
    return line_end::missing;
}

// chunk-ext (RFC 9112 §7.1.1) as the parser's strict mode takes it: ";name[=value]" repeated,
// names and unquoted values tokens, quoted values without CR/LF. Returns whether ext is one.
bool valid_extensions(std::string_view ext) noexcept
{
    std::size_t i = 0;
    while (i < ext.size()) {
        if (ext[i] != ';')
            return false;
        std::size_t start = ++i;
        while (i < ext.size() && is_token_char(ext[i]))
            ++i;
        if (i == start)
            return false;
        if (i == ext.size() || ext[i] != '=')
            continue;
        if (++i < ext.size() && ext[i] == '"') {
            for (++i; i < ext.size() && ext[i] != '"'; ++i)
                if (ext[i] == '\\' && ++i == ext.size())
                    return false;
            if (i == ext.size())
                return false;
            ++i;
            continue;
        }
        start = i;
        while (i < ext.size() && is_token_char(ext[i]))
            ++i;
        if (i == start)
            return false;
    }
    return true;
}

} // namespace

chunked_peek peek_chunked(std::string_view framed, std::size_t max_payload, std::vector<std::string_view>& pieces)
{
    chunked_peek peek;
    std::size_t pos = 0;
    const auto incomplete = [&](std::size_t needed) {
        peek.status = chunked_peek::state::incomplete;
        peek.needed = needed;
        return peek;
    };
    const auto malformed = [&] {
        peek.status = chunked_peek::state::malformed;
        return peek;
    };
    for (;;) {
        // chunk-size [chunk-ext] CRLF
        std::uint64_t size = 0;
        std::size_t digits = 0;
        for (; pos + digits < framed.size(); ++digits) {
            const int v = hex_value(framed[pos + digits]);
            if (v < 0)
                break;
            if (digits == max_size_digits)
                return malformed();
            size = size * 16 + static_cast<std::uint64_t>(v);
        }
        if (pos + digits == framed.size())
            return incomplete(framed.size() + 1);
        if (digits == 0)
            return malformed();
        std::size_t end = 0;
        switch (find_line_end(framed, pos + digits, end)) {
        case line_end::missing: return incomplete(framed.size() + 1);
        case line_end::malformed: return malformed();
        case line_end::found: break;
        }
        if (!valid_extensions(framed.substr(pos + digits, end - pos - digits)))
            return malformed();
        pos = end + 2;
        if (size == 0)
            break;
        if (size > max_payload - peek.payload) {
            peek.status = chunked_peek::state::over_limit;
            return peek;
        }
        // chunk-data CRLF
        // Sizes near 2^64 pass an unlimited max_payload: no sum here may wrap.
        const auto data_size = static_cast<std::size_t>(size);
        const auto left = framed.size() - pos;
        if (left < data_size || left - data_size < 2) {
            constexpr auto after_data = 2 + last_chunk_bytes;
            const auto most = std::numeric_limits<std::size_t>::max();
            return incomplete(data_size > most - pos - after_data ? most : pos + data_size + after_data);
        }
        if (framed[pos + data_size] != '\r' || framed[pos + data_size + 1] != '\n')
            return malformed();
        pieces.push_back(framed.substr(pos, data_size));
        peek.payload += data_size;
        pos += data_size + 2;
    }
    // trailer-section CRLF: field lines until an empty one (the parser judges the fields).
    for (;;) {
        std::size_t end = 0;
        switch (find_line_end(framed, pos, end)) {
        case line_end::missing: return incomplete(framed.size() + 1);
        case line_end::malformed: return malformed();
        case line_end::found: break;
        }
        const bool empty = end == pos;
        pos = end + 2;
        if (empty)
            break;
    }
    peek.status = chunked_peek::state::complete;
    peek.framed = pos;
    return peek;
}

} // namespace turnout::http
