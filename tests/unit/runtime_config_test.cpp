// [runtime]: where committed runtime state lives (a state file, or etcd for a fleet).
#include "turnout/config/config.hpp"

#include <doctest/doctest.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <string>

#include <unistd.h>

using namespace turnout::config;

namespace {

constexpr std::string_view base = R"([[listen]]
address = "127.0.0.1:0"
)";

configuration parsed(std::string_view runtime)
{
    return parse(std::string{base} + std::string{runtime}, "/etc/turnout/conf.toml");
}

config_error error_of(std::string_view runtime)
{
    try {
        (void)parsed(runtime);
    } catch (const config_error& e) {
        return e;
    }
    FAIL("expected a config_error for:\n" << runtime);
    return config_error{"", 0, 0, ""};
}

} // namespace

TEST_CASE("[runtime] store defaults to the state file")
{
    const auto c = parse(base, "conf.toml");
    CHECK(c.runtime.store == store_kind::file);
    CHECK(c.runtime.etcd_endpoints.empty());
    CHECK(parsed("[runtime]\nstore = \"file\"\n").runtime.store == store_kind::file);
    CHECK(to_string(store_kind::etcd) == "etcd");
}

TEST_CASE("[runtime] store = \"etcd\" with its defaults: 127.0.0.1:2379 and /turnout/")
{
    const auto c = parsed("[runtime]\nstore = \"etcd\"\n");
    CHECK(c.runtime.store == store_kind::etcd);
    REQUIRE(c.runtime.etcd_endpoints.size() == 1);
    CHECK(c.runtime.etcd_endpoints[0].host == "127.0.0.1");
    CHECK(c.runtime.etcd_endpoints[0].port == 2379);
    CHECK(c.runtime.etcd_prefix == "/turnout/");
}

TEST_CASE("[runtime] etcd endpoints and prefix are read")
{
    const auto c = parsed(R"([runtime]
store = "etcd"
etcd_endpoints = ["http://127.0.0.1:23790", "http://[::1]:2379/", "http://etcd.internal:2379"]
etcd_prefix = "/fleet/a/"
)");
    REQUIRE(c.runtime.etcd_endpoints.size() == 3);
    CHECK(c.runtime.etcd_endpoints[0].port == 23790);
    CHECK(c.runtime.etcd_endpoints[1].host == "::1");
    CHECK(c.runtime.etcd_endpoints[2].host == "etcd.internal");
    CHECK(c.runtime.etcd_prefix == "/fleet/a/");
}

TEST_CASE("[runtime] bad values are reported at the value with file, line and column")
{
    SUBCASE("an unknown store")
    {
        const auto e = error_of("[runtime]\nstore = \"consul\"\n");
        CHECK(std::string(e.what()) ==
              "/etc/turnout/conf.toml:4:9: runtime.store: expected \"file\" or \"etcd\", got \"consul\"");
    }
    SUBCASE("an endpoint without a scheme, pointing at the element")
    {
        const auto e = error_of("[runtime]\nstore = \"etcd\"\netcd_endpoints = [\"http://127.0.0.1:2379\", \"127.0.0.1:2379\"]\n");
        CHECK(e.line() == 5);
        CHECK(e.column() == 44);
        CHECK(e.message() == "runtime.etcd_endpoints: expected \"http://HOST:PORT\" or \"https://HOST:PORT\", got \"127.0.0.1:2379\"");
    }
    SUBCASE("an endpoint without a port")
    {
        CHECK(error_of("[runtime]\nstore = \"etcd\"\netcd_endpoints = [\"http://etcd\"]\n").message() ==
              "runtime.etcd_endpoints: expected \"http://HOST:PORT\" or \"https://HOST:PORT\", got \"http://etcd\"");
    }
    SUBCASE("no endpoint at all")
    {
        CHECK(error_of("[runtime]\nstore = \"etcd\"\netcd_endpoints = []\n").message() ==
              "runtime.etcd_endpoints: must name at least one endpoint");
    }
    SUBCASE("endpoints of the wrong type")
    {
        CHECK(error_of("[runtime]\nstore = \"etcd\"\netcd_endpoints = \"http://127.0.0.1:2379\"\n").message() ==
              "runtime.etcd_endpoints: expected an array of strings, got a string");
    }
    SUBCASE("an empty prefix")
    {
        const auto e = error_of("[runtime]\nstore = \"etcd\"\netcd_prefix = \"\"\n");
        CHECK(e.line() == 5);
        CHECK(e.message().starts_with("runtime.etcd_prefix: must not be empty"));
    }
    SUBCASE("etcd keys with the file store")
    {
        const auto e = error_of("[runtime]\netcd_prefix = \"/x/\"\n");
        CHECK(e.line() == 4);
        CHECK(e.message() == "runtime.etcd_prefix: is set but store is \"file\"; set store = \"etcd\" to use etcd");
    }
    SUBCASE("an unknown key")
    {
        const auto e = error_of("[runtime]\nstore = \"etcd\"\netcd_endpoint = [\"http://127.0.0.1:2379\"]\n");
        CHECK(e.line() == 5);
        CHECK(e.message() == "unknown key 'etcd_endpoint' in [runtime]");
    }
}

TEST_CASE("[runtime] TLS toward etcd: https endpoints with a CA and a client certificate")
{
    const auto c = parsed(R"([runtime]
store = "etcd"
etcd_endpoints = ["https://127.0.0.1:2379", "https://etcd.internal:2379/"]
etcd_ca_file = "ca.pem"
etcd_cert_file = "/etc/turnout/client.pem"
etcd_key_file = "client.key"
)");
    CHECK(c.runtime.etcd_tls);
    CHECK(c.runtime.etcd_endpoints[1].host == "etcd.internal");
    CHECK(c.runtime.etcd_ca_file == "/etc/turnout/ca.pem");
    CHECK(c.runtime.etcd_key_file == "/etc/turnout/client.key");
    CHECK_FALSE(parsed("[runtime]\nstore = \"etcd\"\n").runtime.etcd_tls);

    SUBCASE("http and https mixed")
    {
        const auto e = error_of("[runtime]\nstore = \"etcd\"\netcd_endpoints = [\"https://a:2379\", \"http://b:2379\"]\n");
        CHECK(e.line() == 5);
        CHECK(e.column() == 37);
        CHECK(e.message() == "runtime.etcd_endpoints: mixes http:// and https:// endpoints; use one scheme for all");
    }
    SUBCASE("a client certificate needs its key")
    {
        const auto e = error_of("[runtime]\nstore = \"etcd\"\netcd_endpoints = [\"https://a:1\"]\netcd_cert_file = \"client.pem\"\n");
        CHECK(e.line() == 6);
        CHECK(e.message() == "runtime.etcd_cert_file: is set but etcd_key_file is not; a client certificate needs both");
    }
    SUBCASE("TLS files with http endpoints")
    {
        const auto e = error_of("[runtime]\nstore = \"etcd\"\netcd_ca_file = \"ca.pem\"\n");
        CHECK(e.line() == 5);
        CHECK(e.message() ==
              "runtime.etcd_ca_file: is set but the etcd endpoints are http://; TLS toward etcd needs https:// endpoints");
    }
    SUBCASE("an empty path")
    {
        CHECK(error_of("[runtime]\nstore = \"etcd\"\netcd_ca_file = \"\"\n").message().starts_with(
            "runtime.etcd_ca_file: must not be empty"));
    }
}

TEST_CASE("[runtime] etcd credentials, instance name and lease TTL")
{
    const auto dir = std::filesystem::temp_directory_path() / ("turnout-runtime-config-" + std::to_string(::getpid()));
    std::filesystem::create_directories(dir);
    const auto password = (dir / "etcd.password").string();
    std::ofstream(password) << "s3cret\n";
    const auto c = parsed("[runtime]\nstore = \"etcd\"\netcd_username = \"turnout\"\netcd_password_file = \"" + password +
                          "\"\ninstance_name = \"edge-a\"\netcd_lease_ttl = \"3s\"\n");
    CHECK(c.runtime.etcd_username == "turnout");
    CHECK(c.runtime.etcd_password == "s3cret");
    CHECK(c.runtime.instance_name == "edge-a");
    CHECK(c.runtime.etcd_lease_ttl == std::chrono::seconds(3));
    const auto d = parsed("[runtime]\nstore = \"etcd\"\n");
    CHECK(d.runtime.instance_name.empty());
    CHECK(d.runtime.etcd_lease_ttl == std::chrono::seconds(10));

    SUBCASE("a user without a password file")
    {
        const auto e = error_of("[runtime]\nstore = \"etcd\"\netcd_username = \"turnout\"\n");
        CHECK(e.line() == 5);
        CHECK(e.message() == "runtime.etcd_username: is set but etcd_password_file is not; etcd's authentication needs both");
    }
    SUBCASE("a password file that cannot be read")
    {
        const auto e = error_of("[runtime]\nstore = \"etcd\"\netcd_username = \"u\"\netcd_password_file = \"/nonexistent/pw\"\n");
        CHECK(e.line() == 6);
        CHECK(e.message() == "runtime.etcd_password_file: cannot read /nonexistent/pw");
    }
    SUBCASE("a lease TTL below a second or not whole seconds")
    {
        CHECK(error_of("[runtime]\nstore = \"etcd\"\netcd_lease_ttl = \"500ms\"\n").message().starts_with(
            "runtime.etcd_lease_ttl: must be a whole number of seconds"));
        CHECK(error_of("[runtime]\nstore = \"etcd\"\netcd_lease_ttl = \"1500ms\"\n").line() == 5);
    }
    SUBCASE("an instance name with a space")
    {
        CHECK(error_of("[runtime]\nstore = \"etcd\"\ninstance_name = \"a b\"\n").message() ==
              "runtime.instance_name: must be a non-empty name without spaces or control characters");
    }
    SUBCASE("fleet keys with the file store")
    {
        CHECK(error_of("[runtime]\ninstance_name = \"a\"\n").message() ==
              "runtime.instance_name: is set but store is \"file\"; set store = \"etcd\" to use etcd");
    }
    std::filesystem::remove_all(dir);
}
