#include "turnout/admin/admin_api.hpp"

#include "turnout/admin/rollout_body.hpp"
#include "turnout/config/config.hpp"
#include "turnout/config/duration.hpp"
#include "turnout/config/rules.hpp"

#include <boost/json.hpp>

#include <algorithm>
#include <array>
#include <charconv>
#include <cstdio>
#include <functional>
#include <optional>
#include <set>
#include <stdexcept>
#include <vector>

namespace turnout::admin {

namespace {

namespace json = boost::json;

// ---------------------------------------------------------------------------------------------
// Answers

http_answer json_answer(unsigned status, const json::value& body)
{
    return {status, "application/json", json::serialize(body), {}};
}

http_answer bad_request(std::string_view sentence) { return error_answer(400, sentence); }

/// A change's outcome: the upstream's new state on success, its one sentence otherwise.
http_answer from_result(const result& r)
{
    if (r.status != 200)
        return error_answer(r.status, r.error);
    if (r.body.empty())
        return json_answer(200, json::object{{"ok", true}});
    return json_answer(200, r.body);
}

// ---------------------------------------------------------------------------------------------
// Request bodies: the admin server checks their shape, control checks their meaning.

/// A parsed body, or the 400 that says why there is none.
struct parsed_body {
    json::value value;
    std::optional<http_answer> error;
};

bool is_blank(std::string_view body)
{
    return body.find_first_not_of(" \t\r\n") == std::string_view::npos;
}

parsed_body parse_body(std::string_view body)
{
    if (is_blank(body))
        return {{}, bad_request("request body is not valid JSON: the body is empty")};
    boost::system::error_code ec;
    auto value = json::parse(body, ec);
    if (ec)
        return {{}, bad_request("request body is not valid JSON: " + ec.message())};
    return {std::move(value), std::nullopt};
}

/// A field the endpoint does not know is more likely a typo than something to ignore.
std::optional<http_answer> reject_unknown_fields(const json::object& body, std::string_view what,
                                                 std::initializer_list<std::string_view> known)
{
    for (const auto& field : body) {
        if (std::find(known.begin(), known.end(), field.key()) == known.end())
            return bad_request(std::string{what} + ": unknown field \"" + std::string{field.key()} + "\"");
    }
    return std::nullopt;
}

/// A body that must be a JSON object with only the `known` fields: the parsed value, or the
/// answer refusing it (not JSON; not an object, answered with `not_object`; an unknown field).
parsed_body parse_object_body(std::string_view body, std::string_view what, const std::string& not_object,
                              std::initializer_list<std::string_view> known)
{
    auto parsed = parse_body(body);
    if (parsed.error)
        return parsed;
    const auto* object = parsed.value.if_object();
    if (!object)
        return {{}, bad_request(not_object)};
    if (auto unknown = reject_unknown_fields(*object, what, known))
        return {{}, std::move(unknown)};
    return parsed;
}

/// A weight is an integer in [0, config::max_weight]; 5.0 is refused too, so that a client that sends
/// floats learns it at once rather than by rounding.
std::optional<std::int64_t> weight_of(const json::value& v)
{
    if (const auto* i = v.if_int64(); i && config::is_valid_weight(*i))
        return *i;
    if (const auto* u = v.if_uint64(); u && *u <= static_cast<std::uint64_t>(config::max_weight))
        return static_cast<std::int64_t>(*u);
    return std::nullopt;
}

/// JSON as the client would have written it: Boost.JSON prints 5.5 as "5.5E0", which would
/// read as our invention in an error message.
std::string echo(const json::value& v)
{
    const auto* d = v.if_double();
    if (!d)
        return json::serialize(v);
    std::array<char, 32> text{};
    std::snprintf(text.data(), text.size(), "%.15g", *d);
    std::string out{text.data()};
    if (out.find_first_of(".e") == std::string::npos)
        out += ".0"; // 5.0 must not read back as the integer 5
    return out;
}

constexpr std::string_view weights_hint =
    R"(expected an object of pool weights such as {"blue":95,"green":5}, or {"weights":{"blue":95,"green":5},"force":true})";

/// The weights of a body in either form: {"blue":95,...}, or {"weights":{...},"force":B}. A
/// pool's weight is an integer, never an object, so the two cannot be confused.
http_answer put_weights(control& c, std::string_view upstream, std::string_view body)
{
    auto parsed = parse_body(body);
    if (parsed.error)
        return *parsed.error;
    const auto* object = parsed.value.if_object();
    if (!object)
        return bad_request("weights: " + std::string{weights_hint});
    bool force = false;
    if (const auto* wrapped = object->if_contains("weights"); wrapped && wrapped->is_object()) {
        if (auto unknown = reject_unknown_fields(*object, "weights", {"weights", "force"}))
            return *unknown;
        if (const auto* f = object->if_contains("force")) {
            if (!f->is_bool())
                return bad_request("weights: \"force\" must be true or false");
            force = f->get_bool();
        }
        object = &wrapped->get_object();
    } else if (const auto* f = object->if_contains("force"); f && f->is_bool()) {
        return bad_request(R"(weights: to force, send {"weights":{...},"force":true})");
    }
    if (object->empty())
        return bad_request("weights: name at least one pool, " + std::string{weights_hint});

    std::vector<std::pair<std::string, std::int64_t>> weights;
    weights.reserve(object->size());
    for (const auto& [pool, value] : *object) {
        const auto weight = weight_of(value);
        if (!weight)
            return bad_request("weights: the weight of pool \"" + std::string{pool} + "\" must be " +
                               std::string{config::weight_rule} + ", got " + echo(value));
        weights.emplace_back(std::string{pool}, *weight);
    }
    return from_result(c.set_weights(upstream, weights, force));
}

constexpr std::string_view switch_hint = R"(expected a body such as {"pool":"green","force":false})";

http_answer post_switch(control& c, std::string_view upstream, std::string_view body)
{
    const auto parsed =
        parse_object_body(body, "switch", "switch: " + std::string{switch_hint}, {"pool", "force", "watch"});
    if (parsed.error)
        return *parsed.error;
    const auto* object = &parsed.value.get_object();

    const auto* pool = object->if_contains("pool");
    if (!pool || !pool->is_string())
        return bad_request("switch: \"pool\" must be a pool name, " + std::string{switch_hint});
    bool force = false;
    if (const auto* f = object->if_contains("force")) {
        if (!f->is_bool())
            return bad_request("switch: \"force\" must be true or false");
        force = f->get_bool();
    }
    if (const auto* w = object->if_contains("watch")) {
        const auto* text = w->if_string();
        const auto watch = text ? config::parse_duration(*text) : std::nullopt;
        if (!watch || watch->count() <= 0)
            return bad_request(R"(switch: "watch" must be a duration above 0s such as "10m")");
        return from_result(c.watch_switch(upstream, pool->get_string(), force, *watch));
    }
    return from_result(c.switch_to(upstream, pool->get_string(), force));
}

/// A backend address from its path segment: percent-decoded ("127.0.0.1%3A3001", and "[::1]:3001"
/// which cannot travel raw), then checked as host:port.
std::optional<std::string> backend_address(std::string_view segment)
{
    std::string out;
    for (std::size_t i = 0; i < segment.size(); ++i) {
        if (segment[i] != '%') {
            out += segment[i];
            continue;
        }
        unsigned value = 0;
        if (i + 2 >= segment.size())
            return std::nullopt;
        const auto [end, ec] = std::from_chars(segment.data() + i + 1, segment.data() + i + 3, value, 16);
        if (ec != std::errc{} || end != segment.data() + i + 3)
            return std::nullopt;
        out += static_cast<char>(value);
        i += 2;
    }
    const auto address = config::parse_host_port(out);
    if (!address || address->port == 0)
        return std::nullopt;
    return out;
}

http_answer bad_backend_address(std::string_view segment)
{
    return bad_request("backend \"" + std::string{segment} +
                       R"(" is not an address such as "127.0.0.1:3021" or "[::1]:3021")");
}

/// A drain's body: none (or {}) means the proxy's drain_timeout.
std::optional<http_answer> drain_timeout_of(std::string_view body, std::optional<config::duration>& timeout)
{
    if (is_blank(body))
        return std::nullopt;
    const auto parsed =
        parse_object_body(body, "drain", R"(drain: expected a body such as {"timeout":"60s"}, or none)", {"timeout"});
    if (parsed.error)
        return *parsed.error;
    if (const auto* t = parsed.value.get_object().if_contains("timeout")) {
        const auto* text = t->if_string();
        timeout = text ? config::parse_duration(*text) : std::nullopt;
        if (!timeout)
            return bad_request(R"(timeout: expected a duration such as "60s")");
    }
    return std::nullopt;
}

http_answer post_backend_drain(control& c, const std::vector<std::string_view>& a, std::string_view body)
{
    const auto address = backend_address(a[2]);
    if (!address)
        return bad_backend_address(a[2]);
    std::optional<config::duration> timeout;
    if (auto refused = drain_timeout_of(body, timeout))
        return *refused;
    return from_result(c.drain_backend(a[0], a[1], *address, timeout));
}

http_answer post_backend_undrain(control& c, const std::vector<std::string_view>& a)
{
    const auto address = backend_address(a[2]);
    if (!address)
        return bad_backend_address(a[2]);
    return from_result(c.undrain_backend(a[0], a[1], *address));
}

http_answer post_drain(control& c, std::string_view upstream, std::string_view pool, std::string_view body)
{
    std::optional<config::duration> timeout;
    if (auto refused = drain_timeout_of(body, timeout))
        return *refused;
    return from_result(c.drain(upstream, pool, timeout));
}

constexpr std::string_view backends_hint = R"(expected an array of addresses such as ["127.0.0.1:3021"])";

http_answer put_backends(control& c, std::string_view upstream, std::string_view pool, std::string_view body)
{
    auto parsed = parse_body(body);
    if (parsed.error)
        return *parsed.error;
    const auto* array = parsed.value.if_array();
    if (!array)
        return bad_request("backends: " + std::string{backends_hint});

    // An empty array is allowed: it empties the pool.
    std::vector<std::string> addresses;
    std::set<std::string, std::less<>> seen;
    addresses.reserve(array->size());
    for (const auto& element : *array) {
        const auto* text = element.if_string();
        if (!text)
            return bad_request("backends: " + std::string{backends_hint} + ", got " + echo(element));
        const auto address = config::parse_host_port(*text);
        if (!address || address->port == 0)
            return bad_request("backends: \"" + std::string{*text} +
                               R"(" is not an address such as "127.0.0.1:3021" or "[::1]:3021")");
        if (!seen.insert(std::string{*text}).second)
            return bad_request("backends: \"" + std::string{*text} + "\" is listed twice");
        addresses.emplace_back(*text);
    }
    return from_result(c.set_backends(upstream, pool, addresses));
}

http_answer post_rollout(control& c, std::string_view upstream, std::string_view body)
{
    const auto parsed = parse_object_body(body, "rollout", R"(rollout: expected a body such as {"pool":"green"})",
                                          {"pool", "steps", "baseline", "interval", "failure_limit", "on_failure",
                                           "force"});
    if (parsed.error)
        return *parsed.error;
    auto request = read_rollout_body(parsed.value.get_object());
    if (const auto* problem = std::get_if<std::string>(&request))
        return bad_request(*problem);
    return from_result(c.start_rollout(upstream, std::get<::turnout::control::rollout_request>(request)));
}

http_answer post_rollout_command(control& c, std::string_view upstream, std::string_view command)
{
    const auto parsed = ::turnout::control::parse_rollout_command(command);
    if (!parsed)
        return json_answer(404, json::object{{"error", "no such rollout command '" + std::string(command) +
                                                           "' (pause, resume, promote or abort)"}});
    return from_result(c.rollout_command(upstream, *parsed));
}

http_answer post_upgrade(control& c, std::string_view body)
{
    // No body (or {}) means the binary this process was started from.
    std::optional<std::string> binary;
    if (!is_blank(body)) {
        const auto parsed = parse_object_body(
            body, "upgrade", R"(upgrade: expected a body such as {"binary":"/usr/sbin/turnout"}, or none)", {"binary"});
        if (parsed.error)
            return *parsed.error;
        const auto* object = &parsed.value.get_object();
        if (const auto* b = object->if_contains("binary")) {
            const auto* text = b->if_string();
            if (!text || text->empty())
                return bad_request(R"(upgrade: "binary" must be the path of a turnout executable)");
            binary = std::string(*text);
        }
    }
    return from_result(c.upgrade(binary));
}

http_answer get_readyz(const control& c)
{
    const bool ready = c.ready();
    return json_answer(ready ? 200 : 503, json::object{{"status", ready ? "ready" : "draining"}});
}

http_answer get_metrics(const control& c)
{
    return {200, "text/plain; version=0.0.4", c.metrics(), {}};
}

// ---------------------------------------------------------------------------------------------
// Routing

/// The {u} and {p} segments of a matched path, in order.
using captures = std::vector<std::string_view>;
using handler = std::function<http_answer(control&, const captures&, std::string_view body)>;

struct route {
    std::string_view method;
    std::string_view pattern; // "{u}" and "{p}" capture one path segment
    handler handle;
    bool public_read = false; // also served on the read-only status address
};

const std::vector<route>& routes()
{
    static const std::vector<route> table{
        {"GET", "/v1/status",
         [](control& c, const captures&, std::string_view) { return json_answer(200, c.status()); }},
        {"PUT", "/v1/upstreams/{u}/weights",
         [](control& c, const captures& a, std::string_view body) { return put_weights(c, a[0], body); }},
        {"POST", "/v1/upstreams/{u}/switch",
         [](control& c, const captures& a, std::string_view body) { return post_switch(c, a[0], body); }},
        {"POST", "/v1/upstreams/{u}/rollback",
         [](control& c, const captures& a, std::string_view) { return from_result(c.rollback(a[0])); }},
        {"POST", "/v1/upstreams/{u}/pools/{p}/drain",
         [](control& c, const captures& a, std::string_view body) { return post_drain(c, a[0], a[1], body); }},
        {"POST", "/v1/upstreams/{u}/pools/{p}/undrain",
         [](control& c, const captures& a, std::string_view) { return from_result(c.undrain(a[0], a[1])); }},
        {"PUT", "/v1/upstreams/{u}/pools/{p}/backends",
         [](control& c, const captures& a, std::string_view body) { return put_backends(c, a[0], a[1], body); }},
        {"POST", "/v1/upstreams/{u}/pools/{p}/backends/{a}/drain",
         [](control& c, const captures& a, std::string_view body) { return post_backend_drain(c, a, body); }},
        {"POST", "/v1/upstreams/{u}/pools/{p}/backends/{a}/undrain",
         [](control& c, const captures& a, std::string_view) { return post_backend_undrain(c, a); }},
        {"POST", "/v1/upstreams/{u}/rollout",
         [](control& c, const captures& a, std::string_view body) { return post_rollout(c, a[0], body); }},
        {"GET", "/v1/upstreams/{u}/rollout",
         [](control& c, const captures& a, std::string_view) { return from_result(c.rollout(a[0])); }},
        {"POST", "/v1/upstreams/{u}/rollout/{p}",
         [](control& c, const captures& a, std::string_view) { return post_rollout_command(c, a[0], a[1]); }},
        {"POST", "/v1/reload",
         [](control& c, const captures&, std::string_view) { return from_result(c.reload()); }},
        {"POST", "/v1/upgrade",
         [](control& c, const captures&, std::string_view body) { return post_upgrade(c, body); }},
        {"GET", "/metrics", [](control& c, const captures&, std::string_view) { return get_metrics(c); }, true},
        {"GET", "/healthz",
         [](control&, const captures&, std::string_view) {
             return json_answer(200, json::object{{"status", "ok"}});
         },
         true},
        {"GET", "/readyz", [](control& c, const captures&, std::string_view) { return get_readyz(c); }, true},
    };
    return table;
}

std::vector<std::string_view> split_path(std::string_view path)
{
    std::vector<std::string_view> segments;
    while (!path.empty()) {
        path.remove_prefix(1); // the '/'
        const auto end = path.find('/');
        segments.push_back(path.substr(0, end));
        path = end == std::string_view::npos ? std::string_view{} : path.substr(end);
    }
    return segments;
}

/// Matches path against pattern, collecting the captured segments; nullopt when it does not match.
std::optional<captures> match(std::string_view pattern, const std::vector<std::string_view>& path)
{
    const auto expected = split_path(pattern);
    if (expected.size() != path.size())
        return std::nullopt;
    captures found;
    for (std::size_t i = 0; i < path.size(); ++i) {
        if (expected[i].starts_with('{'))
            found.push_back(path[i]);
        else if (expected[i] != path[i])
            return std::nullopt;
    }
    return found;
}

/// Names travel unescaped in paths, so anything outside [A-Za-z0-9._-] cannot be one of ours.
/// (A backend address, the third capture, is its handler's to read.)
std::optional<http_answer> check_names(const captures& names)
{
    static constexpr std::array<std::string_view, 2> kinds{"upstream", "pool"};
    for (std::size_t i = 0; i < std::min(names.size(), kinds.size()); ++i) {
        const auto name = names[i];
        if (name.empty())
            return bad_request(std::string{kinds[i]} + " name is empty");
        if (!std::all_of(name.begin(), name.end(), config::is_name_char))
            return bad_request(std::string{kinds[i]} + " name \"" + std::string{name} +
                               "\" may contain only letters, digits, '.', '_' and '-'");
    }
    return std::nullopt;
}

std::string join(const std::vector<std::string_view>& items, std::string_view separator)
{
    std::string out;
    for (const auto& item : items) {
        if (!out.empty())
            out += separator;
        out += item;
    }
    return out;
}

} // namespace

namespace {

/// The status address's gate: only reads, and only the public paths.
std::optional<http_answer> refuse_on_status_address(std::string_view method, std::string_view path)
{
    if (method != "GET" && method != "HEAD") {
        auto answer = error_answer(405, "the status endpoint is read-only: use GET");
        answer.allow = "GET, HEAD";
        return answer;
    }
    const auto segments = split_path(path);
    const auto& table = routes();
    const bool known = std::any_of(table.begin(), table.end(), [&](const route& r) {
        return r.public_read && match(r.pattern, segments);
    });
    if (!known)
        return error_answer(404, "unknown path: try /healthz, /readyz or /metrics");
    return std::nullopt;
}

} // namespace

http_answer handle_request(control& c, std::string_view method, std::string_view target, std::string_view body,
                           access level)
{
    const auto path = target.substr(0, target.find('?'));
    if (level == access::read_only) {
        if (auto refused = refuse_on_status_address(method, path))
            return *refused;
        body = {};
        method = "GET"; // HEAD: the same answer, the server sends no body
    }
    const auto segments = split_path(path);

    std::vector<std::string_view> allowed;
    for (const auto& r : routes()) {
        if (level == access::read_only && !r.public_read)
            continue;
        auto found = match(r.pattern, segments);
        if (!found)
            continue;
        if (r.method != method) {
            allowed.push_back(r.method);
            continue;
        }
        if (auto bad_name = check_names(*found))
            return *bad_name;
        try {
            return r.handle(c, *found, body);
        } catch (const std::exception& e) {
            // control is the process: a throw there is a bug, but the admin socket stays up.
            return error_answer(500, std::string{"internal error: "} + e.what());
        }
    }
    if (allowed.empty())
        return error_answer(404, "no such endpoint: " + std::string{method} + " " + std::string{path});
    auto answer = error_answer(405, std::string{method} + " " + std::string{path} +
                                        " is not allowed: use " + join(allowed, " or "));
    answer.allow = join(allowed, ", ");
    return answer;
}

http_answer error_answer(unsigned status, std::string_view sentence)
{
    return json_answer(status, boost::json::object{{"error", sentence}});
}

} // namespace turnout::admin
