#include "turnout/nginx/loader.hpp"

#include <fstream>

namespace turnout::nginx {

namespace {

// The first statement of a file that is neither named .conf nor .toml.
bool looks_like_nginx(std::istream& in)
{
    std::string line;
    while (std::getline(in, line)) {
        const auto start = line.find_first_not_of(" \t\r");
        if (start == std::string::npos || line[start] == '#')
            continue;
        if (line[start] == '[')
            return false;
        const auto stop = line.find_first_of("=;{", start);
        return stop != std::string::npos && line[stop] != '=';
    }
    return false;
}

} // namespace

bool is_nginx_config(const std::string& path)
{
    if (path.ends_with(".conf"))
        return true;
    if (path.ends_with(".toml"))
        return false;
    std::ifstream in(path);
    return in && looks_like_nginx(in);
}

config::configuration configuration_from(const translation& t, const std::string& path)
{
    if (!t.complete()) {
        std::size_t count = 0;
        const report_line* first = nullptr;
        for (const auto& line : t.report)
            if (line.what == verdict::untranslated && count++ == 0)
                first = &line;
        throw config::config_error(path, 0, 0,
                                   std::to_string(count) + " nginx directive(s) turnout cannot translate, first " +
                                       first->text() + " (turnout import nginx lists them all)");
    }
    return config::parse(t.toml, path);
}

config::configuration load_configuration(const std::string& path)
{
    if (!is_nginx_config(path))
        return config::load_file(path);
    try {
        return configuration_from(translate_file(path), path);
    } catch (const parse_error& e) {
        // what() is already nginx's "PATH:LINE: message"; an empty path keeps it as it is.
        throw config::config_error("", 0, 0, e.what());
    }
}

} // namespace turnout::nginx
