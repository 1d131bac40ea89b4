#pragma once
// What the pieces of the nginx translation share while they walk a configuration: the turnout
// configuration being built, the report (one line per directive), and the definitions
// proxy_pass may name.

#include "turnout/nginx/definitions.hpp"
#include "turnout/nginx/toml_model.hpp"
#include "turnout/nginx/translator.hpp"

#include <cstddef>
#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <utility>
#include <vector>

namespace turnout::nginx {

/// The directives that set one [proxy] value turnout has once: each value and its report line.
struct setting_uses {
    std::vector<std::pair<std::uint64_t, std::size_t>> uses;
};

struct translation_state {
    toml_model model;
    std::vector<report_line> report;
    std::map<std::string, upstream_def> upstreams; // by name
    std::map<std::string, split_def> splits;       // by variable
    std::map<std::string, map_def> maps;           // by variable
    std::set<std::string> referenced;              // every proxy_pass target, as written
    std::map<std::string, setting_uses> settings;  // by directive name

    /// Adds d's report line; returns its index, so that a verdict can be settled later.
    std::size_t add(const directive& d, verdict v, std::string why);
    /// untranslated: turnout has no equivalent.
    void unknown(const directive& d);
    /// path made absolute against the main file's folder (what nginx calls its prefix), so
    /// the TOML means the same wherever it is written.
    std::string resolve(const directive& d, const std::string& path) const;
};

} // namespace turnout::nginx
