#include "turnout/session/session_id.hpp"

#include "turnout/http/target.hpp"

#include <algorithm>

namespace turnout::session {

namespace {

constexpr std::size_t max_session_id_size = 256;

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

std::optional<located_id> legacy_session_id(std::string_view target) noexcept
{
    // Literals, so the returned name outlives the call.
    static constexpr std::string_view names[] = {"sessionId", "session_id"};
    if (target.find('?') == std::string_view::npos)
        return std::nullopt; // no query (the usual Streamable HTTP request): one scan, not one per name
    for (const std::string_view name : names)
        if (const auto value = http::query_parameter(target, name))
            return located_id{name, *value};
    return std::nullopt;
}

// The SSE parsing rules are those of the HTML standard's "event stream interpretation", cut
// down to what finds the endpoint event: lines, `event`, `data` and dispatch on a blank line.
std::optional<std::string> endpoint_scanner::feed(std::string_view bytes)
{
    if (done_)
        return std::nullopt;
    // Only the first max_scan_ bytes are looked at, which also bounds the line and data_.
    bytes = bytes.substr(0, max_scan_ - lines_.consumed());
    std::optional<std::string> found;
    lines_.feed(bytes, [&](std::string_view line) {
        found = on_line(line);
        return found.has_value();
    });
    if (found || lines_.consumed() >= max_scan_)
        done_ = true;
    return found;
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

    const auto [field, value] = http::split_event_field(line);
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
