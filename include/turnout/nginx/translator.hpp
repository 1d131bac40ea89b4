#pragma once
// nginx configuration → turnout configuration: the subset of SPEC.md's "nginx compatibility"
// (upstreams, split_clients, map on the host, servers, listeners and certificates, prefix
// locations with proxy_pass, timeouts and sizes, logs, process settings) becomes turnout TOML,
// and every directive gets a report line saying what became of it and why.

#include "turnout/nginx/reader.hpp"

#include <string>
#include <string_view>
#include <vector>

namespace turnout::nginx {

/// translated: turnout does the same; approximated: it does nearly the same, the line says what
/// differs; ignored: no effect on a proxy of this kind; untranslated: turnout cannot do it, and
/// it changes where requests go or what clients get.
enum class verdict { translated, approximated, ignored, untranslated };

std::string_view to_string(verdict v);

struct report_line {
    std::string file;
    int line = 0;
    verdict what = verdict::translated;
    std::string directive; // its text, shortened
    std::string why;

    /// "PATH:LINE: verdict: directive — why"
    std::string text() const;
};

struct translation {
    std::string toml;
    std::vector<report_line> report;

    /// Nothing untranslated: turnout sends every request where nginx would and answers alike
    /// (up to what the approximated lines say).
    bool complete() const;
};

/// Translates the directives of main_file (read_file's result, includes expanded).
translation translate(const std::vector<directive>& conf, const std::string& main_file);

/// read_file + translate. Throws parse_error.
translation translate_file(const std::string& path);

} // namespace turnout::nginx
