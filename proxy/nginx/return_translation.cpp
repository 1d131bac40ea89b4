#include "turnout/nginx/return_translation.hpp"

#include "turnout/config/config.hpp"
#include "turnout/nginx/values.hpp"

#include <algorithm>
#include <cctype>
#include <string_view>

namespace turnout::nginx {

namespace {

// nginx reads a lone argument as a URL when it starts so; otherwise as a code.
bool redirect_target(std::string_view arg)
{
    return arg.starts_with("http://") || arg.starts_with("https://") || arg.starts_with("$scheme");
}

// The first $name in text that turnout does not expand in an answer, or nothing. A '$'
// before anything but a letter or '_' is text to both.
std::optional<std::string> unexpandable_variable(std::string_view text)
{
    for (auto at = text.find('$'); at != std::string_view::npos; at = text.find('$', at + 1)) {
        auto end = at + 1;
        while (end < text.size() && (std::isalnum(static_cast<unsigned char>(text[end])) || text[end] == '_'))
            ++end;
        const auto name = text.substr(at + 1, end - at - 1);
        if (name.empty() && end < text.size() && text[end] == '{')
            return std::string("${...}");
        if (name.empty() || std::isdigit(static_cast<unsigned char>(name.front())))
            continue;
        if (name != "scheme" && name != "host" && name != "request_uri")
            return "$" + std::string(name);
    }
    return std::nullopt;
}

return_translation refused(std::string why)
{
    return {std::nullopt, verdict::untranslated, std::move(why), false};
}

} // namespace

return_translation translate_return(const directive& d)
{
    if (d.args.empty() || d.args.size() > 2)
        return {std::nullopt, verdict::untranslated, {}, true};
    toml_model::answer answer;
    std::string text;
    if (d.args.size() == 1 && redirect_target(d.args[0])) {
        answer.status = 302;
        text = d.args[0];
    } else {
        if (d.args[0].empty() || d.args[0].size() > 3 || d.args[0].find_first_not_of("0123456789") != std::string::npos)
            return {std::nullopt, verdict::untranslated, {}, true};
        answer.status = static_cast<unsigned>(std::stoul(d.args[0]));
        if (answer.status == 444)
            return refused("444 closes the connection without an answer; turnout always answers");
        if (answer.status < 200 || answer.status > 599)
            return refused("turnout answers statuses 200 to 599 only");
        if (d.args.size() == 2)
            text = d.args[1];
    }
    const bool redirect = config::is_redirect_status(answer.status);
    if (redirect && text.empty())
        return refused("a redirect without a URL: turnout's redirects need one");
    const bool control = std::any_of(text.begin(), text.end(), [](unsigned char c) { return c < 0x20 || c == 0x7f; });
    if (redirect && control)
        return refused("a URL with control characters cannot be a Location");
    if (const auto bad = unexpandable_variable(text))
        return refused("turnout expands $scheme, $host and $request_uri in an answer; not " + *bad);
    (redirect ? answer.location : answer.body) = text;

    return_translation t{answer, verdict::translated, {}, false};
    if (redirect) {
        t.why = "with Location " + text;
        if (text.starts_with('/'))
            t.why += " (made absolute with the request's scheme and Host as sent; nginx uses its own port)";
    } else if (!text.empty()) {
        t.why = "with its text (Content-Type: text/plain)";
    } else if (answer.status >= 400) {
        t.what = verdict::approximated;
        t.why = "with turnout's JSON error body where nginx sends its HTML error page";
    }
    return t;
}

} // namespace turnout::nginx
