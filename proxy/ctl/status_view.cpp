#include "turnout/ctl/status_view.hpp"

#include <algorithm>
#include <cstdint>
#include <iomanip>
#include <sstream>
#include <string>
#include <vector>

namespace turnout::ctl {

const json::value* field(const json::object& o, std::string_view key)
{
    const auto* v = o.if_contains(key);
    return v && !v->is_null() ? v : nullptr;
}

std::int64_t number(const json::object& o, std::string_view key)
{
    const auto* v = field(o, key);
    if (!v)
        return 0;
    if (v->is_int64())
        return v->as_int64();
    if (v->is_uint64())
        return static_cast<std::int64_t>(v->as_uint64());
    if (v->is_double())
        return static_cast<std::int64_t>(v->as_double());
    return 0;
}

/// A cell: strings as they are, numbers in decimal, booleans as yes/no, missing as "-".
std::string cell(const json::object& o, std::string_view key)
{
    const auto* v = field(o, key);
    if (!v)
        return "-";
    if (v->is_string())
        return v->as_string().empty() ? "-" : std::string(v->as_string());
    if (v->is_bool())
        return v->as_bool() ? "yes" : "no";
    if (v->is_int64())
        return std::to_string(v->as_int64());
    if (v->is_uint64())
        return std::to_string(v->as_uint64());
    return json::serialize(*v);
}

const json::array& array_of(const json::object& o, std::string_view key)
{
    static const json::array empty;
    const auto* v = field(o, key);
    return v && v->is_array() ? v->as_array() : empty;
}

const json::object* find_named(const json::array& items, std::string_view name)
{
    for (const auto& item : items)
        if (item.is_object())
            if (const auto* n = field(item.as_object(), "name");
                n && n->is_string() && n->as_string() == name)
                return &item.as_object();
    return nullptr;
}

// ---------------------------------------------------------------------------------------------
// Human output

/// Columns padded to their widest cell; numbers right-aligned so their digits line up.
namespace {

class table {
public:
    struct column {
        std::string title;
        bool numeric = false;
    };

    explicit table(std::vector<column> columns) : columns_(std::move(columns)) {}

    void add(std::vector<std::string> cells) { rows_.push_back(std::move(cells)); }

    void print(std::ostream& out, std::string_view indent) const
    {
        std::vector<std::size_t> widths(columns_.size());
        for (std::size_t c = 0; c < columns_.size(); ++c) {
            widths[c] = columns_[c].title.size();
            for (const auto& row : rows_)
                widths[c] = std::max(widths[c], row[c].size());
        }
        std::vector<std::string> titles;
        for (const auto& col : columns_)
            titles.push_back(col.title);
        print_row(out, indent, titles, widths);
        for (const auto& row : rows_)
            print_row(out, indent, row, widths);
    }

private:
    void print_row(std::ostream& out, std::string_view indent, const std::vector<std::string>& cells,
                   const std::vector<std::size_t>& widths) const
    {
        std::string line{indent};
        for (std::size_t c = 0; c < cells.size(); ++c) {
            const std::string pad(widths[c] - cells[c].size(), ' ');
            if (c > 0)
                line += "  ";
            line += columns_[c].numeric ? pad + cells[c] : cells[c] + pad;
        }
        while (line.ends_with(' ')) // no trailing blanks after a left-aligned last column
            line.pop_back();
        out << line << '\n';
    }

    std::vector<column> columns_;
    std::vector<std::vector<std::string>> rows_;
};

std::string format_uptime(std::int64_t seconds)
{
    std::string out;
    const std::pair<std::int64_t, const char*> units[] = {{86400, "d"}, {3600, "h"}, {60, "m"}};
    for (const auto& [size, suffix] : units)
        if (seconds >= size || !out.empty()) {
            out += std::to_string(seconds / size) + suffix + " ";
            seconds %= size;
        }
    return out + std::to_string(seconds) + "s";
}

/// A pool's tools against the baseline, briefly: "baseline", "same", or "+added -removed
/// ~changed" (names); "-" before any MCP probe; "backends disagree" said too.
std::string tools_summary(const json::object& pool)
{
    const auto* t = field(pool, "tools");
    if (!t || !t->is_object())
        return "-";
    const auto& tools = t->as_object();
    std::string out;
    for (const auto& [key, mark] : {std::pair{"added", '+'}, std::pair{"removed", '-'}, std::pair{"changed", '~'}})
        for (const auto& name : array_of(tools, key))
            if (name.is_string())
                out += (out.empty() ? "" : " ") + (mark + std::string(name.as_string()));
    if (out.empty() && field(tools, "hash")) {
        const auto* baseline = field(tools, "baseline");
        const bool is_baseline = baseline && baseline->is_string() && baseline->as_string() == cell(pool, "name");
        out = is_baseline ? "baseline" : "same";
    }
    if (out.empty())
        out = "-"; // never listed by an MCP probe (or backends that disagree, said below)
    if (const auto* consistent = field(tools, "consistent"); consistent && consistent->is_bool() && !consistent->as_bool())
        out += " (backends disagree)";
    return out;
}

void print_upstream(std::ostream& out, const json::object& upstream)
{
    out << "\nupstream " << cell(upstream, "name") << "  affinity " << cell(upstream, "affinity")
        << "  sessions " << cell(upstream, "sessions") << '\n';

    // The tools column only once an MCP probe listed some: without one it would say nothing.
    const auto& pool_list = array_of(upstream, "pools");
    const bool show_tools = std::any_of(pool_list.begin(), pool_list.end(), [](const json::value& p) {
        return p.is_object() && tools_summary(p.as_object()) != "-";
    });
    std::vector<table::column> pool_columns{{"POOL"}, {"WEIGHT", true}, {"DRAINING"}, {"VERSION"}};
    if (show_tools)
        pool_columns.push_back({"TOOLS"});
    table pools{std::move(pool_columns)};
    table backends{{{"POOL"},
                    {"BACKEND"},
                    {"HEALTHY"},
                    {"DRAINING"},
                    {"SESSIONS", true},
                    {"CONNECTIONS", true},
                    {"STREAMS", true},
                    {"IN_FLIGHT", true},
                    {"REQUESTS", true},
                    {"ERRORS", true}}};
    std::size_t backend_count = 0;
    for (const auto& p : pool_list) {
        if (!p.is_object())
            continue;
        const auto& pool = p.as_object();
        const auto* backup = field(pool, "backup");
        const bool is_backup = backup && backup->is_bool() && backup->as_bool();
        std::vector<std::string> row{cell(pool, "name") + (is_backup ? " (backup)" : ""), cell(pool, "weight"),
                                     cell(pool, "draining"), cell(pool, "version")};
        if (show_tools)
            row.push_back(tools_summary(pool));
        pools.add(std::move(row));
        for (const auto& b : array_of(pool, "backends")) {
            if (!b.is_object())
                continue;
            const auto& backend = b.as_object();
            backends.add({cell(pool, "name"), cell(backend, "address"), cell(backend, "healthy"),
                          cell(backend, "draining"), cell(backend, "sessions"), cell(backend, "connections"),
                          cell(backend, "streams"), cell(backend, "in_flight"),
                          cell(backend, "requests_total"), cell(backend, "errors_total")});
            ++backend_count;
        }
    }
    pools.print(out, "  ");
    if (const auto* r = field(upstream, "rollout"); r && r->is_object()) {
        const auto& rollout = r->as_object();
        out << "  rollout: " << cell(rollout, "pool") << ' ' << cell(rollout, "weight") << "% against "
            << cell(rollout, "baseline") << ", step " << cell(rollout, "step") << '/'
            << array_of(rollout, "steps").size() << ", " << cell(rollout, "state")
            << " (turnoutctl rollout status " << cell(upstream, "name") << ")\n";
    }
    if (backend_count > 0) {
        out << '\n';
        backends.print(out, "  ");
    }
}

} // namespace

void print_status(std::ostream& out, const json::object& status)
{
    out << "turnout " << cell(status, "version") << "  up " << format_uptime(number(status, "uptime_s"));
    if (const auto* d = field(status, "draining"); d && d->is_bool() && d->as_bool())
        out << "  DRAINING (shutting down)";
    out << '\n';
    for (const auto& u : array_of(status, "upstreams"))
        if (u.is_object())
            print_upstream(out, u.as_object());
}

/// "blue=0 green=100" from an upstream document, or "" when it carries no weights.
std::string weights_of(const json::value& upstream)
{
    if (!upstream.is_object())
        return {};
    std::string out;
    for (const auto& p : array_of(upstream.as_object(), "pools"))
        if (p.is_object() && field(p.as_object(), "weight"))
            out +=
                (out.empty() ? "" : " ") + cell(p.as_object(), "name") + "=" + cell(p.as_object(), "weight");
    return out;
}

} // namespace turnout::ctl
