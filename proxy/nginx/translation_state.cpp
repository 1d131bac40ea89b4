#include "turnout/nginx/translation_state.hpp"

#include <filesystem>

namespace turnout::nginx {

namespace {

constexpr std::size_t max_directive_text = 72;

std::string shorten(std::string text)
{
    for (char& c : text)
        if (c == '\n' || c == '\r' || c == '\t')
            c = ' ';
    if (text.size() > max_directive_text)
        text = text.substr(0, max_directive_text - 3) + "...";
    return text;
}

} // namespace

std::size_t translation_state::add(const directive& d, verdict v, std::string why)
{
    report.push_back({d.file, d.line, v, shorten(d.text()), std::move(why)});
    return report.size() - 1;
}

void translation_state::unknown(const directive& d)
{
    add(d, verdict::untranslated, "turnout has no equivalent");
}

std::string translation_state::resolve(const directive&, const std::string& path) const
{
    if (path.starts_with('/'))
        return path;
    std::error_code ec;
    const auto main = std::filesystem::absolute(model.source, ec);
    return (main.parent_path() / path).lexically_normal().string();
}

} // namespace turnout::nginx
