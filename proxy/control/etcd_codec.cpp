#include "turnout/control/etcd_codec.hpp"

#include <boost/json/object.hpp>
#include <boost/json/array.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include <array>
#include <charconv>

namespace turnout::control::etcd {
namespace {

namespace json = boost::json;

constexpr std::string_view alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

int sextet(char c)
{
    const auto at = alphabet.find(c);
    return at == std::string_view::npos ? -1 : static_cast<int>(at);
}

// The gateway writes int64 as strings ("42") and leaves zeros out; a number is taken too.
std::int64_t integer_at(const json::object& o, std::string_view key)
{
    const auto* v = o.if_contains(key);
    if (!v)
        return 0;
    if (v->is_int64())
        return v->get_int64();
    if (v->is_uint64() && v->get_uint64() <= static_cast<std::uint64_t>(INT64_MAX))
        return static_cast<std::int64_t>(v->get_uint64());
    if (v->is_string()) {
        const auto& s = v->get_string();
        std::int64_t n = 0;
        const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), n);
        if (ec == std::errc{} && end == s.data() + s.size())
            return n;
    }
    throw protocol_error("'" + std::string(key) + "' is not an integer: " + json::serialize(*v));
}

bool bool_at(const json::object& o, std::string_view key)
{
    const auto* v = o.if_contains(key);
    return v && v->is_bool() && v->get_bool();
}

std::string bytes_at(const json::object& o, std::string_view key)
{
    const auto* v = o.if_contains(key);
    if (!v)
        return {};
    if (!v->is_string())
        throw protocol_error("'" + std::string(key) + "' is not a base64 string");
    auto bytes = base64_decode(v->get_string());
    if (!bytes)
        throw protocol_error("'" + std::string(key) + "' is not valid base64");
    return std::move(*bytes);
}

const json::object& object_of(const json::value& v, std::string_view what)
{
    if (!v.is_object())
        throw protocol_error(std::string(what) + " is not a JSON object");
    return v.get_object();
}

// {"error": {...,"message": "..."}} (older gateways: {"error": "...", "code": N}).
void throw_if_error(const json::object& o)
{
    const auto* e = o.if_contains("error");
    if (!e)
        return;
    std::string message = "etcd answered an error";
    if (e->is_string())
        message += ": " + std::string(e->get_string());
    else if (const auto* m = e->is_object() ? e->get_object().if_contains("message") : nullptr; m && m->is_string())
        message += ": " + std::string(m->get_string());
    throw protocol_error(message);
}

json::object parse_object(std::string_view body, std::string_view what)
{
    boost::system::error_code ec;
    auto v = json::parse(body, ec);
    if (ec)
        throw protocol_error(std::string(what) + " is not JSON: " + ec.message());
    auto o = object_of(v, what);
    throw_if_error(o);
    return o;
}

std::int64_t header_revision(const json::object& o)
{
    const auto* h = o.if_contains("header");
    return h && h->is_object() ? integer_at(h->get_object(), "revision") : 0;
}

key_value read_kv(const json::value& v)
{
    const auto& o = object_of(v, "a kv");
    return {bytes_at(o, "key"), bytes_at(o, "value"), integer_at(o, "mod_revision"), integer_at(o, "lease")};
}

// The first kv of a range answer ({"kvs":[...]} ; absent when nothing matched).
std::optional<key_value> first_kv(const json::object& range)
{
    const auto* kvs = range.if_contains("kvs");
    if (!kvs)
        return std::nullopt;
    if (!kvs->is_array())
        throw protocol_error("'kvs' is not an array");
    if (kvs->get_array().empty())
        return std::nullopt;
    return read_kv(kvs->get_array().front());
}

} // namespace

std::string base64_encode(std::string_view bytes)
{
    std::string out;
    out.reserve((bytes.size() + 2) / 3 * 4);
    std::size_t i = 0;
    for (; i + 2 < bytes.size(); i += 3) {
        const auto n = (std::uint32_t(std::uint8_t(bytes[i])) << 16) | (std::uint32_t(std::uint8_t(bytes[i + 1])) << 8) |
                       std::uint8_t(bytes[i + 2]);
        for (int shift : {18, 12, 6, 0})
            out += alphabet[(n >> shift) & 63];
    }
    if (const auto rest = bytes.size() - i; rest > 0) {
        std::uint32_t n = std::uint32_t(std::uint8_t(bytes[i])) << 16;
        if (rest == 2)
            n |= std::uint32_t(std::uint8_t(bytes[i + 1])) << 8;
        out += alphabet[(n >> 18) & 63];
        out += alphabet[(n >> 12) & 63];
        out += rest == 2 ? alphabet[(n >> 6) & 63] : '=';
        out += '=';
    }
    return out;
}

std::optional<std::string> base64_decode(std::string_view text)
{
    if (text.size() % 4 != 0)
        return std::nullopt;
    std::string out;
    out.reserve(text.size() / 4 * 3);
    for (std::size_t i = 0; i < text.size(); i += 4) {
        const bool last = i + 4 == text.size();
        const int pad = last ? (text[i + 3] == '=') + (text[i + 2] == '=') : 0;
        if (pad == 1 && text[i + 2] == '=')
            return std::nullopt; // "x=y=" is not padding
        std::uint32_t n = 0;
        for (int k = 0; k < 4; ++k) {
            const int s = k >= 4 - pad ? 0 : sextet(text[i + k]);
            if (s < 0)
                return std::nullopt;
            n = (n << 6) | std::uint32_t(s);
        }
        out += char((n >> 16) & 0xff);
        if (pad < 2)
            out += char((n >> 8) & 0xff);
        if (pad < 1)
            out += char(n & 0xff);
    }
    return out;
}

std::string prefix_end(std::string_view prefix)
{
    std::string end{prefix};
    while (!end.empty()) {
        if (static_cast<unsigned char>(end.back()) < 0xff) {
            end.back() = static_cast<char>(static_cast<unsigned char>(end.back()) + 1);
            return end;
        }
        end.pop_back();
    }
    return std::string(1, '\0');
}

std::string range_request(std::string_view key)
{
    return json::serialize(json::object{{"key", base64_encode(key)}});
}

range_result parse_range(std::string_view body)
{
    const auto o = parse_object(body, "the range answer");
    return {header_revision(o), first_kv(o)};
}

std::string compare_and_put_request(std::string_view key, std::string_view value, std::int64_t expected)
{
    const auto k = base64_encode(key);
    json::object compare{{"key", k}, {"target", "MOD"}, {"result", "EQUAL"}, {"mod_revision", std::to_string(expected)}};
    json::object put{{"request_put", json::object{{"key", k}, {"value", base64_encode(value)}}}};
    json::object range{{"request_range", json::object{{"key", k}}}};
    return json::serialize(json::object{{"compare", json::array{std::move(compare)}},
                                        {"success", json::array{std::move(put)}},
                                        {"failure", json::array{std::move(range)}}});
}

txn_result parse_txn(std::string_view body)
{
    const auto o = parse_object(body, "the txn answer");
    txn_result r;
    r.succeeded = bool_at(o, "succeeded");
    r.revision = header_revision(o);
    if (r.succeeded)
        return r;
    // failure ops: [{"response_range": {...}}]
    const auto* responses = o.if_contains("responses");
    if (responses && responses->is_array())
        for (const auto& op : responses->get_array())
            if (const auto* range = op.is_object() ? op.get_object().if_contains("response_range") : nullptr)
                r.current = first_kv(object_of(*range, "response_range"));
    return r;
}

std::string watch_request(std::string_view prefix, std::int64_t start_revision)
{
    json::object create{{"key", base64_encode(prefix)}, {"range_end", base64_encode(prefix_end(prefix))}};
    if (start_revision > 0)
        create["start_revision"] = std::to_string(start_revision);
    return json::serialize(json::object{{"create_request", std::move(create)}});
}

watch_message parse_watch_message(const json::value& v)
{
    const auto& outer = object_of(v, "a watch message");
    throw_if_error(outer);
    const auto* result = outer.if_contains("result");
    if (!result)
        throw protocol_error("a watch message without 'result'");
    const auto& o = object_of(*result, "a watch result");
    watch_message m;
    m.revision = header_revision(o);
    m.created = bool_at(o, "created");
    m.canceled = bool_at(o, "canceled");
    m.compact_revision = integer_at(o, "compact_revision");
    if (const auto* reason = o.if_contains("cancel_reason"); reason && reason->is_string())
        m.cancel_reason = reason->get_string();
    if (const auto* events = o.if_contains("events")) {
        if (!events->is_array())
            throw protocol_error("'events' is not an array");
        for (const auto& e : events->get_array()) {
            const auto& eo = object_of(e, "an event");
            const auto* type = eo.if_contains("type");
            watch_event event;
            event.deleted = type && type->is_string() && type->get_string() == "DELETE";
            if (const auto* kv = eo.if_contains("kv"))
                event.kv = read_kv(*kv);
            m.events.push_back(std::move(event));
        }
    }
    return m;
}

std::vector<json::value> json_sequence::feed(std::string_view bytes)
{
    std::vector<json::value> values;
    while (!bytes.empty()) {
        if (!started_) {
            // Whitespace between values (the gateway ends each with a newline) starts nothing.
            const auto first = bytes.find_first_not_of(" \t\r\n");
            if (first == std::string_view::npos)
                break;
            bytes.remove_prefix(first);
            parser_.reset();
            started_ = true;
        }
        boost::system::error_code ec;
        const auto used = parser_.write_some(bytes.data(), bytes.size(), ec);
        if (ec)
            throw protocol_error("the watch stream is not JSON: " + ec.message());
        bytes.remove_prefix(used);
        if (parser_.done()) {
            values.push_back(parser_.release());
            started_ = false;
        }
    }
    return values;
}


std::string watch_range_request(std::string_view key, std::string_view range_end, std::int64_t start_revision)
{
    json::object create{{"key", base64_encode(key)}, {"range_end", base64_encode(range_end)}};
    if (start_revision > 0)
        create["start_revision"] = std::to_string(start_revision);
    return json::serialize(json::object{{"create_request", std::move(create)}});
}

std::string range_prefix_request(std::string_view prefix)
{
    return json::serialize(json::object{{"key", base64_encode(prefix)}, {"range_end", base64_encode(prefix_end(prefix))}});
}

std::vector<key_value> parse_range_all(std::string_view body)
{
    const auto o = parse_object(body, "the range answer");
    std::vector<key_value> out;
    const auto* kvs = o.if_contains("kvs");
    if (!kvs)
        return out;
    if (!kvs->is_array())
        throw protocol_error("'kvs' is not an array");
    for (const auto& kv : kvs->get_array())
        out.push_back(read_kv(kv));
    return out;
}

namespace {

json::object put_op(std::string_view key, std::string_view value, std::int64_t lease)
{
    json::object put{{"key", base64_encode(key)}, {"value", base64_encode(value)}};
    if (lease != 0)
        put["lease"] = std::to_string(lease);
    return put;
}

} // namespace

std::string put_request(std::string_view key, std::string_view value, std::int64_t lease)
{
    return json::serialize(put_op(key, value, lease));
}

std::string create_with_lease_request(std::string_view key, std::string_view value, std::int64_t lease)
{
    const auto k = base64_encode(key);
    json::object compare{{"key", k}, {"target", "CREATE"}, {"result", "EQUAL"}, {"create_revision", "0"}};
    json::object put{{"request_put", put_op(key, value, lease)}};
    json::object range{{"request_range", json::object{{"key", k}}}};
    return json::serialize(json::object{{"compare", json::array{std::move(compare)}},
                                        {"success", json::array{std::move(put)}},
                                        {"failure", json::array{std::move(range)}}});
}

std::string lease_grant_request(std::int64_t ttl_s)
{
    return json::serialize(json::object{{"TTL", std::to_string(ttl_s)}});
}

lease_grant parse_lease_grant(std::string_view body)
{
    const auto o = parse_object(body, "the lease grant answer");
    lease_grant g{integer_at(o, "ID"), integer_at(o, "TTL")};
    if (g.id == 0)
        throw protocol_error("the lease grant answer has no lease ID");
    return g;
}

std::string lease_id_request(std::int64_t id)
{
    return json::serialize(json::object{{"ID", std::to_string(id)}});
}

std::int64_t parse_keepalive_ttl(std::string_view body)
{
    // A stream of one message: {"result": {...,"TTL": "N"}} (TTL left out: 0, the lease is gone).
    const auto o = parse_object(body, "the keep-alive answer");
    const auto* result = o.if_contains("result");
    if (!result)
        throw protocol_error("a keep-alive answer without 'result'");
    const auto& r = object_of(*result, "a keep-alive result");
    throw_if_error(r);
    return integer_at(r, "TTL");
}

std::string authenticate_request(std::string_view user, std::string_view password)
{
    return json::serialize(json::object{{"name", user}, {"password", password}});
}

std::string parse_token(std::string_view body)
{
    const auto o = parse_object(body, "the authenticate answer");
    const auto* t = o.if_contains("token");
    if (!t || !t->is_string() || t->get_string().empty())
        throw protocol_error("the authenticate answer has no token");
    return std::string(t->get_string());
}

} // namespace turnout::control::etcd
