#include "turnout/session/session_id.hpp"

#include <algorithm>

namespace turnout::session {

namespace {

constexpr std::size_t max_session_id_size = 256;

// Where a parameter sits in a target: its value spans [value_begin, value_end); has_equals is
// false for a bare "name" (an empty value with nowhere to put a new one but after the name).
struct parameter_span {
    std::size_t value_begin;
    std::size_t value_end;
    bool has_equals;
};

// The query of a target: what follows the first '?', up to a '#'. A '#' before any '?' means
// the '?' belongs to the fragment, so there is no query.
std::optional<parameter_span> find_parameter(std::string_view target, std::string_view name) noexcept
{
    // The query starts at the first '?', unless a fragment ('#') starts before it. Two
    // memchr scans: find_first_of would run one per character of the target.
    const std::size_t question = target.find('?');
    if (question == std::string_view::npos || target.substr(0, question).find('#') != std::string_view::npos)
        return std::nullopt;
    const std::size_t query_end = std::min(target.find('#', question + 1), target.size());

    std::size_t pos = question + 1;
    while (pos <= query_end) {
        const std::size_t pair_end = std::min(target.find('&', pos), query_end);
        const std::string_view pair = target.substr(pos, pair_end - pos);
        const std::size_t equals = pair.find('=');
        if (pair.substr(0, equals) == name) {
            if (equals == std::string_view::npos)
                return parameter_span{pair_end, pair_end, false};
            return parameter_span{pos + equals + 1, pair_end, true};
        }
        pos = pair_end + 1;
    }
    return std::nullopt;
}

} // namespace

bool is_valid_session_id(std::string_view id) noexcept
{
    if (id.empty() || id.size() > max_session_id_size)
        return false;
    return std::all_of(id.begin(), id.end(), [](char c) {
        const auto byte = static_cast<unsigned char>(c);
        return byte >= 0x21 && byte <= 0x7E;
    });
}

std::optional<std::string_view> query_parameter(std::string_view target, std::string_view name) noexcept
{
    const auto span = find_parameter(target, name);
    if (!span)
        return std::nullopt;
    return target.substr(span->value_begin, span->value_end - span->value_begin);
}

std::optional<located_id> legacy_session_id(std::string_view target) noexcept
{
    // Literals, so the returned name outlives the call.
    static constexpr std::string_view names[] = {"sessionId", "session_id"};
    for (const std::string_view name : names)
        if (const auto value = query_parameter(target, name))
            return located_id{name, *value};
    return std::nullopt;
}

std::string replace_query_parameter(std::string_view target, std::string_view name, std::string_view value)
{
    const auto span = find_parameter(target, name);
    if (!span)
        return std::string{target};
    std::string result;
    result.reserve(target.size() + value.size() + 1);
    result.append(target.substr(0, span->value_begin));
    if (!span->has_equals)
        result += '=';
    result.append(value);
    result.append(target.substr(span->value_end));
    return result;
}

// The SSE parsing rules are those of the HTML standard's "event stream interpretation", cut
// down to what finds the endpoint event: lines, `event`, `data` and dispatch on a blank line.
std::optional<std::string> endpoint_scanner::feed(std::string_view bytes)
{
    if (done_)
        return std::nullopt;
    // Only the first max_scan_ bytes are looked at, which also bounds line_ and data_.
    bytes = bytes.substr(0, max_scan_ - scanned_);
    const std::size_t start = scanned_;
    scanned_ += bytes.size();
    if (scanned_ >= max_scan_)
        done_ = true;

    for (std::size_t i = 0; i < bytes.size(); ++i) {
        const char c = bytes[i];
        // A CR ends a line at once; line_ then holds just that CR (a line never contains one
        // otherwise), so an LF that arrives next, even in the next piece, is not a second line
        // end.
        if (!line_.empty() && line_.front() == '\r') {
            line_.clear();
            if (c == '\n')
                continue;
        }
        if (c == '\r' || c == '\n') {
            auto found = on_line(line_);
            line_.assign(c == '\r' ? 1 : 0, '\r');
            if (found) {
                done_ = true;
                return found;
            }
            continue;
        }
        line_ += c;
        // A UTF-8 byte order mark at the very start of the stream is not part of the first line.
        if (start + i == 2 && line_ == "\xEF\xBB\xBF")
            line_.clear();
    }
    return std::nullopt;
}

std::optional<std::string> endpoint_scanner::on_line(std::string_view line)
{
    // The data buffer keeps the spec's trailing LF per data line; this is the dispatched value.
    const auto endpoint_data = [this]() -> std::optional<std::string> {
        if (!in_endpoint_event_ || data_.size() <= 1)
            return std::nullopt;
        return data_.substr(0, data_.size() - 1);
    };

    if (line.empty()) { // dispatch
        auto found = endpoint_data();
        in_endpoint_event_ = false;
        data_.clear();
        return found;
    }
    if (line.front() == ':') // comment
        return std::nullopt;

    const std::size_t colon = line.find(':');
    const std::string_view field = line.substr(0, colon);
    std::string_view value = colon == std::string_view::npos ? std::string_view{} : line.substr(colon + 1);
    if (value.starts_with(' '))
        value.remove_prefix(1);

    if (field == "event") {
        in_endpoint_event_ = value == "endpoint";
    } else if (field == "data") {
        data_.append(value);
        data_ += '\n';
        // Report as soon as the endpoint's data line is complete, not only at dispatch: the
        // session must be known before the client, which gets these bytes next, can use it.
        return endpoint_data();
    }
    return std::nullopt;
}

} // namespace turnout::session
