#include "turnout/metrics/exposition.hpp"

#include <charconv>
#include <cmath>

namespace turnout::metrics {

std::string escape_label_value(std::string_view value)
{
    std::string out;
    out.reserve(value.size());
    for (const char c : value) {
        switch (c) {
        case '\\':
            out += "\\\\";
            break;
        case '"':
            out += "\\\"";
            break;
        case '\n':
            out += "\\n";
            break;
        default:
            out += c;
        }
    }
    return out;
}

labels& labels::add(std::string_view name, std::string_view value)
{
    if (!text_.empty())
        text_ += ',';
    text_.append(name).append("=\"").append(escape_label_value(value)).append("\"");
    return *this;
}

labels labels::with(std::string_view name, std::string_view value) const
{
    auto copy = *this;
    copy.add(name, value);
    return copy;
}

void exposition::family(std::string_view name, family_type type, std::string_view help)
{
    if (!declared_.emplace(name).second)
        return;
    static constexpr std::string_view types[] = {"gauge", "counter", "histogram"};
    out_.append("# HELP ").append(name).append(" ").append(help).append("\n");
    out_.append("# TYPE ").append(name).append(" ").append(types[static_cast<int>(type)]).append("\n");
}

void exposition::begin_sample(std::string_view name, const labels& l)
{
    out_.append(name);
    if (!l.text().empty())
        out_.append("{").append(l.text()).append("}");
    out_ += ' ';
}

void exposition::sample(std::string_view name, const labels& l, std::int64_t value)
{
    begin_sample(name, l);
    out_.append(std::to_string(value)).append("\n");
}

void exposition::sample(std::string_view name, const labels& l, std::uint64_t value)
{
    begin_sample(name, l);
    out_.append(std::to_string(value)).append("\n");
}

void exposition::sample(std::string_view name, const labels& l, double value)
{
    begin_sample(name, l);
    if (std::isinf(value)) {
        out_.append(value > 0 ? "+Inf" : "-Inf");
    } else if (std::isnan(value)) {
        out_.append("NaN");
    } else {
        char text[32];
        const auto r = std::to_chars(text, text + sizeof text, value);
        out_.append(text, r.ptr);
    }
    out_ += '\n';
}

} // namespace turnout::metrics
