#pragma once
// What an nginx configuration defines for proxy_pass to name: upstream blocks (their live and
// backup servers, passive-check parameters, a hash on the session id), split_clients (shares
// per value) and map (host → value). Read once, before the translation walks the file, since
// nginx lets a definition follow its use.

#include "turnout/config/duration.hpp"
#include "turnout/nginx/reader.hpp"

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace turnout::nginx {

/// upstream NAME { server ...; }: servers marked down are left out.
struct upstream_def {
    const directive* block = nullptr;
    std::vector<std::string> primary;
    std::vector<std::string> backup;
    std::optional<unsigned> max_fails;
    std::optional<config::duration> fail_timeout;
    bool by_session = false; // hash $http_mcp_session_id
};

/// split_clients KEY $VAR { N% VALUE; * VALUE; }: shares in hundredths of a percent.
struct split_def {
    const directive* block = nullptr;
    std::string key;
    std::vector<std::pair<std::string, std::uint64_t>> shares; // value → basis points
    std::string problem;
};

/// map SOURCE $VAR { default VALUE; HOST VALUE; }: exact host names only.
struct map_def {
    const directive* block = nullptr;
    std::string source;
    std::string default_value;
    std::vector<std::pair<std::string, std::string>> entries; // host → value
    std::string problem;
};

upstream_def read_upstream(const directive& d);
/// d has two arguments and a block.
split_def read_split(const directive& d);
/// d has two arguments and a block.
map_def read_map(const directive& d);

/// "${http_mcp_session_id}" → "$http_mcp_session_id": both name the same variable.
std::string strip_braces(std::string_view var);

/// 550 → "5.5%".
std::string percent_text(std::uint64_t basis_points);

} // namespace turnout::nginx
