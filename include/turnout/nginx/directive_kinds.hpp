#pragma once
// The directives the translation knows by name alone: those with no effect on a proxy of
// turnout's kind, those turnout cannot do (each changes where requests go or what clients
// get), and those whose one harmless value is nginx's default (gzip off), each with why.

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace turnout::nginx {

/// Why the directive has no effect on turnout, or nullopt.
std::optional<std::string_view> no_effect_reason(std::string_view name);

/// Why turnout cannot do what the directive does, or nullopt.
std::optional<std::string_view> impossible_reason(std::string_view name);

/// The directive is written with the one value that needs nothing (gzip off, proxy_cache off).
bool harmless_value(std::string_view name, const std::vector<std::string>& args);

} // namespace turnout::nginx
