#include "turnout/runtime/state_file.hpp"

#include "turnout/runtime/rollout_json.hpp"

#include "turnout/config/rules.hpp"

#include <boost/json.hpp>
#include <boost/json/basic_parser_impl.hpp>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdint>
#include <filesystem>
#include <initializer_list>
#include <limits>
#include <set>
#include <stdexcept>
#include <system_error>
#include <utility>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

namespace turnout::runtime {
namespace json = boost::json;

namespace {

constexpr std::string_view format_name = "turnout-state";
constexpr std::int64_t format_version = 1;

// A state file holds a few upstreams; anything this large is not one, and reading it whole
// would only cost memory at start.
constexpr off_t max_file_bytes = 16 * 1024 * 1024;

const std::string weight_rule = "expected an integer 0.." + std::to_string(config::max_weight);

// ---------------------------------------------------------------------------------------------
// Errors

[[noreturn]] void fail(const std::string& where, const std::string& what)
{
    throw std::runtime_error(where.empty() ? what : where + ": " + what);
}

std::string errno_text(int err)
{
    return std::error_code(err, std::generic_category()).message();
}

// Text from the file goes into messages JSON-escaped, so a control byte in a corrupt file
// cannot garble a log line or a terminal.
std::string json_quoted(std::string_view text)
{
    return json::serialize(json::string_view{text.data(), text.size()});
}

std::string_view describe(const json::value& v)
{
    switch (v.kind()) {
    case json::kind::null:
        return "null";
    case json::kind::bool_:
        return "a boolean";
    case json::kind::int64:
    case json::kind::uint64:
        return "an integer";
    case json::kind::double_:
        return "a number";
    case json::kind::string:
        return "a string";
    case json::kind::array:
        return "an array";
    case json::kind::object:
        return "an object";
    }
    return "a value";
}

// ---------------------------------------------------------------------------------------------
// Syntax: Boost.JSON keeps the last of two equal keys without a word, which would silently
// discard one of two values in a hand-edited file, so a first pass with a handler of our own
// refuses duplicate keys, and reports where the document is broken.

class key_checker {
public:
    static constexpr std::size_t max_array_size = std::size_t(-1);
    static constexpr std::size_t max_object_size = std::size_t(-1);
    static constexpr std::size_t max_string_size = std::size_t(-1);
    static constexpr std::size_t max_key_size = std::size_t(-1);

    const std::string& duplicate() const noexcept { return duplicate_; }

    bool on_document_begin(json::error_code&) { return true; }
    bool on_document_end(json::error_code&) { return true; }
    bool on_array_begin(json::error_code&) { return true; }
    bool on_array_end(std::size_t, json::error_code&) { return true; }
    bool on_object_begin(json::error_code&)
    {
        keys_.emplace_back();
        return true;
    }
    bool on_object_end(std::size_t, json::error_code&)
    {
        keys_.pop_back();
        return true;
    }
    bool on_string_part(json::string_view, std::size_t, json::error_code&) { return true; }
    bool on_string(json::string_view, std::size_t, json::error_code&) { return true; }
    bool on_key_part(json::string_view s, std::size_t, json::error_code&)
    {
        key_.append(s.data(), s.size());
        return true;
    }
    bool on_key(json::string_view s, std::size_t, json::error_code& ec)
    {
        key_.append(s.data(), s.size());
        const bool fresh = keys_.back().insert(key_).second;
        if (!fresh) {
            duplicate_ = std::move(key_);
            ec = json::error::syntax; // stops the parser where the duplicate is
        }
        key_.clear();
        return fresh;
    }
    bool on_number_part(json::string_view, json::error_code&) { return true; }
    bool on_int64(std::int64_t, json::string_view, json::error_code&) { return true; }
    bool on_uint64(std::uint64_t, json::string_view, json::error_code&) { return true; }
    bool on_double(double, json::string_view, json::error_code&) { return true; }
    bool on_bool(bool, json::error_code&) { return true; }
    bool on_null(json::error_code&) { return true; }
    bool on_comment_part(json::string_view, json::error_code&) { return true; }
    bool on_comment(json::string_view, json::error_code&) { return true; }

private:
    std::vector<std::set<std::string, std::less<>>> keys_;
    std::string key_;
    std::string duplicate_;
};

std::string position(std::string_view text, std::size_t offset)
{
    offset = std::min(offset, text.size());
    const auto before = text.substr(0, offset);
    const auto line = 1 + std::count(before.begin(), before.end(), '\n');
    const auto line_start = before.rfind('\n');
    const auto column = 1 + offset - (line_start == std::string_view::npos ? 0 : line_start + 1);
    return "line " + std::to_string(line) + ", column " + std::to_string(column);
}

bool blank(std::string_view text)
{
    return std::all_of(text.begin(), text.end(), [](unsigned char c) { return std::isspace(c); });
}

void check_syntax(std::string_view text)
{
    if (blank(text))
        fail("", "empty: no JSON document (a write that never completed?)");
    json::basic_parser<key_checker> parser{json::parse_options{}};
    json::error_code ec;
    const auto consumed = parser.write_some(false, text.data(), text.size(), ec);
    if (!ec && consumed == text.size())
        return;
    if (!ec)
        fail("", "invalid JSON at " + position(text, consumed) + ": more data after the document");
    if (!parser.handler().duplicate().empty())
        fail("", "invalid JSON at " + position(text, consumed) + ": duplicate key " +
                     json_quoted(parser.handler().duplicate()));
    // A torn write leaves a prefix of a valid document: say so, it is the likely cause.
    if (ec == json::error::incomplete)
        fail("", "truncated JSON: the document ends before it is complete (a torn or partial write?)");
    fail("", "invalid JSON at " + position(text, consumed) + ": " + ec.message());
}

// ---------------------------------------------------------------------------------------------
// Content: every field is required and checked, with the path of the bad one in the message.

std::string member_path(const std::string& where, std::string_view key)
{
    return where.empty() ? std::string{key} : where + "." + std::string{key};
}

std::string index_path(const std::string& where, std::size_t i)
{
    return where + "[" + std::to_string(i) + "]";
}

const json::object& as_object(const json::value& v, const std::string& where)
{
    if (!v.is_object())
        fail(where, "expected an object, got " + std::string{describe(v)});
    return v.get_object();
}

const json::array& as_array(const json::value& v, const std::string& where)
{
    if (!v.is_array())
        fail(where, "expected an array, got " + std::string{describe(v)});
    return v.get_array();
}

void reject_unknown_keys(const json::object& o, const std::string& where,
                         std::initializer_list<std::string_view> known)
{
    for (const auto& [key, value] : o) {
        if (std::find(known.begin(), known.end(), std::string_view{key}) == known.end())
            fail(where, "unknown key " + json_quoted(key));
    }
}

const json::value& require(const json::object& o, const std::string& where, std::string_view key)
{
    const auto* v = o.if_contains(json::string_view{key.data(), key.size()});
    if (!v)
        fail(where, "missing key " + json_quoted(key));
    return *v;
}

std::optional<std::int64_t> integer_of(const json::value& v)
{
    if (v.is_int64())
        return v.get_int64();
    if (v.is_uint64() &&
        v.get_uint64() <= static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()))
        return static_cast<std::int64_t>(v.get_uint64());
    return std::nullopt;
}

std::uint32_t read_weight(const json::value& v, const std::string& where)
{
    const auto n = integer_of(v);
    if (!n || !config::is_valid_weight(*n))
        fail(where, weight_rule);
    return static_cast<std::uint32_t>(*n);
}

bool read_bool(const json::value& v, const std::string& where)
{
    if (!v.is_bool())
        fail(where, "expected true or false, got " + std::string{describe(v)});
    return v.get_bool();
}

std::string read_name(const json::value& v, const std::string& where, std::string_view what)
{
    if (!v.is_string())
        fail(where, "expected a string, got " + std::string{describe(v)});
    const std::string_view s = v.get_string();
    if (!config::is_valid_name(s))
        fail(where, "invalid " + std::string{what} + " name " + json_quoted(s) + ": " +
                        std::string{config::name_rule});
    return std::string{s};
}

std::optional<std::int64_t> read_deadline(const json::value& v, const std::string& where)
{
    if (v.is_null())
        return std::nullopt;
    const auto n = integer_of(v);
    if (!n || *n < 0)
        fail(where, "expected null or a Unix time in milliseconds (an integer >= 0)");
    return n;
}

std::optional<std::vector<std::string>> read_backends(const json::value& v, const std::string& where)
{
    if (v.is_null())
        return std::nullopt;
    if (!v.is_array())
        fail(where, "expected null or an array of \"host:port\" strings, got " + std::string{describe(v)});
    std::vector<std::string> backends;
    std::set<std::pair<std::string, std::uint16_t>> seen;
    const auto& list = v.get_array();
    for (std::size_t i = 0; i < list.size(); ++i) {
        const auto at = index_path(where, i);
        if (!list[i].is_string())
            fail(at, "expected a \"host:port\" string, got " + std::string{describe(list[i])});
        const std::string_view text = list[i].get_string();
        const auto address = config::parse_host_port(text);
        if (!address || address->port == 0)
            fail(at, "expected host:port such as \"127.0.0.1:3001\", got " + json_quoted(text));
        // Two spellings of one endpoint ("LocalHost:80", "localhost:080") are one backend.
        std::string host = address->host;
        std::transform(host.begin(), host.end(), host.begin(),
                       [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
        if (!seen.emplace(std::move(host), address->port).second)
            fail(at, "duplicate backend " + json_quoted(text));
        backends.emplace_back(text);
    }
    return backends;
}

std::optional<weight_list> read_previous_weights(const json::value& v, const std::string& where)
{
    if (v.is_null())
        return std::nullopt;
    if (!v.is_array())
        fail(where, "expected null or an array of [pool, weight] pairs, got " + std::string{describe(v)});
    weight_list weights;
    const auto& list = v.get_array();
    for (std::size_t i = 0; i < list.size(); ++i) {
        const auto at = index_path(where, i);
        if (!list[i].is_array() || list[i].get_array().size() != 2)
            fail(at, "expected a [pool, weight] pair");
        const auto& pair = list[i].get_array();
        auto name = read_name(pair[0], index_path(at, 0), "pool");
        const auto weight = read_weight(pair[1], index_path(at, 1));
        if (std::any_of(weights.begin(), weights.end(), [&](const auto& e) { return e.first == name; }))
            fail(index_path(at, 0), "duplicate pool " + json_quoted(name));
        weights.emplace_back(std::move(name), weight);
    }
    return weights;
}

// [{"address":"127.0.0.1:3001","deadline_ms":N}, ...]
std::vector<backend_drain> read_backend_drains(const json::value& v, const std::string& where)
{
    std::vector<backend_drain> drains;
    const auto& list = as_array(v, where);
    for (std::size_t i = 0; i < list.size(); ++i) {
        const auto at = index_path(where, i);
        const auto& o = as_object(list[i], at);
        reject_unknown_keys(o, at, {"address", "deadline_ms"});
        const auto& address = require(o, at, "address");
        const auto* text = address.if_string();
        const auto parsed = text ? config::parse_host_port(*text) : std::nullopt;
        if (!parsed || parsed->port == 0)
            fail(member_path(at, "address"), "expected a \"host:port\" string such as \"127.0.0.1:3001\"");
        const auto deadline = read_deadline(require(o, at, "deadline_ms"), member_path(at, "deadline_ms"));
        if (!deadline)
            fail(member_path(at, "deadline_ms"), "expected a Unix time in milliseconds (an integer >= 0)");
        if (std::any_of(drains.begin(), drains.end(), [&](const auto& d) { return d.address == *text; }))
            fail(member_path(at, "address"), "duplicate backend " + json_quoted(*text));
        drains.push_back({std::string(*text), *deadline});
    }
    return drains;
}

pool_runtime read_pool(const json::value& v, const std::string& where)
{
    const auto& o = as_object(v, where);
    reject_unknown_keys(o, where,
                        {"name", "weight", "draining", "drain_deadline_ms", "backends", "created_at_runtime",
                         "drained_backends"});
    pool_runtime pool;
    pool.name = read_name(require(o, where, "name"), member_path(where, "name"), "pool");
    pool.weight = read_weight(require(o, where, "weight"), member_path(where, "weight"));
    pool.draining = read_bool(require(o, where, "draining"), member_path(where, "draining"));
    pool.drain_deadline_ms =
        read_deadline(require(o, where, "drain_deadline_ms"), member_path(where, "drain_deadline_ms"));
    pool.backends = read_backends(require(o, where, "backends"), member_path(where, "backends"));
    pool.created_at_runtime =
        read_bool(require(o, where, "created_at_runtime"), member_path(where, "created_at_runtime"));
    // Optional: files written before backends could be drained one by one have none.
    if (const auto* drains = o.if_contains("drained_backends"))
        pool.drained_backends = read_backend_drains(*drains, member_path(where, "drained_backends"));
    return pool;
}

upstream_runtime read_upstream(const json::value& v, const std::string& where)
{
    const auto& o = as_object(v, where);
    reject_unknown_keys(o, where, {"name", "previous_weights", "pools", "rollout"});
    upstream_runtime upstream;
    upstream.name = read_name(require(o, where, "name"), member_path(where, "name"), "upstream");
    upstream.previous_weights =
        read_previous_weights(require(o, where, "previous_weights"), member_path(where, "previous_weights"));
    // Optional: state files written before rollouts existed have none.
    if (const auto* rollout = o.if_contains("rollout"); rollout && !rollout->is_null())
        upstream.rollout = rollout_from_json(*rollout, member_path(where, "rollout"));

    const auto pools_path = member_path(where, "pools");
    const auto& pools = as_array(require(o, where, "pools"), pools_path);
    for (std::size_t i = 0; i < pools.size(); ++i) {
        const auto at = index_path(pools_path, i);
        auto pool = read_pool(pools[i], at);
        if (upstream.find(pool.name))
            fail(member_path(at, "name"),
                 "duplicate pool " + json_quoted(pool.name) + " in upstream " + json_quoted(upstream.name));
        upstream.pools.push_back(std::move(pool));
    }
    return upstream;
}

// format and version first: a file that is not a state file, or one from another turnout,
// deserves that answer rather than a complaint about its keys.
void check_header(const json::object& root)
{
    const auto* found = root.if_contains("format");
    if (!found)
        fail("", "not a turnout state file (no \"format\" key)");
    const auto& format = *found;
    if (!format.is_string() || format.get_string() != format_name)
        fail("format",
             "expected \"turnout-state\", got " +
                 (format.is_string() ? json_quoted(format.get_string()) : std::string{describe(format)}) +
                 ": not a turnout state file");
    const auto& version = require(root, "", "version");
    if (!version.is_int64() && !version.is_uint64())
        fail("version", "expected an integer, got " + std::string{describe(version)});
    if (integer_of(version) != format_version)
        fail("version", "unsupported version " + json::serialize(version) + " (this turnout reads version " +
                            std::to_string(format_version) + ")");
}

runtime_state read_state(const json::value& v)
{
    if (!v.is_object())
        fail("", "expected a JSON object, got " + std::string{describe(v)} + ": not a turnout state file");
    const auto& root = v.get_object();
    check_header(root);
    reject_unknown_keys(root, "", {"format", "version", "upstreams"});

    runtime_state state;
    const auto& upstreams = as_array(require(root, "", "upstreams"), "upstreams");
    for (std::size_t i = 0; i < upstreams.size(); ++i) {
        const auto at = index_path("upstreams", i);
        auto upstream = read_upstream(upstreams[i], at);
        if (state.find(upstream.name))
            fail(member_path(at, "name"), "duplicate upstream " + json_quoted(upstream.name));
        state.upstreams.push_back(std::move(upstream));
    }
    return state;
}

// ---------------------------------------------------------------------------------------------
// Writing

json::value weights_json(const std::optional<weight_list>& weights)
{
    if (!weights)
        return nullptr;
    json::array list;
    for (const auto& [name, weight] : *weights)
        list.push_back(json::array{json::value(name), json::value(static_cast<std::int64_t>(weight))});
    return list;
}

json::value backends_json(const std::optional<std::vector<std::string>>& backends)
{
    if (!backends)
        return nullptr;
    json::array list;
    for (const auto& address : *backends)
        list.emplace_back(address);
    return list;
}

json::object pool_json(const pool_runtime& pool)
{
    json::object o;
    o["name"] = pool.name;
    o["weight"] = static_cast<std::int64_t>(pool.weight);
    o["draining"] = pool.draining;
    o["drain_deadline_ms"] =
        pool.drain_deadline_ms ? json::value(*pool.drain_deadline_ms) : json::value(nullptr);
    o["backends"] = backends_json(pool.backends);
    o["created_at_runtime"] = pool.created_at_runtime;
    // Written only when there is one, so a turnout of before stays able to read the file.
    if (!pool.drained_backends.empty()) {
        json::array drains;
        for (const auto& d : pool.drained_backends)
            drains.push_back(json::object{{"address", d.address}, {"deadline_ms", d.deadline_ms}});
        o["drained_backends"] = std::move(drains);
    }
    return o;
}

json::object upstream_json(const upstream_runtime& upstream)
{
    json::object o;
    o["name"] = upstream.name;
    o["previous_weights"] = weights_json(upstream.previous_weights);
    if (upstream.rollout)
        o["rollout"] = rollout_to_json(*upstream.rollout);
    json::array pools;
    for (const auto& pool : upstream.pools)
        pools.push_back(pool_json(pool));
    o["pools"] = std::move(pools);
    return o;
}

// ---------------------------------------------------------------------------------------------
// Files

// Closes on every path out, so an exception between open and close leaks nothing.
class file_descriptor {
public:
    explicit file_descriptor(int fd) noexcept : fd_(fd) {}
    file_descriptor(const file_descriptor&) = delete;
    file_descriptor& operator=(const file_descriptor&) = delete;
    ~file_descriptor()
    {
        if (fd_ >= 0)
            ::close(fd_);
    }

    int get() const noexcept { return fd_; }
    bool valid() const noexcept { return fd_ >= 0; }

    // close() reports write-back errors on some filesystems (NFS), so its result counts.
    int close() noexcept
    {
        const int rc = ::close(fd_);
        fd_ = -1;
        return rc;
    }

private:
    int fd_;
};

void write_all(int fd, std::string_view bytes)
{
    while (!bytes.empty()) {
        const auto n = ::write(fd, bytes.data(), bytes.size());
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            throw std::system_error(errno, std::generic_category());
        bytes.remove_prefix(static_cast<std::size_t>(n));
    }
}

// The temporary file, complete and on disk before it replaces anything. O_EXCL after removing
// a leftover means we never write through a file or link someone else put there, and the
// file is created 0600 (it names the backends) whatever the leftover's mode was.
void write_temporary(const std::string& temp, std::string_view bytes)
{
    if (::unlink(temp.c_str()) != 0 && errno != ENOENT)
        throw std::runtime_error("cannot remove the leftover " + temp + ": " + errno_text(errno));
    file_descriptor fd{::open(temp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600)};
    if (!fd.valid())
        throw std::runtime_error("cannot create " + temp + ": " + errno_text(errno));
    try {
        write_all(fd.get(), bytes);
    } catch (const std::system_error& e) {
        throw std::runtime_error("cannot write " + temp + ": " + errno_text(e.code().value()));
    }
    if (::fsync(fd.get()) != 0)
        throw std::runtime_error("cannot sync " + temp + ": " + errno_text(errno));
    if (fd.close() != 0)
        throw std::runtime_error("cannot close " + temp + ": " + errno_text(errno));
}

// The rename is durable only once the folder's entry is on disk too.
void sync_folder(const std::string& path)
{
    auto folder = std::filesystem::path(path).parent_path();
    if (folder.empty())
        folder = ".";
    file_descriptor fd{::open(folder.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC)};
    if (!fd.valid())
        throw std::runtime_error("cannot open the folder " + folder.string() +
                                 " to sync it: " + errno_text(errno));
    // Some filesystems cannot sync a folder and say EINVAL; there is nothing more to do there.
    if (::fsync(fd.get()) != 0 && errno != EINVAL)
        throw std::runtime_error("cannot sync the folder " + folder.string() + ": " + errno_text(errno));
}

void replace_file(const std::string& path, std::string_view bytes)
{
    const auto temp = path + ".tmp";
    try {
        write_temporary(temp, bytes);
    } catch (...) {
        ::unlink(temp.c_str()); // a half-written temporary file is of no use to anyone
        throw;
    }
    if (::rename(temp.c_str(), path.c_str()) != 0) {
        const int err = errno;
        ::unlink(temp.c_str());
        throw std::runtime_error("cannot rename " + temp + " over it: " + errno_text(err));
    }
    sync_folder(path);
}

std::optional<std::string> read_file(const std::string& path)
{
    file_descriptor fd{::open(path.c_str(), O_RDONLY | O_CLOEXEC)};
    if (!fd.valid()) {
        if (errno == ENOENT)
            return std::nullopt;
        throw std::runtime_error("cannot open: " + errno_text(errno));
    }
    struct stat st {};
    if (::fstat(fd.get(), &st) != 0)
        throw std::runtime_error("cannot stat: " + errno_text(errno));
    if (!S_ISREG(st.st_mode))
        throw std::runtime_error("not a regular file");
    if (st.st_size > max_file_bytes)
        throw std::runtime_error("too large for a state file (" + std::to_string(st.st_size) + " bytes)");

    std::string text;
    char buffer[8192];
    for (;;) {
        const auto n = ::read(fd.get(), buffer, sizeof buffer);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            throw std::runtime_error("cannot read: " + errno_text(errno));
        if (n == 0)
            break;
        text.append(buffer, static_cast<std::size_t>(n));
        if (text.size() > static_cast<std::size_t>(max_file_bytes))
            throw std::runtime_error("too large for a state file");
    }
    return text;
}

std::string display(const std::string& path)
{
    return path.empty() ? std::string{"state file"} : path;
}

} // namespace

std::string to_json(const runtime_state& state)
{
    json::object root;
    root["format"] = format_name;
    root["version"] = format_version;
    json::array upstreams;
    for (const auto& upstream : state.upstreams)
        upstreams.push_back(upstream_json(upstream));
    root["upstreams"] = std::move(upstreams);
    return json::serialize(root) + "\n";
}

runtime_state from_json(std::string_view text)
{
    check_syntax(text);
    // Syntax and keys were checked above, so this parse cannot fail.
    return read_state(json::parse(json::string_view{text.data(), text.size()}));
}

void save_state(const std::string& path, const runtime_state& state)
{
    if (path.empty())
        throw std::runtime_error("state file: no path given");
    const auto text = to_json(state);
    try {
        replace_file(path, text);
    } catch (const std::exception& e) {
        throw std::runtime_error(path + ": " + e.what());
    }
}

std::optional<runtime_state> load_state(const std::string& path)
{
    try {
        const auto text = read_file(path);
        if (!text)
            return std::nullopt;
        return from_json(*text);
    } catch (const std::exception& e) {
        throw std::runtime_error(display(path) + ": " + e.what());
    }
}

} // namespace turnout::runtime
