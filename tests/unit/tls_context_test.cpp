#include "turnout/config/config.hpp"
#include "turnout/net/tls_context.hpp"

#include <doctest/doctest.h>
#include <openssl/ssl.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <unistd.h>

using namespace turnout;
namespace fs = std::filesystem;

namespace {

/// A temp folder with a CA and leaf certificates made by the openssl CLI (removed at the end).
class cert_dir {
public:
    cert_dir()
    {
        char tmpl[] = "/tmp/turnout-tls-unit-XXXXXX";
        path_ = ::mkdtemp(tmpl);
        run("openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout ca.key -out ca.pem "
            "-subj /CN=unit-ca -days 2");
        leaf("multi", "multi-cn", "subjectAltName=DNS:api.example.com,DNS:*.apps.example.com,IP:127.0.0.1");
        leaf("cn-only", "cn.example.com", "");
        leaf("other", "other", "subjectAltName=DNS:other.example.com");
    }
    ~cert_dir() { fs::remove_all(path_); }

    std::string file(const std::string& name) const { return (path_ / name).string(); }

    void write(const std::string& name, const std::string& text) const { std::ofstream(file(name)) << text; }

private:
    void run(const std::string& command) const
    {
        const auto full = "cd '" + path_.string() + "' && " + command + " >/dev/null 2>&1";
        REQUIRE(std::system(full.c_str()) == 0);
    }

    void leaf(const std::string& name, const std::string& cn, const std::string& ext)
    {
        write(name + ".ext", ext + "\n");
        run("openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout " + name + ".key -out " +
            name + ".csr -subj /CN=" + cn);
        run("openssl x509 -req -in " + name + ".csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 -out " + name +
            ".pem" + (ext.empty() ? "" : " -extfile " + name + ".ext"));
    }

    fs::path path_;
};

config::listen_config listen_with(const cert_dir& d, const std::string& cert, const std::string& key)
{
    config::listen_config l;
    l.tls_cert = d.file(cert + ".pem");
    l.tls_key = d.file(key + ".key");
    return l;
}

std::string error_of(const config::listen_config& l)
{
    try {
        net::tls_server_context ctx(l);
    } catch (const config::config_error& e) {
        return e.what();
    }
    return "no error";
}

} // namespace

TEST_CASE("config: [[listen.certificate]] and pool TLS keys")
{
    const auto c = config::parse(R"([[listen]]
address = "127.0.0.1:0"
tls_cert = "a.pem"
tls_key = "a.key"
  [[listen.certificate]]
  cert = "b.pem"
  key = "b.key"

[[upstream]]
name = "mcp"
  [[upstream.pool]]
  name = "blue"
  backends = ["127.0.0.1:3001"]
  tls = true
  tls_ca_file = "ca.pem"
  tls_server_name = "backend.internal"
)",
                                 "/etc/turnout/turnout.toml");
    REQUIRE(c.listeners.size() == 1);
    CHECK(c.listeners[0].tls());
    REQUIRE(c.listeners[0].certificates.size() == 1);
    CHECK(c.listeners[0].certificates[0].cert == "/etc/turnout/b.pem");
    CHECK(c.listeners[0].certificates[0].key == "/etc/turnout/b.key");
    const auto& pool = c.upstreams[0].pools[0];
    CHECK(pool.tls);
    CHECK(pool.tls_ca_file == "/etc/turnout/ca.pem");
    CHECK(pool.tls_server_name == "backend.internal");
}

TEST_CASE("config: TLS keys that cannot work are errors with a position")
{
    auto error = [](std::string_view text) -> std::string {
        try {
            (void)config::parse(text, "t.toml");
        } catch (const config::config_error& e) {
            return e.what();
        }
        return "no error";
    };
    CHECK(error("[[listen]]\naddress = \"127.0.0.1:0\"\n  [[listen.certificate]]\n  cert = \"b.pem\"\n  key = \"b.key\"\n")
              .find("needs tls_cert and tls_key") != std::string::npos);
    CHECK(error("[[listen]]\naddress = \"127.0.0.1:0\"\ntls_cert = \"a\"\ntls_key = \"b\"\n  [[listen.certificate]]\n  cert = \"b.pem\"\n")
              .find("needs both cert and key") != std::string::npos);
    const auto pool = std::string("[[listen]]\naddress = \"127.0.0.1:0\"\n[[upstream]]\nname = \"u\"\n  [[upstream.pool]]\n  name = \"p\"\n");
    CHECK(error(pool + "  tls_ca_file = \"ca.pem\"\n").find("t.toml:7:") != std::string::npos);
    CHECK(error(pool + "  tls_ca_file = \"ca.pem\"\n").find("needs tls = true") != std::string::npos);
    CHECK(error(pool + "  tls = \"yes\"\n").find("expected true or false") != std::string::npos);
    CHECK(error(pool + "  tls_cert = \"x\"\n").find("unknown key 'tls_cert'") != std::string::npos);
}

TEST_CASE("tls_name_matches: exact names any case, wildcards over one label")
{
    CHECK(net::tls_name_matches("api.example.com", "API.example.com"));
    CHECK_FALSE(net::tls_name_matches("api.example.com", "api.example.org"));
    CHECK(net::tls_name_matches("*.apps.example.com", "x.apps.example.com"));
    CHECK_FALSE(net::tls_name_matches("*.apps.example.com", "apps.example.com"));
    CHECK_FALSE(net::tls_name_matches("*.apps.example.com", "a.b.apps.example.com"));
    CHECK_FALSE(net::tls_name_matches("*.apps.example.com", ".apps.example.com"));
}

TEST_CASE("tls_server_context: names from subjectAltName, else CN; SNI selection")
{
    const cert_dir d;
    auto l = listen_with(d, "multi", "multi");
    l.certificates.push_back({d.file("cn-only.pem"), d.file("cn-only.key")});
    l.certificates.push_back({d.file("other.pem"), d.file("other.key")});
    net::tls_server_context ctx(l);
    REQUIRE(ctx.certificate_count() == 3);
    CHECK(ctx.names(0) == std::vector<std::string>{"api.example.com", "*.apps.example.com"});
    CHECK(ctx.names(1) == std::vector<std::string>{"cn.example.com"});
    CHECK(ctx.select("other.example.com") == 2);
    CHECK(ctx.select("CN.example.com") == 1);
    CHECK(ctx.select("x.apps.example.com") == 0);
    CHECK(ctx.select("unknown.example.com") == 0);

    SSL_CTX* native = ctx.context().native_handle();
    CHECK(SSL_CTX_get_min_proto_version(native) == TLS1_2_VERSION);
    CHECK((SSL_CTX_get_options(native) & SSL_OP_CIPHER_SERVER_PREFERENCE) == 0);
    CHECK((SSL_CTX_get_session_cache_mode(native) & SSL_SESS_CACHE_SERVER) != 0);
}

TEST_CASE("tls_server_context: bad files are errors naming the file")
{
    const cert_dir d;
    CHECK(error_of(listen_with(d, "multi", "multi")) == "no error");
    CHECK(error_of(listen_with(d, "missing", "multi")) ==
          d.file("missing.pem") + ": cannot read: No such file or directory");
    d.write("junk.pem", "not pem\n");
    CHECK(error_of(listen_with(d, "junk", "multi")).starts_with(d.file("junk.pem") + ": not a PEM certificate"));
    d.write("junk.key", "not pem\n");
    CHECK(error_of(listen_with(d, "multi", "junk")).starts_with(d.file("junk.key") + ": not a PEM private key"));
    CHECK(error_of(listen_with(d, "multi", "other")) ==
          d.file("other.key") + ": private key does not match the certificate " + d.file("multi.pem"));
    // A key where the certificate should be is not a certificate.
    auto swapped = listen_with(d, "multi", "multi");
    swapped.tls_cert = d.file("multi.key");
    CHECK(error_of(swapped).starts_with(d.file("multi.key") + ": not a PEM certificate"));
}

TEST_CASE("tls_client_context: a CA file must hold certificates")
{
    const cert_dir d;
    config::pool_config pool;
    pool.name = "blue";
    pool.tls = true;
    pool.tls_ca_file = d.file("ca.pem");
    CHECK_NOTHROW(net::tls_client_context{pool});
    d.write("empty.pem", "nothing here\n");
    pool.tls_ca_file = d.file("empty.pem");
    CHECK_THROWS_WITH_AS(net::tls_client_context{pool}, (d.file("empty.pem") + ": no PEM certificate in this CA file").c_str(),
                         config::config_error);
}

TEST_CASE("build_tls_contexts: one per listener, pools sharing settings share a context")
{
    const cert_dir d;
    config::configuration c;
    c.listeners.push_back({});
    c.listeners.push_back(listen_with(d, "multi", "multi"));
    config::upstream_config u;
    config::pool_config a;
    a.name = "a";
    a.tls = true;
    a.tls_ca_file = d.file("ca.pem");
    auto b = a;
    b.name = "b";
    auto plain = a;
    plain.name = "plain";
    plain.tls = false;
    u.pools = {a, b, plain};
    c.upstreams.push_back(u);
    const auto t = net::build_tls_contexts(c);
    REQUIRE(t.listeners.size() == 2);
    CHECK(t.listeners[0] == nullptr);
    CHECK(t.listeners[1] != nullptr);
    CHECK(t.for_pool(a) != nullptr);
    CHECK(t.for_pool(a) == t.for_pool(b));
    CHECK(t.for_pool(plain) == nullptr);
}
