#pragma once
// One way in for every configuration file: turnout TOML as it is, or an nginx configuration
// through the translation (`turnout -c nginx.conf`, SIGHUP, -t and upgrades alike). An nginx
// file with anything untranslated is refused: it would send requests elsewhere, or answer
// clients otherwise, than the nginx it replaces.

#include "turnout/config/config.hpp"
#include "turnout/nginx/translator.hpp"

#include <string>

namespace turnout::nginx {

/// Whether path holds an nginx configuration: a name ending in ".conf" does, one ending in
/// ".toml" does not; otherwise the first statement decides (TOML's "[table]" or "key = value",
/// nginx's "name args;" or "name {").
bool is_nginx_config(const std::string& path);

/// The configuration in path, whichever language it is written in. Throws config::config_error
/// (for nginx: a grammar error as "PATH:LINE: message", or the untranslated directives).
config::configuration load_configuration(const std::string& path);

/// translate_file(path) turned into a configuration: the TOML is parsed as if written next to
/// path. Throws config::config_error when anything is untranslated or the result does not load.
config::configuration configuration_from(const translation& t, const std::string& path);

} // namespace turnout::nginx
