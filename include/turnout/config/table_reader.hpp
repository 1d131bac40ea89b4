#pragma once
// Reading one TOML table of the configuration: the file's context (its name for messages, its
// folder for relative paths) and a reader that refuses unknown keys and checks every value's
// type and range, so each error points at the offending key (file:line:column). Shared by the
// section readers (config.cpp, upstream_reader.cpp, route_reader.cpp); not part of the
// configuration's public shape.

#include "turnout/config/config.hpp"
#include "turnout/config/duration.hpp"
#include "turnout/config/host_port.hpp"

#include <toml++/toml.h>

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <initializer_list>
#include <limits>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace turnout::config::detail {

namespace fs = std::filesystem;

inline constexpr std::string_view duration_hint = R"(expected a duration such as "250ms", "30s", "5m")";

// "a string", "an integer", ...: how a TOML value is named in messages.
std::string_view describe(toml::node_type type);
std::string lower(std::string_view s);
bool source_before(const toml::source_region& a, const toml::source_region& b);

// What every check needs to report an error and to resolve a relative path: the file's name as
// the user gave it (for messages) and its folder as an absolute path.
class context {
public:
    explicit context(std::string source_path)
        : source_path_(std::move(source_path))
    {
        std::error_code ec;
        const fs::path absolute = source_path_.empty() ? fs::current_path(ec) / "-"
                                                       : fs::absolute(source_path_, ec);
        if (ec)
            fail("cannot resolve the config file's folder: " + ec.message());
        absolute_path_ = absolute.lexically_normal();
        base_dir_ = absolute_path_.parent_path();
    }

    std::string absolute_path() const { return source_path_.empty() ? std::string{} : absolute_path_.string(); }

    std::string resolve(std::string_view path) const
    {
        const fs::path p{path};
        return (p.is_absolute() ? p : base_dir_ / p).lexically_normal().string();
    }

    [[noreturn]] void fail(const toml::source_region& where, std::string message) const
    {
        throw config_error(source_path_, static_cast<int>(where.begin.line), static_cast<int>(where.begin.column),
                           std::move(message));
    }

    [[noreturn]] void fail(std::string message) const { throw config_error(source_path_, 0, 0, std::move(message)); }

private:
    std::string source_path_;
    fs::path absolute_path_;
    fs::path base_dir_;
};

// One TOML table being read. It refuses keys it does not know as soon as it is built, and its
// getters check type and range, so every error points at the offending key or value.
class table_reader {
public:
    // header is how the table is written in the file ("[proxy]", "[[upstream.pool]]"), or empty
    // for the document itself.
    table_reader(const context& ctx, const toml::table& table, std::string header,
                 std::initializer_list<std::string_view> known_keys)
        : ctx_(ctx)
        , table_(table)
        , header_(std::move(header))
        , section_(header_)
    {
        std::erase(section_, '[');
        std::erase(section_, ']');
        reject_unknown_keys(known_keys);
    }

    const toml::source_region& source() const { return table_.source(); }
    const toml::node* find(std::string_view key) const { return table_.get(key); }
    const std::string& header() const { return header_; }

    // "upstream.pool.weight": the key as a dotted path, for messages.
    std::string name(std::string_view key) const
    {
        return section_.empty() ? std::string{key} : section_ + "." + std::string{key};
    }

    [[noreturn]] void fail_at(std::string_view key, const std::string& message) const
    {
        ctx_.fail(find(key)->source(), name(key) + ": " + message);
    }

    [[noreturn]] void fail_at(const toml::node& node, std::string_view key, const std::string& message) const
    {
        ctx_.fail(node.source(), name(key) + ": " + message);
    }

    [[noreturn]] void fail_type(const toml::node& node, std::string_view key, std::string_view expected) const
    {
        fail_at(node, key, "expected " + std::string{expected} + ", got " + std::string{describe(node.type())});
    }

    std::optional<std::string> get_string(std::string_view key) const
    {
        const toml::node* node = find(key);
        if (!node)
            return std::nullopt;
        if (!node->is_string())
            fail_type(*node, key, "a string");
        return node->as_string()->get();
    }

    std::string require_string(std::string_view key) const
    {
        if (!find(key))
            ctx_.fail(source(), "missing key '" + std::string{key} + "' in " + header_);
        return *get_string(key);
    }

    std::optional<std::int64_t> get_integer(std::string_view key, std::int64_t min, std::int64_t max) const
    {
        const toml::node* node = find(key);
        if (!node)
            return std::nullopt;
        if (!node->is_integer())
            fail_type(*node, key, "an integer");
        const std::int64_t value = node->as_integer()->get();
        if (value < min || value > max)
            fail_at(key, range_message(value, min, max));
        return value;
    }

    // An integer or a float, at least min.
    std::optional<double> get_number(std::string_view key, double min) const
    {
        const toml::node* node = find(key);
        if (!node)
            return std::nullopt;
        if (!node->is_number())
            fail_type(*node, key, "a number");
        const double value = node->is_integer() ? static_cast<double>(node->as_integer()->get())
                                                : node->as_floating_point()->get();
        if (!(value >= min))
            fail_at(key, "must be at least " + std::to_string(min));
        return value;
    }

    // min is 0s, or 1ms for a timeout where 0 would mean "expire at once".
    std::optional<duration> get_duration(std::string_view key, duration min = duration::zero()) const
    {
        const toml::node* node = find(key);
        if (!node)
            return std::nullopt;
        if (!node->is_string())
            fail_at(key, std::string{duration_hint} + ", got " + std::string{describe(node->type())});
        const auto value = parse_duration(node->as_string()->get());
        if (!value)
            fail_at(key, std::string{duration_hint});
        if (*value < min)
            fail_at(key, "must be greater than 0s");
        return value;
    }

    // A file system path; relative ones are made absolute against the config file's folder.
    std::optional<std::string> get_path(std::string_view key) const
    {
        const auto text = get_string(key);
        if (!text)
            return std::nullopt;
        if (text->empty())
            fail_at(key, "must not be empty (leave the key out instead)");
        return ctx_.resolve(*text);
    }

    const toml::table* get_table(std::string_view key) const
    {
        const toml::node* node = find(key);
        if (!node)
            return nullptr;
        if (!node->is_table())
            fail_type(*node, key, "a table ([" + name(key) + "])");
        return node->as_table();
    }

    // [[key]]: an array whose every element is a table. Empty when the key is absent.
    std::vector<const toml::table*> get_tables(std::string_view key) const
    {
        std::vector<const toml::table*> tables;
        const toml::node* node = find(key);
        if (!node)
            return tables;
        const std::string expected = "an array of tables ([[" + name(key) + "]])";
        if (!node->is_array())
            fail_type(*node, key, expected);
        for (const toml::node& element : *node->as_array()) {
            if (!element.is_table())
                fail_type(element, key, expected);
            tables.push_back(element.as_table());
        }
        return tables;
    }

    // An array of strings, each with its node so errors can point at the element.
    std::vector<std::pair<std::string, const toml::node*>> get_strings(std::string_view key) const
    {
        std::vector<std::pair<std::string, const toml::node*>> strings;
        const toml::node* node = find(key);
        if (!node)
            return strings;
        if (!node->is_array())
            fail_type(*node, key, "an array of strings");
        for (const toml::node& element : *node->as_array()) {
            if (!element.is_string())
                fail_type(element, key, "a string");
            strings.emplace_back(element.as_string()->get(), &element);
        }
        return strings;
    }

private:
    static std::string range_message(std::int64_t value, std::int64_t min, std::int64_t max)
    {
        if (value < 0 && min == 0)
            return "must not be negative";
        if (max == std::numeric_limits<std::int64_t>::max())
            return min == 1 ? "must be greater than 0" : "must be at least " + std::to_string(min);
        return "must be between " + std::to_string(min) + " and " + std::to_string(max);
    }

    // Reports the first unknown key in file order, so fixing errors top to bottom works.
    void reject_unknown_keys(std::initializer_list<std::string_view> known_keys) const
    {
        const toml::key* first = nullptr;
        for (const auto& [key, value] : table_) {
            const bool known = std::find(known_keys.begin(), known_keys.end(), key.str()) != known_keys.end();
            if (!known && (!first || source_before(key.source(), first->source())))
                first = &key;
        }
        if (!first)
            return;
        std::string message = "unknown key '" + std::string{first->str()} + "'";
        message += header_.empty() ? " (expected [proxy], [runtime], [[listen]], [[upstream]] or [[route]])"
                                   : " in " + header_;
        ctx_.fail(first->source(), std::move(message));
    }

    const context& ctx_;
    const toml::table& table_;
    std::string header_;
    std::string section_;
};

// Two spellings of one endpoint ("LocalHost:80" and "localhost:080") are the same endpoint.
std::pair<std::string, std::uint16_t> endpoint_key(const host_port& hp);

// host:port, or an error at node naming the key.
host_port read_address(const table_reader& table, std::string_view key, const std::string& text,
                       const toml::node& node);

// The section readers, one per part of the document.
client_key_config read_client_key(const table_reader& r, std::string_view key, bool allow_none);
void read_upstreams(const context& ctx, const table_reader& root, configuration& config);
void read_routes(const context& ctx, const table_reader& root, configuration& config);

} // namespace turnout::config::detail
