#include "turnout/config/config.hpp"

#include <doctest/doctest.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <string>
#include <unistd.h>

using namespace std::chrono_literals;
using namespace turnout::config;
namespace fs = std::filesystem;

namespace {

// The smallest valid configuration: one listener, no upstream.
constexpr std::string_view listener_only = R"([[listen]]
address = "127.0.0.1:0"
)";

// A listener plus one upstream with one pool; tests append to it.
constexpr std::string_view one_upstream = R"([[listen]]
address = "127.0.0.1:0"

[[upstream]]
name = "mcp"

  [[upstream.pool]]
  name = "blue"
  weight = 100
  backends = ["127.0.0.1:3001"]
)";

// Parses text that must fail and returns the error.
config_error error_of(std::string_view text, const std::string& path = "conf.toml")
{
    try {
        (void)parse(text, path);
    } catch (const config_error& e) {
        return e;
    }
    FAIL("expected a config_error for:\n" << text);
    return config_error{"", 0, 0, ""};
}

std::string what_of(std::string_view text) { return error_of(text).what(); }

std::string with(std::string_view base, std::string_view more) { return std::string{base} + std::string{more}; }

// A fresh folder under the system temp directory, removed at the end of the test.
class temp_dir {
public:
    temp_dir()
    {
        static std::atomic<int> counter{0};
        path_ = fs::temp_directory_path() /
                ("turnout-config-test-" + std::to_string(::getpid()) + "-" + std::to_string(counter++));
        fs::create_directories(path_);
    }
    ~temp_dir()
    {
        std::error_code ec;
        fs::remove_all(path_, ec);
    }
    temp_dir(const temp_dir&) = delete;
    temp_dir& operator=(const temp_dir&) = delete;

    const fs::path& path() const { return path_; }

    fs::path write(const std::string& name, std::string_view text) const
    {
        const fs::path file = path_ / name;
        fs::create_directories(file.parent_path());
        std::ofstream{file} << text;
        return file;
    }

private:
    fs::path path_;
};

// conf/turnout.toml, found from this source file's location (or, when the compiler was given
// a relative path, by walking up from the working directory).
fs::path demo_config_path()
{
    const fs::path here{__FILE__};
    if (here.is_absolute())
        return here.parent_path().parent_path().parent_path() / "conf" / "turnout.toml";
    for (fs::path dir = fs::current_path(); !dir.empty(); dir = dir.parent_path()) {
        if (fs::exists(dir / "conf" / "turnout.toml"))
            return dir / "conf" / "turnout.toml";
        if (dir == dir.parent_path())
            break;
    }
    return "conf/turnout.toml";
}

} // namespace

// ---------------------------------------------------------------------------------------------
// Defaults and full parsing

TEST_CASE("a config with only a listener gets every documented default")
{
    const configuration c = parse(listener_only, "/etc/turnout/turnout.toml");
    CHECK(c.path == "/etc/turnout/turnout.toml");
    CHECK(c.proxy.workers == 0);
    CHECK(c.proxy.admin_socket.empty());
    CHECK_FALSE(c.proxy.status_address);
    CHECK(c.proxy.state_file.empty());
    CHECK(c.proxy.drain_timeout == 30s);
    CHECK(c.proxy.access_log == "stderr");
    CHECK(c.proxy.log_level == "info");
    CHECK(c.proxy.header_timeout == 10s);
    CHECK(c.proxy.idle_timeout == 60s);
    CHECK(c.proxy.connect_timeout == 2s);
    CHECK(c.proxy.response_timeout == 300s);
    CHECK(c.proxy.stream_idle_timeout == 0s);
    CHECK(c.proxy.max_header_bytes == 16384);
    CHECK(c.proxy.max_uri_bytes == 8192);
    CHECK(c.proxy.max_body_bytes == 8388608);
    REQUIRE(c.listeners.size() == 1);
    CHECK(c.listeners[0].address == host_port{"127.0.0.1", 0, "127.0.0.1:0"});
    CHECK(c.listeners[0].tls_cert.empty());
    CHECK(c.listeners[0].tls_key.empty());
    CHECK(c.upstreams.empty());
    CHECK(c.routes.empty());
}

TEST_CASE("every [proxy] key is read")
{
    const configuration c = parse(R"([proxy]
workers = 4
admin_socket = "run/turnout.sock"
status_address = "127.0.0.1:9901"
state_file = "run/turnout.state.json"
drain_timeout = "45s"
access_log = "logs/access.log"
log_level = "debug"
header_timeout = "5s"
idle_timeout = "2m"
connect_timeout = "500ms"
response_timeout = "1h"
stream_idle_timeout = "10m"
max_header_bytes = 32768
max_uri_bytes = 4096
max_body_bytes = 1048576

[[listen]]
address = "127.0.0.1:8080"
)",
                                  "/srv/turnout/turnout.toml");
    CHECK(c.proxy.workers == 4);
    CHECK(c.proxy.admin_socket == "/srv/turnout/run/turnout.sock");
    REQUIRE(c.proxy.status_address);
    CHECK(c.proxy.status_address->host == "127.0.0.1");
    CHECK(c.proxy.status_address->port == 9901);
    CHECK(c.proxy.state_file == "/srv/turnout/run/turnout.state.json");
    CHECK(c.proxy.drain_timeout == 45s);
    CHECK(c.proxy.access_log == "/srv/turnout/logs/access.log");
    CHECK(c.proxy.log_level == "debug");
    CHECK(c.proxy.header_timeout == 5s);
    CHECK(c.proxy.idle_timeout == 2min);
    CHECK(c.proxy.connect_timeout == 500ms);
    CHECK(c.proxy.response_timeout == 1h);
    CHECK(c.proxy.stream_idle_timeout == 10min);
    CHECK(c.proxy.max_header_bytes == 32768);
    CHECK(c.proxy.max_uri_bytes == 4096);
    CHECK(c.proxy.max_body_bytes == 1048576);
    REQUIRE(c.listeners.size() == 1);
    CHECK(c.listeners[0].address.port == 8080);
}

TEST_CASE("upstreams, pools, health and routes are read")
{
    const configuration c = parse(R"([[listen]]
address = "127.0.0.1:8080"
tls_cert = "tls/cert.pem"
tls_key = "/etc/ssl/key.pem"

[[listen]]
address = "[::1]:8443"

[[upstream]]
name = "mcp"
affinity = "token"
affinity_key_file = "token.key"
session_idle_timeout = "10m"

  [[upstream.pool]]
  name = "blue"
  weight = 95
  version = "1.4.2"
  backends = ["127.0.0.1:3001", "localhost:3002"]

  [[upstream.pool]]
  name = "green"
  weight = 5
  backends = []

  [upstream.health]
  kind = "http"
  path = "/healthz"
  interval = "5s"
  timeout = "500ms"
  rise = 1
  fall = 5

[[upstream]]
name = "other"
  [[upstream.pool]]
  name = "only"

[[route]]
path_prefix = "/mcp"
host = "Example.COM"
upstream = "mcp"

[[route]]
upstream = "other"
)",
                                  "/srv/t/turnout.toml");
    REQUIRE(c.listeners.size() == 2);
    CHECK(c.listeners[0].tls_cert == "/srv/t/tls/cert.pem");
    CHECK(c.listeners[0].tls_key == "/etc/ssl/key.pem");
    CHECK(c.listeners[1].address == host_port{"::1", 8443, "[::1]:8443"});

    REQUIRE(c.upstreams.size() == 2);
    const upstream_config& mcp = c.upstreams[0];
    CHECK(mcp.name == "mcp");
    CHECK(mcp.affinity == affinity_kind::token);
    CHECK(mcp.affinity_key_file == "/srv/t/token.key");
    CHECK(mcp.session_idle_timeout == 10min);
    REQUIRE(mcp.pools.size() == 2);
    CHECK(mcp.pools[0].name == "blue");
    CHECK(mcp.pools[0].weight == 95);
    CHECK(mcp.pools[0].version == "1.4.2");
    REQUIRE(mcp.pools[0].backends.size() == 2);
    CHECK(mcp.pools[0].backends[0] == host_port{"127.0.0.1", 3001, "127.0.0.1:3001"});
    CHECK(mcp.pools[0].backends[1] == host_port{"localhost", 3002, "localhost:3002"});
    CHECK(mcp.pools[1].name == "green");
    CHECK(mcp.pools[1].weight == 5);
    CHECK(mcp.pools[1].version.empty());
    CHECK(mcp.pools[1].backends.empty());
    REQUIRE(mcp.health);
    CHECK(mcp.health->kind == health_kind::http);
    CHECK(mcp.health->path == "/healthz");
    CHECK(mcp.health->interval == 5s);
    CHECK(mcp.health->timeout == 500ms);
    CHECK(mcp.health->rise == 1);
    CHECK(mcp.health->fall == 5);

    const upstream_config& other = c.upstreams[1];
    CHECK(other.affinity == affinity_kind::table);
    CHECK(other.affinity_key_file.empty());
    CHECK(other.session_idle_timeout == 30min);
    REQUIRE(other.pools.size() == 1);
    CHECK(other.pools[0].weight == 0);
    CHECK(other.pools[0].backends.empty());
    CHECK_FALSE(other.health);

    REQUIRE(c.routes.size() == 2);
    CHECK(c.routes[0].path_prefix == "/mcp");
    CHECK(c.routes[0].host == "example.com");
    CHECK(c.routes[0].upstream == "mcp");
    CHECK(c.routes[1].path_prefix == "/");
    CHECK(c.routes[1].host.empty());
    CHECK(c.routes[1].upstream == "other");
}

TEST_CASE("an empty [upstream.health] table means MCP checks with the default settings")
{
    const configuration c = parse(with(one_upstream, "  [upstream.health]\n"), "conf.toml");
    REQUIRE(c.upstreams[0].health);
    const health_config& h = *c.upstreams[0].health;
    CHECK(h.kind == health_kind::mcp);
    CHECK(h.path == "/mcp");
    CHECK(h.interval == 2s);
    CHECK(h.timeout == 1s);
    CHECK(h.rise == 2);
    CHECK(h.fall == 3);
}

TEST_CASE("health kind none means no active checks")
{
    const configuration c = parse(with(one_upstream, "  [upstream.health]\n  kind = \"none\"\n"), "conf.toml");
    CHECK_FALSE(c.upstreams[0].health);
}

TEST_CASE("passive checks are on by default, also without [upstream.health]")
{
    const configuration c = parse(one_upstream, "conf.toml");
    const passive_health_config& p = c.upstreams[0].passive;
    CHECK(p.failures == 5);
    CHECK(p.backoff == 2s);
    CHECK(p.backoff_max == 60s);
}

TEST_CASE("passive check settings are read from [upstream.health], whatever the kind")
{
    const configuration c = parse(with(one_upstream, "  [upstream.health]\n  kind = \"none\"\n  passive_failures = 3\n"
                                                     "  passive_backoff = \"250ms\"\n  passive_backoff_max = \"4s\"\n"),
                                  "conf.toml");
    CHECK_FALSE(c.upstreams[0].health);
    const passive_health_config& p = c.upstreams[0].passive;
    CHECK(p.failures == 3);
    CHECK(p.backoff == 250ms);
    CHECK(p.backoff_max == 4s);

    const configuration off = parse(with(one_upstream, "  [upstream.health]\n  passive_failures = 0\n"), "conf.toml");
    CHECK(off.upstreams[0].passive.failures == 0);
    REQUIRE(off.upstreams[0].health);
    CHECK(off.upstreams[0].health->kind == health_kind::mcp);

    // A long backoff alone raises the ceiling instead of contradicting the default one.
    const configuration slow = parse(with(one_upstream, "  [upstream.health]\n  passive_backoff = \"2m\"\n"), "conf.toml");
    CHECK(slow.upstreams[0].passive.backoff == 2min);
    CHECK(slow.upstreams[0].passive.backoff_max == 2min);
}

TEST_CASE("the demo config conf/turnout.toml loads")
{
    const fs::path file = demo_config_path();
    CAPTURE(file);
    const configuration c = load_file(file.string());
    const fs::path repo = fs::absolute(file).lexically_normal().parent_path().parent_path();
    CHECK(c.path == fs::absolute(file).lexically_normal().string());
    CHECK(c.proxy.admin_socket == (repo / "run" / "turnout.sock").string());
    CHECK(c.proxy.state_file == (repo / "run" / "turnout.state.json").string());
    REQUIRE(c.proxy.status_address);
    CHECK(c.proxy.status_address->text == "127.0.0.1:9901");
    CHECK(c.proxy.access_log == "stderr");
    REQUIRE(c.listeners.size() == 1);
    CHECK(c.listeners[0].address.text == "127.0.0.1:8080");
    REQUIRE(c.upstreams.size() == 1);
    const upstream_config& u = c.upstreams[0];
    CHECK(u.name == "mcp");
    CHECK(u.affinity == affinity_kind::table);
    REQUIRE(u.pools.size() == 2);
    CHECK(u.pools[0].name == "blue");
    CHECK(u.pools[0].weight == 100);
    CHECK(u.pools[0].version == "1.0.0");
    REQUIRE(u.pools[0].backends.size() == 2);
    CHECK(u.pools[0].backends[0].text == "127.0.0.1:3001");
    CHECK(u.pools[0].backends[1].text == "127.0.0.1:3002");
    CHECK(u.pools[1].name == "green");
    CHECK(u.pools[1].weight == 0);
    CHECK(u.pools[1].version == "1.1.0");
    REQUIRE(u.pools[1].backends.size() == 1);
    CHECK(u.pools[1].backends[0].text == "127.0.0.1:3011");
    REQUIRE(u.health);
    CHECK(u.health->kind == health_kind::mcp);
    CHECK(u.health->path == "/mcp");
    REQUIRE(c.routes.size() == 1);
    CHECK(c.routes[0].path_prefix == "/");
    CHECK(c.routes[0].upstream == "mcp");
}

// ---------------------------------------------------------------------------------------------
// Error format and positions

TEST_CASE("config_error formats PATH:LINE:COL: message, or PATH: message without a position")
{
    const config_error positioned{"conf.toml", 7, 3, "bad thing"};
    CHECK(std::string{positioned.what()} == "conf.toml:7:3: bad thing");
    CHECK(positioned.path() == "conf.toml");
    CHECK(positioned.line() == 7);
    CHECK(positioned.column() == 3);
    CHECK(positioned.message() == "bad thing");
    CHECK(std::string{config_error("conf.toml", 0, 0, "bad thing").what()} == "conf.toml: bad thing");
}

TEST_CASE("an unknown key is reported at the key with its table")
{
    const config_error e = error_of(R"([proxy]
workers = 2
wrokers = 3

[[listen]]
address = "127.0.0.1:0"
)");
    CHECK(std::string{e.what()} == "conf.toml:3:1: unknown key 'wrokers' in [proxy]");
    CHECK(e.line() == 3);
    CHECK(e.column() == 1);
    CHECK(e.message() == "unknown key 'wrokers' in [proxy]");
}

TEST_CASE("an unknown top-level table is reported at its name")
{
    const config_error e = error_of(R"([[listen]]
address = "127.0.0.1:0"

[proxxy]
workers = 1
)");
    CHECK(e.line() == 4);
    CHECK(e.column() == 2);
    CHECK(e.message().starts_with("unknown key 'proxxy'"));
}

TEST_CASE("an unknown top-level key is an error")
{
    CHECK(what_of("workers = 1\n[[listen]]\naddress = \"127.0.0.1:0\"\n")
              .starts_with("conf.toml:1:1: unknown key 'workers'"));
}

TEST_CASE("unknown keys are errors in every table")
{
    SUBCASE("[[listen]]")
    {
        CHECK(what_of("[[listen]]\naddress = \"127.0.0.1:0\"\n  port = 80\n") ==
              "conf.toml:3:3: unknown key 'port' in [[listen]]");
    }
    SUBCASE("[[upstream]]")
    {
        CHECK(what_of(with(one_upstream, "\n[[upstream]]\nname = \"b\"\nweigth = 1\n")) ==
              "conf.toml:14:1: unknown key 'weigth' in [[upstream]]");
    }
    SUBCASE("[[upstream.pool]]")
    {
        CHECK(what_of(with(one_upstream, "  backend = \"127.0.0.1:1\"\n")) ==
              "conf.toml:11:3: unknown key 'backend' in [[upstream.pool]]");
    }
    SUBCASE("[upstream.health]")
    {
        CHECK(what_of(with(one_upstream, "  [upstream.health]\n  intervall = \"1s\"\n")) ==
              "conf.toml:12:3: unknown key 'intervall' in [upstream.health]");
    }
    SUBCASE("[[route]]")
    {
        CHECK(what_of(with(one_upstream, "[[route]]\nupstream = \"mcp\"\nprefix = \"/\"\n")) ==
              "conf.toml:13:1: unknown key 'prefix' in [[route]]");
    }
    SUBCASE("a sub-table of [proxy]")
    {
        CHECK(what_of(with(listener_only, "[proxy.limits]\nx = 1\n")) ==
              "conf.toml:3:8: unknown key 'limits' in [proxy]");
    }
}

TEST_CASE("[proxy] io_backend: epoll by default, auto or io_uring when written, anything else at its place")
{
    using turnout::config::io_backend_setting;
    CHECK(parse(listener_only, "conf.toml").proxy.io_backend == io_backend_setting::epoll);
    CHECK(parse(with(listener_only, "[proxy]\nio_backend = \"epoll\"\n"), "conf.toml").proxy.io_backend ==
          io_backend_setting::epoll);
    CHECK(parse(with(listener_only, "[proxy]\nio_backend = \"io_uring\"\n"), "conf.toml").proxy.io_backend ==
          io_backend_setting::io_uring);
    CHECK(parse(with(listener_only, "[proxy]\nio_backend = \"auto\"\n"), "conf.toml").proxy.io_backend ==
          io_backend_setting::automatic);
    CHECK(what_of(with(listener_only, "[proxy]\nio_backend = \"kqueue\"\n")) ==
          "conf.toml:4:14: proxy.io_backend: expected \"auto\", \"io_uring\" or \"epoll\", got \"kqueue\"");
}

TEST_CASE("a value of the wrong type is reported at the value")
{
    SUBCASE("a string where an integer belongs")
    {
        const config_error e = error_of(with(listener_only, "[proxy]\nworkers = \"4\"\n"));
        CHECK(std::string{e.what()} == "conf.toml:4:11: proxy.workers: expected an integer, got a string");
    }
    SUBCASE("an integer where a string belongs")
    {
        const config_error e = error_of(with(listener_only, "[proxy]\nlog_level = 3\n"));
        CHECK(e.line() == 4);
        CHECK(e.column() == 13);
        CHECK(e.message() == "proxy.log_level: expected a string, got an integer");
    }
    SUBCASE("a float where an integer belongs")
    {
        CHECK(what_of(with(one_upstream, "  [upstream.health]\n  rise = 1.5\n")) ==
              "conf.toml:12:10: upstream.health.rise: expected an integer, got a floating-point number");
    }
    SUBCASE("an integer where a duration belongs")
    {
        CHECK(what_of(with(listener_only, "[proxy]\ndrain_timeout = 30\n")) ==
              "conf.toml:4:17: proxy.drain_timeout: expected a duration such as \"250ms\", \"30s\", \"5m\", got an "
              "integer");
    }
    SUBCASE("[proxy] that is not a table")
    {
        CHECK(what_of(with("proxy = 1\n", listener_only)) ==
              "conf.toml:1:9: proxy: expected a table ([proxy]), got an integer");
    }
    SUBCASE("[listen] instead of [[listen]]")
    {
        CHECK(what_of("[listen]\naddress = \"127.0.0.1:0\"\n") ==
              "conf.toml:1:1: listen: expected an array of tables ([[listen]]), got a table");
    }
    SUBCASE("backends that is not an array")
    {
        CHECK(what_of(with(listener_only, "[[upstream]]\nname = \"u\"\n[[upstream.pool]]\nname = \"p\"\n"
                                          "backends = \"127.0.0.1:1\"\n")) ==
              "conf.toml:7:12: upstream.pool.backends: expected an array of strings, got a string");
    }
    SUBCASE("a backend that is not a string")
    {
        CHECK(what_of(with(listener_only, "[[upstream]]\nname = \"u\"\n[[upstream.pool]]\nname = \"p\"\n"
                                          "backends = [\"127.0.0.1:1\", 3002]\n")) ==
              "conf.toml:7:28: upstream.pool.backends: expected a string, got an integer");
    }
}

TEST_CASE("a TOML syntax error gives toml++'s position and description")
{
    const config_error e = error_of("[[listen]]\naddress = \"127.0.0.1:0\"\nfoo = = 1\n");
    CHECK(e.path() == "conf.toml");
    CHECK(e.line() == 3);
    CHECK(e.column() > 0);
    CHECK_FALSE(e.message().empty());
    CHECK(std::string{e.what()}.starts_with("conf.toml:3:"));
}

TEST_CASE("a duplicate key is a syntax error at its position")
{
    const config_error e = error_of("[[listen]]\naddress = \"127.0.0.1:0\"\naddress = \"127.0.0.1:1\"\n");
    CHECK(e.line() == 3);
}

TEST_CASE("a missing file is reported as PATH: cannot open file")
{
    const temp_dir dir;
    const std::string missing = (dir.path() / "nope.toml").string();
    try {
        (void)load_file(missing);
        FAIL("no error for a missing file");
    } catch (const config_error& e) {
        CHECK(std::string{e.what()} == missing + ": cannot open file");
        CHECK(e.line() == 0);
        CHECK(e.column() == 0);
    }
}

TEST_CASE("a directory is not a config file")
{
    const temp_dir dir;
    CHECK_THROWS_AS((void)load_file(dir.path().string()), config_error);
}

// ---------------------------------------------------------------------------------------------
// [proxy] validation

TEST_CASE("a malformed duration is reported with an example")
{
    CHECK(what_of(with(listener_only, "[proxy]\nidle_timeout = \"60\"\n")) ==
          "conf.toml:4:16: proxy.idle_timeout: expected a duration such as \"250ms\", \"30s\", \"5m\"");
    CHECK(error_of(with(listener_only, "[proxy]\nheader_timeout = \"1.5s\"\n")).message() ==
          "proxy.header_timeout: expected a duration such as \"250ms\", \"30s\", \"5m\"");
}

TEST_CASE("timeouts that would expire at once must be greater than zero")
{
    for (const char* key : {"header_timeout", "idle_timeout", "connect_timeout", "response_timeout"}) {
        CAPTURE(key);
        CHECK(error_of(with(listener_only, std::string{"[proxy]\n"} + key + " = \"0s\"\n")).message() ==
              std::string{"proxy."} + key + ": must be greater than 0s");
    }
}

TEST_CASE("drain_timeout and stream_idle_timeout may be zero")
{
    const configuration c =
        parse(with(listener_only, "[proxy]\ndrain_timeout = \"0s\"\nstream_idle_timeout = \"0ms\"\n"), "conf.toml");
    CHECK(c.proxy.drain_timeout == 0s);
    CHECK(c.proxy.stream_idle_timeout == 0s);
}

TEST_CASE("workers must be between 0 and 1024")
{
    CHECK(what_of(with(listener_only, "[proxy]\nworkers = -1\n")) == "conf.toml:4:11: proxy.workers: must not be negative");
    CHECK(error_of(with(listener_only, "[proxy]\nworkers = 1025\n")).message() ==
          "proxy.workers: must be between 0 and 1024");
    CHECK(parse(with(listener_only, "[proxy]\nworkers = 1024\n"), "c.toml").proxy.workers == 1024);
}

TEST_CASE("size limits must be greater than zero")
{
    for (const char* key : {"max_header_bytes", "max_uri_bytes", "max_body_bytes"}) {
        CAPTURE(key);
        CHECK(error_of(with(listener_only, std::string{"[proxy]\n"} + key + " = 0\n")).message() ==
              std::string{"proxy."} + key + ": must be greater than 0");
        CHECK(error_of(with(listener_only, std::string{"[proxy]\n"} + key + " = -5\n")).message() ==
              std::string{"proxy."} + key + ": must be greater than 0");
    }
}

TEST_CASE("log_level must be a known level")
{
    for (const char* level : {"trace", "debug", "info", "warn", "error", "critical", "off"}) {
        CAPTURE(level);
        CHECK(parse(with(listener_only, std::string{"[proxy]\nlog_level = \""} + level + "\"\n"), "c.toml")
                  .proxy.log_level == level);
    }
    const config_error e = error_of(with(listener_only, "[proxy]\nlog_level = \"verbose\"\n"));
    CHECK(e.line() == 4);
    CHECK(e.column() == 13);
    CHECK(e.message().starts_with("proxy.log_level: expected one of trace, debug, info"));
}

TEST_CASE("access_log is stderr, off, or a path made absolute")
{
    const auto access_log = [](std::string_view value) {
        return parse(with(listener_only, "[proxy]\naccess_log = \"" + std::string{value} + "\"\n"), "/etc/t/t.toml")
            .proxy.access_log;
    };
    CHECK(access_log("stderr") == "stderr");
    CHECK(access_log("off") == "off");
    CHECK(access_log("access.log") == "/etc/t/access.log");
    CHECK(access_log("/var/log/turnout.log") == "/var/log/turnout.log");
    CHECK(error_of(with(listener_only, "[proxy]\naccess_log = \"\"\n")).line() == 4);
}

TEST_CASE("status_address must be host:port")
{
    CHECK(what_of(with(listener_only, "[proxy]\nstatus_address = \"9901\"\n"))
              .starts_with("conf.toml:4:18: proxy.status_address: expected host:port"));
}

TEST_CASE("an admin_socket path too long for a Unix socket is refused")
{
    const std::string long_name(120, 'a');
    CHECK(error_of(with(listener_only, "[proxy]\nadmin_socket = \"" + long_name + "\"\n"))
              .message()
              .starts_with("proxy.admin_socket: path is too long for a Unix socket"));
}

TEST_CASE("an empty path is refused")
{
    CHECK(what_of(with(listener_only, "[proxy]\nstate_file = \"\"\n")) ==
          "conf.toml:4:14: proxy.state_file: must not be empty (leave the key out instead)");
}

// ---------------------------------------------------------------------------------------------
// Relative paths

TEST_CASE("relative paths are resolved against the config file's folder")
{
    const configuration c = parse(R"([proxy]
admin_socket = "../run/turnout.sock"
state_file = "./state/../turnout.state.json"

[[listen]]
address = "127.0.0.1:0"
tls_cert = "cert.pem"
tls_key = "/abs/key.pem"
)",
                                  "/opt/turnout/conf/turnout.toml");
    CHECK(c.proxy.admin_socket == "/opt/turnout/run/turnout.sock");
    CHECK(c.proxy.state_file == "/opt/turnout/conf/turnout.state.json");
    CHECK(c.listeners[0].tls_cert == "/opt/turnout/conf/cert.pem");
    CHECK(c.listeners[0].tls_key == "/abs/key.pem");
}

TEST_CASE("a relative config path is made absolute against the working directory")
{
    const configuration c = parse(with(listener_only, "[proxy]\nstate_file = \"s.json\"\n"), "conf/x.toml");
    const fs::path folder = (fs::current_path() / "conf").lexically_normal();
    CHECK(c.path == (folder / "x.toml").string());
    CHECK(c.proxy.state_file == (folder / "s.json").string());
    CHECK(fs::path{c.path}.is_absolute());
}

TEST_CASE("load_file resolves relative paths against the file's own folder")
{
    const temp_dir dir;
    const fs::path file = dir.write("etc/turnout.toml", with(listener_only, "[proxy]\nadmin_socket = \"t.sock\"\n"));
    const configuration c = load_file(file.string());
    CHECK(c.path == file.lexically_normal().string());
    CHECK(c.proxy.admin_socket == (dir.path() / "etc" / "t.sock").lexically_normal().string());
}

TEST_CASE("load_file reports errors with the path it was given")
{
    const temp_dir dir;
    const fs::path file = dir.write("bad.toml", "[proxy]\nworkers = \"x\"\n");
    try {
        (void)load_file(file.string());
        FAIL("no error");
    } catch (const config_error& e) {
        CHECK(e.path() == file.string());
        CHECK(std::string{e.what()} == file.string() + ":2:11: proxy.workers: expected an integer, got a string");
    }
}

// ---------------------------------------------------------------------------------------------
// [[listen]]

TEST_CASE("at least one [[listen]] is required")
{
    CHECK(what_of("[proxy]\nworkers = 1\n") ==
          "conf.toml: no [[listen]] table; at least one listener address is required");
    CHECK(error_of("").line() == 0);
}

TEST_CASE("a listener needs an address")
{
    CHECK(what_of("[[listen]]\ntls_cert = \"c.pem\"\ntls_key = \"k.pem\"\n") ==
          "conf.toml:1:1: missing key 'address' in [[listen]]");
}

TEST_CASE("a listener address must be host:port, port 0 allowed")
{
    CHECK(what_of("[[listen]]\naddress = \"127.0.0.1\"\n") ==
          "conf.toml:2:11: listen.address: expected host:port such as \"127.0.0.1:8080\" or \"[::1]:8080\", got "
          "\"127.0.0.1\"");
    CHECK(error_of("[[listen]]\naddress = \"127.0.0.1:65536\"\n").line() == 2);
    CHECK(parse("[[listen]]\naddress = \"0.0.0.0:0\"\n", "c.toml").listeners[0].address.port == 0);
}

TEST_CASE("two listeners on the same address are refused, except port 0")
{
    CHECK(what_of("[[listen]]\naddress = \"127.0.0.1:8080\"\n[[listen]]\naddress = \"127.0.0.1:8080\"\n") ==
          "conf.toml:4:11: listen.address: \"127.0.0.1:8080\" is already used by another [[listen]]");
    CHECK(parse("[[listen]]\naddress = \"127.0.0.1:0\"\n[[listen]]\naddress = \"127.0.0.1:0\"\n", "c.toml")
              .listeners.size() == 2);
}

TEST_CASE("tls_cert and tls_key come together")
{
    CHECK(what_of("[[listen]]\naddress = \"127.0.0.1:0\"\ntls_cert = \"c.pem\"\n") ==
          "conf.toml:3:12: listen.tls_cert: is set but tls_key is not; TLS needs both");
    CHECK(error_of("[[listen]]\naddress = \"127.0.0.1:0\"\ntls_key = \"k.pem\"\n").message() ==
          "listen.tls_key: is set but tls_cert is not; TLS needs both");
}

// ---------------------------------------------------------------------------------------------
// [[upstream]] and [[upstream.pool]]

TEST_CASE("an upstream needs a valid, unique name")
{
    CHECK(what_of(with(listener_only, "[[upstream]]\naffinity = \"table\"\n[[upstream.pool]]\nname = \"p\"\n")) ==
          "conf.toml:3:1: missing key 'name' in [[upstream]]");
    CHECK(what_of(with(listener_only, "[[upstream]]\nname = \"\"\n[[upstream.pool]]\nname = \"p\"\n"))
              .starts_with("conf.toml:4:8: upstream.name: must be 1 to 64 letters"));
    CHECK(error_of(with(listener_only, "[[upstream]]\nname = \"a b\"\n[[upstream.pool]]\nname = \"p\"\n")).line() ==
          4);
    CHECK(what_of(with(one_upstream, "[[upstream]]\nname = \"mcp\"\n[[upstream.pool]]\nname = \"p\"\n")) ==
          "conf.toml:12:8: upstream.name: duplicate upstream 'mcp'");
}

TEST_CASE("an upstream needs at least one pool")
{
    CHECK(what_of(with(listener_only, "[[upstream]]\nname = \"mcp\"\n")) ==
          "conf.toml:3:1: upstream 'mcp' has no [[upstream.pool]]; it needs at least one");
}

TEST_CASE("pool names are required and unique within an upstream")
{
    CHECK(what_of(with(one_upstream, "  [[upstream.pool]]\n  weight = 1\n")) ==
          "conf.toml:11:3: missing key 'name' in [[upstream.pool]]");
    CHECK(what_of(with(one_upstream, "  [[upstream.pool]]\n  name = \"blue\"\n")) ==
          "conf.toml:12:10: upstream.pool.name: duplicate pool 'blue' in upstream 'mcp'");
    CHECK(error_of(with(one_upstream, "  [[upstream.pool]]\n  name = \"green=5\"\n")).line() == 12);
    // The same pool name in two upstreams is fine.
    const configuration c = parse(with(one_upstream, "[[upstream]]\nname = \"b\"\n[[upstream.pool]]\nname = \"blue\"\n"
                                                     "[[route]]\nupstream = \"mcp\"\n"),
                                  "c.toml");
    CHECK(c.upstreams.size() == 2);
}

TEST_CASE("a pool weight is an integer from 0 to 1000000")
{
    CHECK(what_of(with(one_upstream, "  [[upstream.pool]]\n  name = \"g\"\n  weight = -1\n")) ==
          "conf.toml:13:12: upstream.pool.weight: must not be negative");
    CHECK(error_of(with(one_upstream, "  [[upstream.pool]]\n  name = \"g\"\n  weight = 1000001\n")).message() ==
          "upstream.pool.weight: must be between 0 and 1000000");
    CHECK(parse(with(one_upstream, "  [[upstream.pool]]\n  name = \"g\"\n  weight = 1000000\n"), "c.toml")
              .upstreams[0]
              .pools[1]
              .weight == 1000000);
}

TEST_CASE("backends are valid host:port strings with a non-zero port")
{
    const auto pool_with = [](std::string_view backends) {
        return with(listener_only,
                    "[[upstream]]\nname = \"u\"\n[[upstream.pool]]\nname = \"p\"\nbackends = " + std::string{backends} +
                        "\n");
    };
    CHECK(what_of(pool_with(R"(["127.0.0.1:3001", "nope"])")) ==
          "conf.toml:7:31: upstream.pool.backends: expected host:port such as \"127.0.0.1:8080\" or \"[::1]:8080\", "
          "got \"nope\"");
    CHECK(what_of(pool_with(R"(["127.0.0.1:0"])")) ==
          "conf.toml:7:13: upstream.pool.backends: port must be between 1 and 65535 in \"127.0.0.1:0\"");
    CHECK(error_of(pool_with(R"(["127.0.0.1:70000"])")).line() == 7);
    CHECK(error_of(pool_with(R"(["::1:3001"])")).line() == 7);
    const configuration c = parse(pool_with(R"(["[::1]:3001", "backend-1.internal:3002"])"), "c.toml");
    REQUIRE(c.upstreams[0].pools[0].backends.size() == 2);
    CHECK(c.upstreams[0].pools[0].backends[0].host == "::1");
    CHECK(c.upstreams[0].pools[0].backends[1].host == "backend-1.internal");
}

TEST_CASE("a backend listed twice in a pool is an error")
{
    CHECK(what_of(with(listener_only, "[[upstream]]\nname = \"u\"\n[[upstream.pool]]\nname = \"p\"\n"
                                      "backends = [\"127.0.0.1:3001\", \"127.0.0.1:3001\"]\n")) ==
          "conf.toml:7:31: upstream.pool.backends: duplicate backend \"127.0.0.1:3001\" in pool 'p'");
    CHECK(error_of(with(listener_only, "[[upstream]]\nname = \"u\"\n[[upstream.pool]]\nname = \"p\"\n"
                                       "backends = [\"LocalHost:80\", \"localhost:80\"]\n"))
              .message()
              .starts_with("upstream.pool.backends: duplicate backend"));
}

TEST_CASE("a pool may start with no backends")
{
    const configuration c = parse(with(one_upstream, "  [[upstream.pool]]\n  name = \"green\"\n  backends = []\n"),
                                  "c.toml");
    CHECK(c.upstreams[0].pools[1].backends.empty());
}

TEST_CASE("affinity is table or token, and token needs a key file")
{
    CHECK(what_of(with(listener_only, "[[upstream]]\nname = \"u\"\naffinity = \"cookie\"\n[[upstream.pool]]\nname = "
                                      "\"p\"\n")) ==
          "conf.toml:5:12: upstream.affinity: expected \"table\" or \"token\", got \"cookie\"");
    CHECK(what_of(with(listener_only, "[[upstream]]\nname = \"u\"\naffinity = \"token\"\n[[upstream.pool]]\nname = "
                                      "\"p\"\n"))
              .starts_with("conf.toml:5:12: upstream.affinity: \"token\" needs affinity_key_file"));
    const configuration c = parse(with(listener_only, "[[upstream]]\nname = \"u\"\naffinity = \"token\"\n"
                                                      "affinity_key_file = \"keys/token.key\"\n[[upstream.pool]]\nname = "
                                                      "\"p\"\n"),
                                  "/etc/turnout/turnout.toml");
    CHECK(c.upstreams[0].affinity == affinity_kind::token);
    CHECK(c.upstreams[0].affinity_key_file == "/etc/turnout/keys/token.key");
}

TEST_CASE("session_idle_timeout must be greater than zero")
{
    CHECK(what_of(with(listener_only, "[[upstream]]\nname = \"u\"\nsession_idle_timeout = \"0s\"\n[[upstream.pool]]\n"
                                      "name = \"p\"\n")) ==
          "conf.toml:5:24: upstream.session_idle_timeout: must be greater than 0s");
}

// ---------------------------------------------------------------------------------------------
// [upstream.health]

TEST_CASE("health settings are validated")
{
    const auto health = [](std::string_view body) {
        return what_of(with(one_upstream, "  [upstream.health]\n" + std::string{body}));
    };
    CHECK(health("  kind = \"tcp\"\n") ==
          "conf.toml:12:10: upstream.health.kind: expected \"mcp\", \"http\" or \"none\", got \"tcp\"");
    CHECK(health("  path = \"healthz\"\n") ==
          "conf.toml:12:10: upstream.health.path: must start with '/', got \"healthz\"");
    CHECK(health("  interval = \"0s\"\n") == "conf.toml:12:14: upstream.health.interval: must be greater than 0s");
    CHECK(health("  timeout = \"0ms\"\n") == "conf.toml:12:13: upstream.health.timeout: must be greater than 0s");
    CHECK(health("  rise = 0\n") == "conf.toml:12:10: upstream.health.rise: must be between 1 and 1000");
    CHECK(health("  fall = 0\n") == "conf.toml:12:10: upstream.health.fall: must be between 1 and 1000");
    CHECK(health("  passive_failures = -1\n") ==
          "conf.toml:12:22: upstream.health.passive_failures: must not be negative");
    CHECK(health("  passive_failures = \"5\"\n") ==
          "conf.toml:12:22: upstream.health.passive_failures: expected an integer, got a string");
    CHECK(health("  passive_backoff = \"0s\"\n") ==
          "conf.toml:12:21: upstream.health.passive_backoff: must be greater than 0s");
    CHECK(health("  passive_backoff = \"10s\"\n  passive_backoff_max = \"5s\"\n") ==
          "conf.toml:13:25: upstream.health.passive_backoff_max: passive_backoff_max (5s) must not be shorter "
          "than passive_backoff (10s)");
    CHECK(health("  passive_backof = \"1s\"\n") == "conf.toml:12:3: unknown key 'passive_backof' in [upstream.health]");
    CHECK(health("  interval = \"2\"\n") ==
          "conf.toml:12:14: upstream.health.interval: expected a duration such as \"250ms\", \"30s\", \"5m\"");
}

// ---------------------------------------------------------------------------------------------
// [[route]]

TEST_CASE("a route must name an existing upstream")
{
    CHECK(what_of(with(one_upstream, "[[route]]\nupstream = \"mpc\"\n")) ==
          "conf.toml:12:12: route.upstream: no [[upstream]] is named 'mpc'");
    CHECK(what_of(with(one_upstream, "[[route]]\npath_prefix = \"/\"\n")) ==
          "conf.toml:11:1: missing key 'upstream' in [[route]]");
}

TEST_CASE("a route path_prefix starts with a slash")
{
    CHECK(what_of(with(one_upstream, "[[route]]\npath_prefix = \"mcp\"\nupstream = \"mcp\"\n")) ==
          "conf.toml:12:15: route.path_prefix: must start with '/', got \"mcp\"");
}

TEST_CASE("two routes with the same host and path_prefix are an error")
{
    CHECK(what_of(with(one_upstream, "[[route]]\npath_prefix = \"/a\"\nupstream = \"mcp\"\n"
                                     "[[route]]\npath_prefix = \"/a\"\nupstream = \"mcp\"\n")) ==
          "conf.toml:15:15: route: another [[route]] already has path_prefix \"/a\"");
    // path_prefix defaults to "/", so two routes without one collide too.
    CHECK(error_of(with(one_upstream, "[[route]]\nupstream = \"mcp\"\n[[route]]\nupstream = \"mcp\"\n")).line() == 13);
    // Host names compare without case.
    CHECK(error_of(with(one_upstream, "[[route]]\nhost = \"a.example\"\nupstream = \"mcp\"\n"
                                      "[[route]]\nhost = \"A.Example\"\nupstream = \"mcp\"\n"))
              .message()
              .ends_with("and host \"a.example\""));
}

TEST_CASE("the same path_prefix on different hosts is fine")
{
    const configuration c = parse(with(one_upstream, "[[route]]\nhost = \"a.example\"\nupstream = \"mcp\"\n"
                                                     "[[route]]\nhost = \"b.example\"\nupstream = \"mcp\"\n"
                                                     "[[route]]\nupstream = \"mcp\"\n"),
                                  "c.toml");
    CHECK(c.routes.size() == 3);
}

TEST_CASE("a single upstream without routes gets an implicit route for /")
{
    const configuration c = parse(one_upstream, "c.toml");
    REQUIRE(c.routes.size() == 1);
    CHECK(c.routes[0].path_prefix == "/");
    CHECK(c.routes[0].host.empty());
    CHECK(c.routes[0].upstream == "mcp");
}

TEST_CASE("several upstreams without routes are an error")
{
    CHECK(what_of(with(one_upstream, "[[upstream]]\nname = \"b\"\n[[upstream.pool]]\nname = \"p\"\n")) ==
          "conf.toml: several [[upstream]] tables but no [[route]]; add a [[route]] to say which gets what");
}

// ---------------------------------------------------------------------------------------------
// parse_host_port, lookups, names

TEST_CASE("parse_host_port splits IPv4, bracketed IPv6 and names")
{
    CHECK(parse_host_port("127.0.0.1:8080") == host_port{"127.0.0.1", 8080, "127.0.0.1:8080"});
    CHECK(parse_host_port("[::1]:8080") == host_port{"::1", 8080, "[::1]:8080"});
    CHECK(parse_host_port("[2001:db8::5]:443") == host_port{"2001:db8::5", 443, "[2001:db8::5]:443"});
    CHECK(parse_host_port("localhost:8080") == host_port{"localhost", 8080, "localhost:8080"});
    CHECK(parse_host_port("backend_1.svc.local:65535") ==
          host_port{"backend_1.svc.local", 65535, "backend_1.svc.local:65535"});
    CHECK(parse_host_port("0.0.0.0:0") == host_port{"0.0.0.0", 0, "0.0.0.0:0"});
}

TEST_CASE("parse_host_port rejects malformed addresses")
{
    for (const char* bad : {"", "127.0.0.1", "127.0.0.1:", ":8080", "127.0.0.1:65536", "127.0.0.1:99999999",
                            "127.0.0.1:80a", "127.0.0.1:-1", "127.0.0.1:+80", "::1:8080", "[::1]", "[::1]8080",
                            "[::1:8080", "[]:80", "[localhost]:80", "300.1.1.1:80", "1.2.3:80", "host name:80",
                            "a..b:80", ".a:80", "a/b:80"}) {
        CAPTURE(bad);
        CHECK_FALSE(parse_host_port(bad));
    }
}

TEST_CASE("find_upstream finds by name")
{
    const configuration c = parse(one_upstream, "c.toml");
    REQUIRE(c.find_upstream("mcp"));
    CHECK(c.find_upstream("mcp")->pools.size() == 1);
    CHECK(c.find_upstream("nope") == nullptr);
}

TEST_CASE("to_string names health and affinity kinds as in the config")
{
    CHECK(to_string(health_kind::mcp) == "mcp");
    CHECK(to_string(health_kind::http) == "http");
    CHECK(to_string(health_kind::none) == "none");
    CHECK(to_string(affinity_kind::table) == "table");
    CHECK(to_string(affinity_kind::token) == "token");
}

TEST_CASE("config: [proxy] access_log_format and pid_file")
{
    const auto c = parse("[proxy]\naccess_log_format = \"json\"\npid_file = \"run/turnout.pid\"\n"
                         "[[listen]]\naddress = \"127.0.0.1:0\"\n",
                         "/etc/turnout/turnout.toml");
    CHECK(c.proxy.access_log_format == "json");
    CHECK(c.proxy.pid_file == "/etc/turnout/run/turnout.pid");
    CHECK(parse(listener_only, "/x/t.toml").proxy.access_log_format == "turnout");
    CHECK_THROWS_WITH_AS(parse("[proxy]\naccess_log_format = \"main\"\n[[listen]]\naddress = \"127.0.0.1:0\"\n",
                               "t.toml"),
                         doctest::Contains("expected \"turnout\", \"combined\" or \"json\""), config_error);
}

namespace {

bool says(const std::string& what, std::string_view where, std::string_view message)
{
    return what.starts_with(where) && what.find(message) != std::string::npos;
}

} // namespace

TEST_CASE("[[route]] path is an exact path; path_prefix a prefix; not both")
{
    const auto c = parse(with(one_upstream, "[[route]]\npath = \"/healthz\"\nupstream = \"mcp\"\n"
                                            "[[route]]\npath_prefix = \"/healthz\"\nupstream = \"mcp\"\n"),
                         "conf.toml");
    REQUIRE(c.routes.size() == 2);
    CHECK(c.routes[0].exact);
    CHECK(c.routes[0].path_prefix == "/healthz");
    CHECK_FALSE(c.routes[1].exact);
    CHECK(says(what_of(with(one_upstream, "[[route]]\npath = \"/a\"\npath_prefix = \"/a\"\nupstream = \"mcp\"\n")),
               "conf.toml:12:", "route.path: a route has path (this path only) or path_prefix, not both"));
    CHECK(says(what_of(with(one_upstream, "[[route]]\npath = \"a\"\nupstream = \"mcp\"\n")), "conf.toml:12:",
               "route.path: must start with '/'"));
    CHECK(says(what_of(with(one_upstream, "[[route]]\npath = \"/a\"\nupstream = \"mcp\"\n"
                                          "[[route]]\npath = \"/a\"\nupstream = \"mcp\"\n")),
               "conf.toml:15:", "another [[route]] already has path \"/a\""));
}

TEST_CASE("[[route]] listen names [[listen]] tables by their name")
{
    const std::string two = R"([[listen]]
address = "127.0.0.1:0"
name = "public"
[[listen]]
address = "127.0.0.1:0"
name = "internal"
[[upstream]]
name = "mcp"
  [[upstream.pool]]
  name = "blue"
  weight = 100
  backends = ["127.0.0.1:3001"]
)";
    const auto c = parse(with(two, "[[route]]\nlisten = \"internal\"\nupstream = \"mcp\"\n"
                                   "[[route]]\nlisten = [\"internal\", \"public\"]\npath_prefix = \"/x\"\n"
                                   "upstream = \"mcp\"\n"
                                   "[[route]]\nupstream = \"mcp\"\n"),
                         "conf.toml");
    CHECK(c.listeners[0].name == "public");
    CHECK(c.routes[0].listeners == std::vector<std::size_t>{1});
    CHECK(c.routes[1].listeners == std::vector<std::size_t>{0, 1});
    CHECK(c.routes[2].listeners.empty());
    // The same path on two listeners is two routes, not a duplicate.
    CHECK_NOTHROW(parse(with(two, "[[route]]\nlisten = \"internal\"\nupstream = \"mcp\"\n"
                                  "[[route]]\nlisten = \"public\"\nupstream = \"mcp\"\n"),
                        "conf.toml"));
    CHECK(says(what_of(with(two, "[[route]]\nlisten = \"admin\"\nupstream = \"mcp\"\n")), "conf.toml:14:10:",
               "route.listen: no [[listen]] is named 'admin'"));
    CHECK(says(what_of(with(two, "[[route]]\nlisten = []\nupstream = \"mcp\"\n")), "conf.toml:14:",
               "route.listen: names no [[listen]]"));
    CHECK(says(what_of(with(two, "[[route]]\nlisten = \"public\"\nupstream = \"mcp\"\n"
                                 "[[route]]\nlisten = \"public\"\nupstream = \"mcp\"\n")),
               "conf.toml:", "already has path_prefix \"/\" and listen \"public\""));
    CHECK(says(what_of("[[listen]]\naddress = \"127.0.0.1:0\"\nname = \"a b\"\n"), "conf.toml:3:8:",
               "listen.name: must be 1 to 64"));
    CHECK(says(what_of("[[listen]]\naddress = \"127.0.0.1:0\"\nname = \"a\"\n[[listen]]\naddress = \"127.0.0.1:0\"\n"
                       "name = \"a\"\n"),
               "conf.toml:6:8:", "another [[listen]] is already named 'a'"));
}

TEST_CASE("[[route]] answer: a fixed status with a body or, for redirects, a location")
{
    const auto c = parse(with(one_upstream, "[[route]]\npath_prefix = \"/old\"\n"
                                            "answer = { status = 301, location = \"https://$host$request_uri\" }\n"
                                            "[[route]]\npath = \"/ping\"\nanswer = { status = 200, body = \"pong\" }\n"
                                            "[[route]]\nupstream = \"mcp\"\n"),
                         "conf.toml");
    REQUIRE(c.routes[0].answer);
    CHECK(c.routes[0].answer->status == 301);
    CHECK(c.routes[0].answer->location == "https://$host$request_uri");
    CHECK(c.routes[0].upstream.empty());
    CHECK(c.routes[1].answer->body == "pong");
    CHECK_FALSE(c.routes[2].answer);

    const auto bad = [](std::string_view answer) {
        return what_of(with(one_upstream, "[[route]]\n" + std::string(answer) + "\n"));
    };
    CHECK(says(bad("answer = { status = 302 }"), "conf.toml:12:", "302 is a redirect: it needs location"));
    CHECK(says(bad("answer = { status = 200, location = \"/x\" }"), "conf.toml:12:",
               "only a redirect (301, 302, 303, 307 or 308) has a location"));
    CHECK(says(bad("answer = { status = 301, location = \"/x\", body = \"b\" }"), "conf.toml:12:",
               "a redirect answers with its location, not a body"));
    CHECK(says(bad("answer = { status = 99 }"), "conf.toml:12:", "route.answer.status: must be between 200 and 599"));
    CHECK(says(bad("answer = { body = \"x\" }"), "conf.toml:12:", "missing key 'status'"));
    CHECK(says(bad("answer = { status = 200, body = \"$uri\" }"), "conf.toml:12:",
               "unknown variable $uri (turnout expands $scheme, $host and $request_uri)"));
    CHECK(says(bad("answer = { status = 301, location = \"/a\\r\\nX: y\" }"), "conf.toml:12:",
               "must not contain control characters"));
    CHECK(says(bad("answer = { status = 200 }\nupstream = \"mcp\""), "conf.toml:12:",
               "a route either forwards (upstream) or answers itself (answer), not both"));
    CHECK(says(bad("path_prefix = \"/\""), "conf.toml:11:1:", "missing key 'upstream' in [[route]]"));
}

TEST_CASE("[[upstream.pool]] backup = true marks a backup pool")
{
    const auto c = parse(with(one_upstream, "  [[upstream.pool]]\n  name = \"spare\"\n  backup = true\n"
                                            "  backends = [\"127.0.0.1:3091\"]\n"),
                         "conf.toml");
    CHECK_FALSE(c.upstreams[0].pools[0].backup);
    CHECK(c.upstreams[0].pools[1].backup);
    CHECK(says(what_of(with(one_upstream, "  backup = \"yes\"\n")), "conf.toml:11:",
               "upstream.pool.backup: expected true or false"));
}
