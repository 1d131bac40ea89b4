#include "turnout/session/session_store.hpp"

#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <map>
#include <stdexcept>

#include <fcntl.h>
#include <unistd.h>

namespace turnout::session {
namespace {

constexpr char magic[8] = {'T', 'R', 'N', 'S', 'E', 'S', 'S', '1'};

std::uint64_t wall_seconds()
{
    return static_cast<std::uint64_t>(
        std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count());
}

template <class T>
void put(std::string& out, T value)
{
    char bytes[sizeof(T)];
    std::memcpy(bytes, &value, sizeof(T));
    out.append(bytes, sizeof(T));
}

class reader {
public:
    reader(const std::string& data, const std::string& path) : data_(data), path_(path) {}

    template <class T>
    T get()
    {
        need(sizeof(T));
        T value;
        std::memcpy(&value, data_.data() + pos_, sizeof(T));
        pos_ += sizeof(T);
        return value;
    }

    std::string get_string(std::size_t n)
    {
        need(n);
        std::string s = data_.substr(pos_, n);
        pos_ += n;
        return s;
    }

    bool at_end() const noexcept { return pos_ == data_.size(); }

private:
    void need(std::size_t n) const
    {
        if (data_.size() - pos_ < n)
            throw std::runtime_error(path_ + ": saved session table is truncated");
    }

    const std::string& data_;
    const std::string& path_;
    std::size_t pos_ = 0;
};

void write_atomically(const std::string& path, const std::string& bytes)
{
    const auto temp = path + ".tmp";
    const int fd = ::open(temp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        throw std::runtime_error(temp + ": " + std::strerror(errno));
    std::size_t written = 0;
    while (written < bytes.size()) {
        const auto n = ::write(fd, bytes.data() + written, bytes.size() - written);
        if (n < 0) {
            const int err = errno;
            ::close(fd);
            throw std::runtime_error(temp + ": " + std::strerror(err));
        }
        written += static_cast<std::size_t>(n);
    }
    if (::fsync(fd) != 0 || ::close(fd) != 0)
        throw std::runtime_error(temp + ": " + std::strerror(errno));
    if (std::rename(temp.c_str(), path.c_str()) != 0)
        throw std::runtime_error(path + ": " + std::strerror(errno));
}

} // namespace

std::string session_file_for(const std::string& state_file) { return state_file + ".sessions"; }

void save_table(const std::string& path, const session_table& table, const upstream::backend_registry& registry,
                std::uint32_t now_s)
{
    write_atomically(path, encode_table(table, registry, now_s));
}

std::string encode_table(const session_table& table, const upstream::backend_registry& registry, std::uint32_t now_s)
{
    // Owners become indexes into a list of addresses written once.
    std::map<backend_id, std::uint32_t> owner_index;
    std::vector<std::string> owners;
    std::string entries;
    std::uint64_t count = 0;
    table.for_each([&](const session_entry& e) {
        const auto* b = registry.get(e.owner);
        if (!b)
            return;
        auto [it, added] = owner_index.try_emplace(e.owner, static_cast<std::uint32_t>(owners.size()));
        if (added)
            owners.push_back(b->address());
        put(entries, e.key.low);
        put(entries, e.key.high);
        put(entries, now_s >= e.last_use ? now_s - e.last_use : 0u);
        put(entries, it->second);
        ++count;
    });

    std::string out(magic, sizeof magic);
    put(out, table.seed());
    put(out, wall_seconds());
    put(out, static_cast<std::uint32_t>(owners.size()));
    for (const auto& address : owners) {
        put(out, static_cast<std::uint16_t>(address.size()));
        out += address;
    }
    put(out, count);
    out += entries;
    return out;
}

std::optional<saved_table> load_table(const std::string& path)
{
    std::ifstream in(path, std::ios::binary);
    if (!in)
        return std::nullopt;
    const std::string data((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    return decode_table(data, path);
}

saved_table decode_table(const std::string& data, const std::string& path)
{
    if (data.size() < sizeof magic || std::memcmp(data.data(), magic, sizeof magic) != 0)
        throw std::runtime_error(path + ": not a saved session table");

    reader r(data, path);
    r.get_string(sizeof magic);
    saved_table table;
    table.seed = r.get<std::uint64_t>();
    const auto saved_at = r.get<std::uint64_t>();
    const auto now = wall_seconds();
    const auto downtime = static_cast<std::uint32_t>(now > saved_at ? std::min<std::uint64_t>(now - saved_at, 1u << 30) : 0);

    const auto owner_count = r.get<std::uint32_t>();
    if (owner_count > data.size() / 2)
        throw std::runtime_error(path + ": saved session table is damaged (bad owner count)");
    std::vector<std::string> owners(owner_count);
    for (auto& address : owners)
        address = r.get_string(r.get<std::uint16_t>());
    const auto count = r.get<std::uint64_t>();
    if (count > (data.size() / 24))
        throw std::runtime_error(path + ": saved session table is damaged (bad count)");
    table.sessions.reserve(count);
    for (std::uint64_t i = 0; i < count; ++i) {
        saved_session s;
        s.key.low = r.get<std::uint64_t>();
        s.key.high = r.get<std::uint64_t>();
        s.age_s = r.get<std::uint32_t>() + downtime;
        const auto owner = r.get<std::uint32_t>();
        if (owner >= owners.size())
            throw std::runtime_error(path + ": saved session table is damaged (bad owner)");
        s.owner = owners[owner];
        table.sessions.push_back(std::move(s));
    }
    if (!r.at_end())
        throw std::runtime_error(path + ": saved session table has trailing bytes");
    return table;
}

} // namespace turnout::session
