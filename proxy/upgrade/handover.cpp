#include "turnout/upgrade/handover.hpp"

#include <algorithm>
#include <cstring>
#include <optional>

namespace turnout::upgrade {
namespace {

template <class T> void put(std::string& out, T value)
{
    // The protocol is little-endian; so is every machine turnout runs on (x86-64, arm64).
    char bytes[sizeof(T)];
    std::memcpy(bytes, &value, sizeof(T));
    out.append(bytes, sizeof(T));
}

void put_text(std::string& out, std::string_view text)
{
    put(out, static_cast<std::uint16_t>(std::min<std::size_t>(text.size(), 0xFFFF)));
    out.append(text.substr(0, 0xFFFF));
}

void put_key(std::string& out, const session::session_key& key)
{
    put(out, key.low);
    put(out, key.high);
}

/// Reads a payload front to back; any read past its end marks it torn.
class payload_reader {
public:
    explicit payload_reader(std::string_view payload) : data_(payload) {}

    template <class T> T get()
    {
        T value{};
        if (data_.size() - pos_ < sizeof(T)) {
            torn_ = true;
            return value;
        }
        std::memcpy(&value, data_.data() + pos_, sizeof(T));
        pos_ += sizeof(T);
        return value;
    }

    std::string get_text()
    {
        const auto n = get<std::uint16_t>();
        if (torn_ || data_.size() - pos_ < n) {
            torn_ = true;
            return {};
        }
        std::string s(data_.substr(pos_, n));
        pos_ += n;
        return s;
    }

    session::session_key get_key()
    {
        session::session_key key;
        key.low = get<std::uint64_t>();
        key.high = get<std::uint64_t>();
        return key;
    }

    std::string rest()
    {
        std::string s(data_.substr(pos_));
        pos_ = data_.size();
        return s;
    }

    /// Every byte read, none missing.
    bool whole() const noexcept { return !torn_ && pos_ == data_.size(); }

private:
    std::string_view data_;
    std::size_t pos_ = 0;
    bool torn_ = false;
};

std::optional<message> parse(message_type type, std::string_view payload)
{
    payload_reader r(payload);
    message m;
    switch (type) {
    case message_type::hello: {
        hello h;
        h.version = r.get<std::uint32_t>();
        h.pid = r.get<std::int32_t>();
        m = h;
        break;
    }
    case message_type::listener: {
        listener l;
        const auto kind = r.get<std::uint8_t>();
        if (kind > static_cast<std::uint8_t>(listener_kind::status))
            return std::nullopt;
        l.kind = static_cast<listener_kind>(kind);
        l.address = r.get_text();
        l.endpoint = r.get_text();
        m = std::move(l);
        break;
    }
    case message_type::listeners_done:
        m = listeners_done{r.get<std::uint32_t>()};
        break;
    case message_type::sessions:
        m = sessions{r.rest()};
        break;
    case message_type::ready:
        m = ready{r.get<std::int32_t>()};
        break;
    case message_type::learned: {
        learned l;
        l.key = r.get_key();
        l.owner = r.get_text();
        m = std::move(l);
        break;
    }
    case message_type::forgot:
        m = forgot{r.get_key()};
        break;
    case message_type::touched: {
        // The count is checked against the payload before anything is reserved: a hostile
        // count cannot make the reader allocate.
        const auto count = r.get<std::uint32_t>();
        if (count > max_touched_keys || payload.size() != 4 + std::size_t{count} * 16)
            return std::nullopt;
        touched t;
        t.keys.reserve(count);
        for (std::uint32_t i = 0; i < count; ++i)
            t.keys.push_back(r.get_key());
        m = std::move(t);
        break;
    }
    case message_type::rate_limits:
        m = rate_limits{r.rest()};
        break;
    default:
        return std::nullopt;
    }
    if (!r.whole())
        return std::nullopt;
    return m;
}

struct payload_writer {
    std::string& out;
    void operator()(const hello& h) const
    {
        put(out, h.version);
        put(out, h.pid);
    }
    void operator()(const listener& l) const
    {
        put(out, static_cast<std::uint8_t>(l.kind));
        put_text(out, l.address);
        put_text(out, l.endpoint);
    }
    void operator()(const listeners_done& d) const { put(out, d.count); }
    void operator()(const sessions& s) const { out += s.table; }
    void operator()(const rate_limits& r) const { out += r.table; }
    void operator()(const ready& r) const { put(out, r.pid); }
    void operator()(const learned& l) const
    {
        put_key(out, l.key);
        put_text(out, l.owner);
    }
    void operator()(const forgot& f) const { put_key(out, f.key); }
    void operator()(const touched& t) const
    {
        put(out, static_cast<std::uint32_t>(t.keys.size()));
        for (const auto& key : t.keys)
            put_key(out, key);
    }
};

message_type type_of(const message& m)
{
    // The variant's alternatives are declared in protocol order, starting at hello = 1.
    return static_cast<message_type>(m.index() + 1);
}

} // namespace

namespace {

/// Digits up to `stop` (or the end) into out; false when there are none, or others, or too many.
bool parse_number(const char*& c, char stop, std::uint64_t& out) noexcept
{
    out = 0;
    const char* begin = c;
    for (; *c && *c != stop; ++c) {
        if (*c < '0' || *c > '9' || c - begin >= 10)
            return false;
        out = out * 10 + static_cast<std::uint64_t>(*c - '0');
    }
    return c != begin;
}

} // namespace

std::uint32_t successor_version(const char* announced, pid_t parent) noexcept
{
    if (!announced)
        return 1;
    std::uint64_t version = 0, pid = 0;
    const char* c = announced;
    if (!parse_number(c, ':', version) || *c++ != ':' || !parse_number(c, '\0', pid))
        return 1;
    // Inherited from further up (a version-1 process passes its environment on whole).
    if (parent <= 0 || pid != static_cast<std::uint64_t>(parent))
        return 1;
    if (version < min_protocol_version)
        return 0;
    return static_cast<std::uint32_t>(std::min<std::uint64_t>(version, protocol_version));
}

std::string announced_version(pid_t self)
{
    return std::to_string(protocol_version) + ":" + std::to_string(self);
}

std::string encode(const message& m)
{
    std::string out(5, '\0');
    std::visit(payload_writer{out}, m);
    const auto length = static_cast<std::uint32_t>(out.size() - 4);
    std::memcpy(out.data(), &length, sizeof length);
    out[4] = static_cast<char>(type_of(m));
    return out;
}

std::string_view name_of(const message& m)
{
    static constexpr std::string_view names[] = {"hello",  "listener", "listeners_done", "sessions",   "ready",
                                                 "learned", "forgot",  "touched",        "rate_limits"};
    return names[m.index()];
}

decoder::status decoder::next(message& out)
{
    if (!error_.empty())
        return status::error;
    const auto available = buffer_.size() - pos_;
    if (available < 4)
        return status::need_more;
    std::uint32_t length = 0;
    std::memcpy(&length, buffer_.data() + pos_, sizeof length);
    if (length == 0 || length > max_frame_bytes) {
        error_ = "hand-over frame of " + std::to_string(length) + " bytes: the stream is damaged";
        return status::error;
    }
    if (available - 4 < length)
        return status::need_more;
    const auto type = static_cast<message_type>(static_cast<std::uint8_t>(buffer_[pos_ + 4]));
    const std::string_view payload(buffer_.data() + pos_ + 5, length - 1);
    auto parsed = parse(type, payload);
    if (!parsed) {
        error_ = "hand-over message of type " + std::to_string(static_cast<unsigned>(type)) + " and " +
                 std::to_string(length - 1) + " payload bytes is malformed";
        return status::error;
    }
    out = std::move(*parsed);
    pos_ += 4 + length;
    // Reclaim consumed bytes once they dominate, so a long stream of deltas stays small.
    if (pos_ > 65536 && pos_ * 2 > buffer_.size()) {
        buffer_.erase(0, pos_);
        pos_ = 0;
    }
    return status::message;
}

} // namespace turnout::upgrade
