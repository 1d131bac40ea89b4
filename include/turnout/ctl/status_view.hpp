#pragma once
// turnoutctl's reading of the status document (every field beyond the ones named in SPEC.md
// is optional) and its rendering as tables for a human.

#include <boost/json.hpp>

#include <cstdint>
#include <ostream>
#include <string>
#include <string_view>

namespace turnout::ctl {

namespace json = boost::json;

/// The value of key, or null when it is absent or JSON null.
const json::value* field(const json::object& o, std::string_view key);
/// An integer field, 0 when absent.
std::int64_t number(const json::object& o, std::string_view key);
/// A cell: strings as they are, numbers in decimal, booleans as yes/no, missing as "-".
std::string cell(const json::object& o, std::string_view key);
/// An array field (an empty one when absent).
const json::array& array_of(const json::object& o, std::string_view key);
/// The object of items whose "name" is name, or null.
const json::object* find_named(const json::array& items, std::string_view name);

/// `turnoutctl status` without --json: the process line, then a table per upstream.
void print_status(std::ostream& out, const json::object& status);
/// "blue=0 green=100" from an upstream document, or "" when it carries no weights.
std::string weights_of(const json::value& upstream);

} // namespace turnout::ctl
