#include "turnout/nginx/toml_model.hpp"

#include "turnout/nginx/values.hpp"

#include <algorithm>
#include <cctype>

namespace turnout::nginx {

namespace {

void comment_line(std::string& out, const std::string& comment, const char* indent = "")
{
    if (!comment.empty())
        out += std::string(indent) + "# " + toml_text(comment) + "\n";
}

std::string string_array(const std::vector<std::string>& items)
{
    std::string out = "[";
    for (std::size_t i = 0; i < items.size(); ++i)
        out += (i ? ", " : "") + toml_string(items[i]);
    return out + "]";
}

} // namespace

void toml_model::set(const std::string& key, std::string value, std::string comment)
{
    const auto it = std::find_if(proxy.begin(), proxy.end(), [&](const setting& s) { return s.key == key; });
    if (it != proxy.end()) {
        it->value = std::move(value);
        it->comment = std::move(comment);
        return;
    }
    proxy.push_back({key, std::move(value), std::move(comment)});
}

const toml_model::setting* toml_model::find(const std::string& key) const
{
    const auto it = std::find_if(proxy.begin(), proxy.end(), [&](const setting& s) { return s.key == key; });
    return it == proxy.end() ? nullptr : &*it;
}

toml_model::upstream* toml_model::find_upstream(const std::string& name)
{
    const auto it = std::find_if(upstreams.begin(), upstreams.end(), [&](const upstream& u) { return u.name == name; });
    return it == upstreams.end() ? nullptr : &*it;
}

toml_model::listener& toml_model::listener_for(const std::string& address)
{
    const auto it =
        std::find_if(listeners.begin(), listeners.end(), [&](const listener& l) { return l.address == address; });
    if (it != listeners.end())
        return *it;
    listeners.push_back({address, {}, {}, {}, {}, {}});
    return listeners.back();
}

std::string toml_model::name_listener(const std::string& address)
{
    auto& l = listener_for(address);
    if (!l.name.empty())
        return l.name;
    // turnout's names are letters, digits, '.', '_' and '-': "127.0.0.1:8080" → "127.0.0.1_8080".
    std::string name;
    for (const char c : address.substr(0, 56))
        name += std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '-' ? c : '_';
    const auto taken = [&](const std::string& n) {
        return std::any_of(listeners.begin(), listeners.end(), [&](const listener& x) { return x.name == n; });
    };
    std::string unique = name;
    for (int i = 2; taken(unique); ++i)
        unique = name + "-" + std::to_string(i);
    l.name = unique;
    return unique;
}

std::string toml_model::text() const
{
    std::string out = "# turnout configuration translated from " + toml_text(source) + " by `turnout import nginx`.\n";
    if (!gaps.empty()) {
        out += "#\n# Not translated (see the report; these change where requests go or what clients get):\n";
        for (const auto& g : gaps)
            out += "#   " + toml_text(g) + "\n";
    }
    out += "\n[proxy]\n";
    for (const auto& s : proxy) {
        comment_line(out, s.comment);
        out += s.key + " = " + s.value + "\n";
    }
    for (const auto& l : listeners) {
        out += "\n";
        comment_line(out, l.comment);
        out += "[[listen]]\naddress = " + toml_string(l.address) + "\n";
        if (!l.name.empty())
            out += "name = " + toml_string(l.name) + "\n";
        if (!l.cert.empty())
            out += "tls_cert = " + toml_string(l.cert) + "\ntls_key = " + toml_string(l.key) + "\n";
        for (const auto& c : l.more)
            out += "\n  [[listen.certificate]]\n  cert = " + toml_string(c.cert) + "\n  key = " + toml_string(c.key) +
                   "\n";
    }
    for (const auto& u : upstreams) {
        out += "\n";
        comment_line(out, u.comment);
        out += "[[upstream]]\nname = " + toml_string(u.name) + "\n";
        for (const auto& p : u.pools) {
            out += "\n";
            comment_line(out, p.comment, "  ");
            out += "  [[upstream.pool]]\n  name = " + toml_string(p.name) + "\n  weight = " + std::to_string(p.weight) +
                   "\n  backends = " + string_array(p.backends) + "\n";
            if (p.backup)
                out += "  backup = true\n";
            if (p.tls)
                out += "  tls = true\n";
        }
        if (u.passive_failures || u.passive_backoff) {
            out += "\n  # nginx has no active checks: only passive ones, from max_fails and fail_timeout\n"
                   "  [upstream.health]\n  kind = \"none\"\n";
            if (u.passive_failures)
                out += "  passive_failures = " + std::to_string(*u.passive_failures) + "\n";
            if (u.passive_backoff)
                out += "  passive_backoff = " + toml_string(*u.passive_backoff) + "\n  passive_backoff_max = " +
                       toml_string(*u.passive_backoff) + "\n";
        }
    }
    for (const auto& r : routes) {
        out += "\n";
        comment_line(out, r.comment);
        out += std::string("[[route]]\n") + (r.exact ? "path" : "path_prefix") + " = " + toml_string(r.path_prefix) +
               "\n";
        if (!r.host.empty())
            out += "host = " + toml_string(r.host) + "\n";
        if (!r.listen.empty())
            out += "listen = " + string_array(r.listen) + "\n";
        if (r.fixed) {
            out += "answer = { status = " + std::to_string(r.fixed->status);
            if (!r.fixed->location.empty())
                out += ", location = " + toml_string(r.fixed->location);
            if (!r.fixed->body.empty())
                out += ", body = " + toml_string(r.fixed->body);
            out += " }\n";
        } else {
            out += "upstream = " + toml_string(r.upstream) + "\n";
        }
    }
    return out;
}

} // namespace turnout::nginx
