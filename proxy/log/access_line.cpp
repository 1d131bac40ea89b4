#include "turnout/log/access_line.hpp"

#include <boost/json/object.hpp>
#include <boost/json/serialize.hpp>

#include <ctime>
#include <fmt/format.h>

namespace turnout::log {

namespace {

// nginx's default access log escaping: '"', '\\' and bytes outside 0x20..0x7e as \xHH.
void append_escaped(std::string& out, std::string_view s)
{
    static constexpr char hex[] = "0123456789ABCDEF";
    for (const char c : s) {
        const auto u = static_cast<unsigned char>(c);
        if (c == '"' || c == '\\' || u < 0x20 || u > 0x7e) {
            out += "\\x";
            out += hex[u >> 4];
            out += hex[u & 15];
        } else {
            out += c;
        }
    }
}

std::string or_dash(std::string_view s)
{
    if (s.empty())
        return "-";
    std::string out;
    append_escaped(out, s);
    return out;
}

// $remote_user: the user name of "Authorization: Basic base64(user:password)", else "-".
std::string remote_user(std::string_view authorization)
{
    constexpr std::string_view scheme = "Basic ";
    if (authorization.size() <= scheme.size() ||
        !std::equal(scheme.begin(), scheme.end(), authorization.begin(),
                    [](char a, char b) { return a == b || (a == 'B' && b == 'b'); }))
        return "-";
    std::string decoded;
    unsigned bits = 0, value = 0;
    for (const char c : authorization.substr(scheme.size())) {
        int v = -1;
        if (c >= 'A' && c <= 'Z') v = c - 'A';
        else if (c >= 'a' && c <= 'z') v = c - 'a' + 26;
        else if (c >= '0' && c <= '9') v = c - '0' + 52;
        else if (c == '+') v = 62;
        else if (c == '/') v = 63;
        else if (c == '=') break;
        else return "-";
        value = (value << 6) | static_cast<unsigned>(v);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            decoded += static_cast<char>((value >> bits) & 0xff);
        }
    }
    const auto colon = decoded.find(':');
    return colon == std::string::npos || colon == 0 ? "-" : or_dash(decoded.substr(0, colon));
}

std::tm local_time(std::chrono::system_clock::time_point t)
{
    const std::time_t seconds = std::chrono::system_clock::to_time_t(t);
    std::tm tm{};
    ::localtime_r(&seconds, &tm);
    return tm;
}

// "+0100" from tm_gmtoff.
std::string utc_offset(const std::tm& tm, bool colon)
{
    const long off = tm.tm_gmtoff;
    const long a = off < 0 ? -off : off;
    return fmt::format("{}{:02}{}{:02}", off < 0 ? '-' : '+', a / 3600, colon ? ":" : "", a % 3600 / 60);
}

std::string combined(const access_record& r)
{
    static constexpr const char* months[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                             "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    const auto tm = local_time(r.time);
    std::string request;
    append_escaped(request, r.method);
    request += ' ';
    append_escaped(request, r.target);
    request += ' ';
    append_escaped(request, r.version);
    return fmt::format("{} - {} [{:02}/{}/{}:{:02}:{:02}:{:02} {}] \"{}\" {} {} \"{}\" \"{}\"", r.client,
                       remote_user(r.authorization), tm.tm_mday, months[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour,
                       tm.tm_min, tm.tm_sec, utc_offset(tm, false), request, r.status, r.bytes, or_dash(r.referer),
                       or_dash(r.user_agent));
}

std::string json(const access_record& r)
{
    const auto tm = local_time(r.time);
    boost::json::object o;
    o["time"] = fmt::format("{}-{:02}-{:02}T{:02}:{:02}:{:02}{}", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
                            tm.tm_hour, tm.tm_min, tm.tm_sec, utc_offset(tm, true));
    o["remote_addr"] = r.client;
    o["method"] = r.method;
    o["uri"] = r.target;
    o["protocol"] = r.version;
    o["status"] = r.status;
    o["bytes"] = r.bytes;
    o["upstream"] = r.reached ? boost::json::value(r.upstream) : nullptr;
    o["pool"] = r.reached ? boost::json::value(r.pool) : nullptr;
    o["backend"] = r.reached ? boost::json::value(r.backend) : nullptr;
    o["session"] = r.session ? boost::json::value(fmt::format("{:016x}", *r.session)) : nullptr;
    o["request_time"] = r.request_time;
    o["upstream_time"] = r.reached ? boost::json::value(r.upstream_time) : nullptr;
    o["user_agent"] = r.user_agent.empty() ? boost::json::value(nullptr) : boost::json::value(r.user_agent);
    return boost::json::serialize(o);
}

} // namespace

std::optional<access_format> parse_access_format(std::string_view text)
{
    if (text == "turnout")
        return access_format::turnout;
    if (text == "combined")
        return access_format::combined;
    if (text == "json")
        return access_format::json;
    return std::nullopt;
}

std::string format_access(access_format format, const access_record& r)
{
    switch (format) {
    case access_format::combined: return combined(r);
    case access_format::json: return json(r);
    case access_format::turnout: break;
    }
    return fmt::format("{} \"{} {}\" {} {} pool={} backend={} upstream_time={:.3f} time={:.3f}", r.client, r.method,
                       r.target, r.status, r.bytes, r.reached ? r.pool : "-", r.reached ? r.backend : "-",
                       r.reached ? r.upstream_time : 0.0, r.request_time);
}

} // namespace turnout::log
