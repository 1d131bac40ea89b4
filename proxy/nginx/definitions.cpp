#include "turnout/nginx/definitions.hpp"

#include "turnout/nginx/values.hpp"

#include <algorithm>

namespace turnout::nginx {

std::string strip_braces(std::string_view var)
{
    // "${http_mcp_session_id}" and "$http_mcp_session_id" name the same variable
    std::string out;
    for (const char c : var)
        if (c != '{' && c != '}')
            out += c;
    return out;
}

std::string percent_text(std::uint64_t basis_points)
{
    auto text = std::to_string(basis_points / 100);
    if (basis_points % 100)
        text += "." + std::to_string(basis_points % 100 / 10) + (basis_points % 10 ? std::to_string(basis_points % 10) : "");
    return text + "%";
}

upstream_def read_upstream(const directive& d)
{
    upstream_def u;
    u.block = &d;
    for (const auto& s : d.block) {
        if (s.name == "hash" && !s.args.empty())
            u.by_session = strip_braces(s.args[0]) == "$http_mcp_session_id";
        if (s.name != "server" || s.args.empty())
            continue;
        const auto address = backend_address(s.args[0], 80);
        if (!address)
            continue;
        bool down = false, backup = false;
        for (std::size_t i = 1; i < s.args.size(); ++i) {
            const std::string_view a = s.args[i];
            down |= a == "down";
            backup |= a == "backup";
            if (a.starts_with("max_fails="))
                if (const auto n = parse_size(a.substr(10)); n && *n < 1000)
                    u.max_fails = static_cast<unsigned>(*n);
            if (a.starts_with("fail_timeout="))
                u.fail_timeout = parse_time(a.substr(13));
        }
        if (!down)
            (backup ? u.backup : u.primary).push_back(*address);
    }
    return u;
}

split_def read_split(const directive& d)
{
    split_def s;
    s.block = &d;
    s.key = strip_braces(d.args[0]);
    std::uint64_t total = 0;
    std::string rest;
    for (const auto& e : d.block) {
        if (e.args.size() != 1 || e.has_block) {
            s.problem = "entry \"" + e.text() + "\" is not \"PERCENT VALUE;\"";
            continue;
        }
        if (e.name == "*") {
            rest = e.args[0];
            continue;
        }
        const std::string_view p = e.name;
        const auto dot = p.find('.');
        const auto whole = parse_size(p.substr(0, std::min(dot, p.size() - 1)));
        std::uint64_t bp = whole ? *whole * 100 : 0;
        if (dot != std::string_view::npos) {
            const auto frac = p.substr(dot + 1, p.size() - dot - 2);
            if (frac.empty() || frac.size() > 2 || !parse_size(frac))
                s.problem = "share \"" + e.name + "\" has more than two decimals";
            else
                bp += *parse_size(frac) * (frac.size() == 1 ? 10 : 1);
        }
        if (!p.ends_with('%') || !whole) {
            s.problem = "share \"" + e.name + "\" is not a percentage";
            continue;
        }
        total += bp;
        s.shares.emplace_back(e.args[0], bp);
    }
    if (total > 10000)
        s.problem = "shares add up to more than 100%";
    else if (!rest.empty())
        s.shares.emplace_back(rest, 10000 - total);
    else if (total < 10000)
        s.problem = percent_text(10000 - total) + " of clients get an empty value (no \"*\" entry)";
    return s;
}

map_def read_map(const directive& d)
{
    map_def m;
    m.block = &d;
    m.source = strip_braces(d.args[0]);
    if (m.source != "$host" && m.source != "$http_host" && m.source != "$server_name")
        m.problem = "turnout routes by host and path only, not by " + m.source;
    for (const auto& e : d.block) {
        if (e.name == "hostnames" || e.name == "volatile" || e.name == "include") {
            if (e.name == "hostnames")
                m.problem = "wildcard host names: turnout matches host names exactly";
            continue;
        }
        if (e.args.size() != 1) {
            m.problem = "entry \"" + e.text() + "\" is not \"KEY VALUE;\"";
            continue;
        }
        if (e.name == "default")
            m.default_value = e.args[0];
        else if (e.name.starts_with('~') || e.name.starts_with('*') || e.name.starts_with('.'))
            m.problem = "key \"" + e.name + "\": turnout matches host names exactly";
        else
            m.entries.emplace_back(e.name, e.args[0]);
    }
    return m;
}

} // namespace turnout::nginx
