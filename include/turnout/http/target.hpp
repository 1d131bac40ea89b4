#pragma once
// Query parameters of a request target, read and replaced byte for byte (no percent-decoding:
// what turnout looks for in a target, session ids, is visible ASCII by spec).

#include <optional>
#include <string>
#include <string_view>

namespace turnout::http {

/// The raw value of query parameter name in a request target ("/messages?sessionId=abc"),
/// nullopt when absent. No percent-decoding (session ids are visible ASCII by spec).
std::optional<std::string_view> query_parameter(std::string_view target, std::string_view name) noexcept;

/// target with the value of query parameter name replaced by value.
std::string replace_query_parameter(std::string_view target, std::string_view name, std::string_view value);

} // namespace turnout::http
