#include "turnout/config/config.hpp"
#include "turnout/nginx/loader.hpp"
#include "turnout/nginx/translator.hpp"
#include "turnout/nginx/values.hpp"

#include <doctest/doctest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>

#include <unistd.h>

using namespace turnout::nginx;
namespace fs = std::filesystem;

namespace {

const fs::path corpus = fs::path(TURNOUT_SOURCE_DIR) / "tests" / "nginx";

std::string read(const fs::path& p)
{
    std::ifstream in(p);
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

std::string replace_all(std::string text, const std::string& from, const std::string& to)
{
    for (auto at = text.find(from); at != std::string::npos; at = text.find(from, at + to.size()))
        text.replace(at, from.size(), to);
    return text;
}

translation of(std::string_view text)
{
    return translate(parse(text, "/etc/nginx/nginx.conf"), "/etc/nginx/nginx.conf");
}

const report_line* line_of(const translation& t, std::string_view directive_start)
{
    for (const auto& r : t.report)
        if (r.directive.starts_with(directive_start))
            return &r;
    return nullptr;
}

std::string report_text(const translation& t)
{
    std::string out;
    for (const auto& r : t.report)
        out += r.text() + "\n";
    return out;
}

constexpr std::string_view frame = "events {}\nhttp {\n upstream mcp { server 127.0.0.1:3001; }\n server {\n"
                                   "  listen 127.0.0.1:8080;\n  location / { proxy_pass http://mcp; %s }\n }\n}\n";

translation in_location(std::string_view directives)
{
    return of(replace_all(std::string(frame), "%s", std::string(directives)));
}

} // namespace

TEST_CASE("nginx corpus: each configuration's report and TOML are as expected, and the TOML loads")
{
    int checked = 0;
    for (const auto& entry : fs::directory_iterator(corpus)) {
        const auto conf = entry.path() / "nginx.conf";
        if (!fs::exists(conf))
            continue;
        CAPTURE(conf.string());
        const auto t = translate_file(conf.string());
        const auto dir = entry.path().string();
        CHECK(replace_all(report_text(t), dir, "{dir}") == read(entry.path() / "expected.report"));
        CHECK(replace_all(t.toml, dir, "{dir}") == read(entry.path() / "expected.toml"));
        const auto config = turnout::config::parse(t.toml, conf.string());
        CHECK(!config.listeners.empty());
        CHECK(t.complete() == (entry.path().filename() != "unsupported"));
        ++checked;
    }
    CHECK(checked >= 6);
}

TEST_CASE("nginx translation: split_clients on the session id becomes weighted pools, pinning said")
{
    const auto t = translate_file((corpus / "canary" / "nginx.conf").string());
    const auto config = turnout::config::parse(t.toml, "/x/t.toml");
    const auto* u = config.find_upstream("mcp_pool");
    REQUIRE(u);
    REQUIRE(u->pools.size() == 2);
    CHECK(u->pools[0].name == "mcp_canary");
    CHECK(u->pools[0].weight == 5);
    CHECK(u->pools[1].weight == 95);
    CHECK(u->pools[1].backends.size() == 2);
    const auto* split = line_of(t, "split_clients");
    REQUIRE(split);
    CHECK(split->what == verdict::translated);
    CHECK(split->why.find("pinned") != std::string::npos);
    CHECK(config.routes.at(0).upstream == "mcp_pool");
    CHECK(config.proxy.stream_idle_timeout == std::chrono::hours(24));
}

TEST_CASE("nginx translation: split_clients on the address is approximated; fractional shares")
{
    const auto t = of("events {}\nhttp {\n upstream a { server 127.0.0.1:1; }\n upstream b { server 127.0.0.1:2; }\n"
                      " split_clients $remote_addr $up { 0.5% a; * b; }\n"
                      " server { listen 127.0.0.1:80; location / { proxy_pass http://$up; } }\n}\n");
    CHECK(line_of(t, "split_clients")->what == verdict::approximated);
    const auto config = turnout::config::parse(t.toml, "/x/t.toml");
    CHECK(config.find_upstream("up")->pools[0].weight == 50);
    CHECK(config.find_upstream("up")->pools[1].weight == 9950);
    const auto gap = of("events {}\nhttp {\n upstream a { server 127.0.0.1:1; }\n"
                        " split_clients $remote_addr $up { 50% a; }\n"
                        " server { listen 127.0.0.1:80; location / { proxy_pass http://$up; } }\n}\n");
    CHECK(line_of(gap, "split_clients")->what == verdict::untranslated);
    CHECK(!gap.complete());
}

TEST_CASE("nginx translation: hash on the session id is the session table; backup and down")
{
    const auto t = translate_file((corpus / "hash_consistent" / "nginx.conf").string());
    CHECK(line_of(t, "hash $http_mcp_session_id")->what == verdict::translated);
    CHECK(line_of(t, "server 10.0.0.4:8000 down")->what == verdict::translated);
    CHECK(line_of(t, "server 10.0.0.3:8000 backup")->what == verdict::translated);
    const auto config = turnout::config::parse(t.toml, "/x/t.toml");
    const auto& u = config.upstreams.at(0);
    REQUIRE(u.pools.size() == 2);
    CHECK(u.pools[0].backends.size() == 2); // down left out, backup apart
    CHECK(u.pools[1].name == "main-backup");
    CHECK(u.pools[1].weight == 0);
    CHECK(u.pools[1].backup);
    CHECK_FALSE(u.pools[0].backup);
    CHECK(u.passive.failures == 3);
    CHECK(u.passive.backoff == std::chrono::seconds(30));
    CHECK(u.passive.backoff_max == std::chrono::seconds(30));
    CHECK(config.proxy.max_body_bytes == 10 * 1024 * 1024);
    CHECK(line_of(of("events{} http { upstream u { hash $remote_addr; server 127.0.0.1:1; } }"), "hash")->what ==
          verdict::approximated);
}

TEST_CASE("nginx translation: servers, TLS listeners and SNI certificates, location kinds")
{
    const auto t = translate_file((corpus / "tls_servers" / "nginx.conf").string());
    const auto config = turnout::config::parse(t.toml, "/x/t.toml");
    REQUIRE(config.listeners.size() == 2);
    CHECK(config.listeners[0].address.text == "0.0.0.0:443");
    CHECK(config.listeners[0].tls_cert == (corpus / "tls_servers" / "certs/api.pem").string());
    REQUIRE(config.listeners[0].certificates.size() == 1);
    CHECK(config.listeners[0].certificates[0].key == (corpus / "tls_servers" / "certs/tools.key").string());
    CHECK(!config.listeners[1].tls());
    CHECK(line_of(t, "location = /health")->what == verdict::translated);
    const auto health = std::find_if(config.routes.begin(), config.routes.end(),
                                     [](const auto& r) { return r.path_prefix == "/health"; });
    REQUIRE(health != config.routes.end());
    CHECK(health->exact);
    CHECK(line_of(t, "location ^~ /tools/")->what == verdict::translated);
    CHECK(line_of(t, "error_log")->what == verdict::approximated);
    CHECK(config.proxy.log_level == "warn");
    CHECK(config.proxy.access_log_format == "combined");
    CHECK(config.proxy.workers == 2);
    bool tools_host = false;
    for (const auto& r : config.routes)
        tools_host |= r.host == "tools.example.com" && r.upstream == "tools";
    CHECK(tools_host);
}

TEST_CASE("nginx translation: settings by location become one value, the largest, approximated")
{
    const auto t = translate_file((corpus / "keepalive_timeouts" / "nginx.conf").string());
    const auto config = turnout::config::parse(t.toml, "/x/t.toml");
    CHECK(config.proxy.max_body_bytes == 50 * 1024 * 1024);
    CHECK(config.proxy.response_timeout == std::chrono::hours(1));
    CHECK(config.proxy.idle_timeout == std::chrono::seconds(30));
    CHECK(config.proxy.header_timeout == std::chrono::seconds(15));
    CHECK(config.proxy.connect_timeout == std::chrono::seconds(3));
    CHECK(config.proxy.max_header_bytes == 4 * 16 * 1024);
    CHECK(line_of(t, "client_max_body_size 2m")->what == verdict::approximated);
    CHECK(line_of(t, "keepalive 64")->what == verdict::translated);
    // nginx's defaults where nothing is written: 1m bodies, 60s timeouts
    const auto d = turnout::config::parse(in_location("").toml, "/x/t.toml");
    CHECK(d.proxy.max_body_bytes == 1024 * 1024);
    CHECK(d.proxy.response_timeout == std::chrono::seconds(60));
}

TEST_CASE("nginx translation: directives by kind")
{
    CHECK(line_of(in_location("proxy_buffering off;"), "proxy_buffering")->why.starts_with("nothing needed"));
    CHECK(line_of(in_location("proxy_set_header X-Auth secret;"), "proxy_set_header")->what == verdict::untranslated);
    CHECK(line_of(in_location("proxy_set_header X-Forwarded-Proto $scheme;"), "proxy_set_header")->what ==
          verdict::translated);
    CHECK(line_of(in_location("gzip off;"), "gzip")->what == verdict::ignored);
    CHECK(line_of(in_location("gzip on;"), "gzip")->what == verdict::untranslated);
    CHECK(line_of(in_location("something_new 1;"), "something_new")->what == verdict::untranslated);
    const auto rewritten = of("events{} http { upstream u { server 127.0.0.1:1; } server { listen 127.0.0.1:1;"
                              " location /a/ { proxy_pass http://u/b/; } } }");
    CHECK(line_of(rewritten, "proxy_pass")->what == verdict::untranslated);
    const auto answer = of("events{} http { server { listen 127.0.0.1:1; location /x { return 302 /y; } } }");
    CHECK(line_of(answer, "return")->what == verdict::translated);
    CHECK(line_of(of("pid /run/nginx.pid; events{}"), "pid")->what == verdict::translated);
    const auto map = of("events{} http { upstream a { server 127.0.0.1:1; } upstream b { server 127.0.0.1:2; }"
                        " map $host $up { default a; api.example.com b; }"
                        " server { listen 127.0.0.1:1; location / { proxy_pass http://$up; } } }");
    CHECK(map.complete());
    const auto config = turnout::config::parse(map.toml, "/x/t.toml");
    REQUIRE(config.routes.size() == 2);
    CHECK(config.routes[0].host == "api.example.com");
    CHECK(config.routes[0].upstream == "b");
    CHECK(config.routes[1].upstream == "a");
    const auto by_header = of("events{} http { upstream a { server 127.0.0.1:1; }"
                              " map $http_x_tenant $up { default a; }"
                              " server { listen 127.0.0.1:1; location / { proxy_pass http://$up; } } }");
    CHECK(line_of(by_header, "map")->what == verdict::untranslated);
}

TEST_CASE("nginx translation: a server that is neither named nor the default makes no route")
{
    const auto t = of("events {}\nhttp {\n upstream a { server 127.0.0.1:1; }\n upstream b { server 127.0.0.1:2; }\n"
                      " server { listen 127.0.0.1:80; location / { proxy_pass http://a; } }\n"
                      " server { listen 127.0.0.1:80; location /x { proxy_pass http://b; } }\n}\n");
    const auto config = turnout::config::parse(t.toml, "/x/t.toml");
    REQUIRE(config.routes.size() == 1);
    CHECK(config.routes[0].upstream == "a");
    const auto second = std::find_if(t.report.begin(), t.report.end(),
                                     [](const report_line& r) { return r.directive == "server" && r.line == 6; });
    REQUIRE(second != t.report.end());
    CHECK(second->what == verdict::approximated);
    CHECK(line_of(t, "proxy_pass http://b")->what == verdict::approximated);
    CHECK(config.find_upstream("b")); // kept, though nothing routes to it
}

TEST_CASE("nginx translation: report lines read PATH:LINE: verdict: directive — why")
{
    const auto t = in_location("proxy_buffering off;");
    const auto* r = line_of(t, "proxy_buffering");
    CHECK(r->text().starts_with("/etc/nginx/nginx.conf:6: translated: proxy_buffering off \u2014 nothing needed"));
}

TEST_CASE("nginx loader: detection by name and content, refusal of untranslated files")
{
    const auto dir = fs::temp_directory_path() / ("nginx_loader_" + std::to_string(::getpid()));
    fs::create_directories(dir);
    std::ofstream(dir / "plain") << "# comment\nevents {}\n";
    std::ofstream(dir / "toml") << "# comment\n[proxy]\n";
    CHECK(is_nginx_config((dir / "plain").string()));
    CHECK(!is_nginx_config((dir / "toml").string()));
    CHECK(is_nginx_config("/nowhere/site.conf"));
    CHECK(!is_nginx_config("/nowhere/turnout.toml"));
    CHECK(load_configuration((corpus / "canary" / "nginx.conf").string()).find_upstream("mcp_pool"));
    try {
        load_configuration((corpus / "unsupported" / "nginx.conf").string());
        FAIL("an untranslated configuration loaded");
    } catch (const turnout::config::config_error& e) {
        CHECK(std::string(e.what()).find("nginx directive(s) turnout cannot translate") != std::string::npos);
    }
    fs::remove_all(dir);
}

TEST_CASE("nginx values: sizes, times, addresses, names")
{
    CHECK(parse_size("10m") == 10u * 1024 * 1024);
    CHECK(parse_size("512K") == 512u * 1024);
    CHECK(parse_size("1024") == 1024u);
    CHECK(!parse_size("ten"));
    CHECK(!parse_size("99999999999999999999g"));
    CHECK(parse_time("1m30s") == std::chrono::seconds(90));
    CHECK(parse_time("60") == std::chrono::seconds(60));
    CHECK(parse_time("500ms") == std::chrono::milliseconds(500));
    CHECK(parse_time("1d") == std::chrono::hours(24));
    CHECK(!parse_time("5x"));
    CHECK(listen_address("8080") == "0.0.0.0:8080");
    CHECK(listen_address("*:443") == "0.0.0.0:443");
    CHECK(listen_address("127.0.0.1") == "127.0.0.1:80");
    CHECK(listen_address("[::1]:8443") == "[::1]:8443");
    CHECK(!listen_address("unix:/run/x.sock"));
    CHECK(backend_address("backend.internal", 443) == "backend.internal:443");
    CHECK(safe_name("a:b/c") == "a_b_c");
    CHECK(toml_string("a\"b\\c\n") == "\"a\\\"b\\\\c\\u000a\"");
    CHECK(toml_string("caf\xc3\xa9") == "\"caf\xc3\xa9\"");
    CHECK(toml_string("bad\xff") == "\"bad?\""); // TOML is UTF-8 (found by the fuzzer)
    CHECK(toml_text("a\nb\xfe") == "a b?");
    CHECK(toml_text("a\x01\tb") == "a?\tb");
    CHECK(toml_text("\xf6\x97\x8b\x92p") == "????p"); // past U+10FFFF (found by the fuzzer)
    CHECK(toml_text("\xed\xa0\x80") == "???");         // a surrogate
    CHECK(toml_text("\xc0\xaf") == "??");               // overlong
    CHECK(toml_text("\xf0\x9f\x98\x80") == "\xf0\x9f\x98\x80");
}

namespace {

translation served(std::string_view server_body)
{
    return of("events{} http { upstream u { server 127.0.0.1:3001; } server { listen 127.0.0.1:8080; " +
              std::string(server_body) + " } }");
}

} // namespace

TEST_CASE("nginx translation: return becomes a route's fixed answer, as nginx answers it")
{
    const auto moved = served("location /old/ { return 301 https://$host$request_uri; }");
    CHECK(moved.complete());
    auto config = turnout::config::parse(moved.toml, "/x/t.toml");
    REQUIRE(config.routes.size() == 1);
    REQUIRE(config.routes[0].answer);
    CHECK(config.routes[0].answer->status == 301);
    CHECK(config.routes[0].answer->location == "https://$host$request_uri");
    CHECK(config.routes[0].path_prefix == "/old/");

    config = turnout::config::parse(served("location = /ping { return 200 \"pong\\n\"; }").toml, "/x/t.toml");
    CHECK(config.routes[0].exact);
    CHECK(config.routes[0].answer->body == "pong\n");

    // return URL is a 302; a bare error status gets turnout's JSON body (approximated).
    config = turnout::config::parse(served("location / { return https://example.com/; }").toml, "/x/t.toml");
    CHECK(config.routes[0].answer->status == 302);
    const auto gone = served("location /gone { return 410; }");
    CHECK(line_of(gone, "return 410")->what == verdict::approximated);
    CHECK(turnout::config::parse(gone.toml, "/x/t.toml").routes[0].answer->status == 410);

    // The return answers first: the location's proxy_pass is never used.
    const auto both = served("location / { return 403; proxy_pass http://u; }");
    CHECK(line_of(both, "proxy_pass")->what == verdict::ignored);
    CHECK(turnout::config::parse(both.toml, "/x/t.toml").routes.size() == 1);

    CHECK(line_of(served("location / { return 444; }"), "return")->what == verdict::untranslated);
    CHECK(line_of(served("location / { return 301 https://$server_name$uri; }"), "return")->why.ends_with(
        "not $server_name"));
    CHECK(line_of(served("location / { return 600; }"), "return")->what == verdict::untranslated);
    CHECK(line_of(served("location / { return abc; }"), "return")->what == verdict::untranslated);
}

TEST_CASE("nginx translation: a server-level return answers every request of that server")
{
    const auto t = served("return 308 https://$host$request_uri; location /mcp { proxy_pass http://u; }");
    CHECK(t.complete());
    CHECK(line_of(t, "location /mcp")->what == verdict::ignored);
    CHECK(line_of(t, "proxy_pass")->what == verdict::ignored);
    const auto config = turnout::config::parse(t.toml, "/x/t.toml");
    REQUIRE(config.routes.size() == 1);
    CHECK(config.routes[0].path_prefix == "/");
    CHECK(config.routes[0].answer->status == 308);
}

TEST_CASE("nginx translation: servers on different addresses get routes limited to their listeners")
{
    const auto t = of("events{} http { upstream a { server 127.0.0.1:1; } upstream b { server 127.0.0.1:2; }"
                      " server { listen 127.0.0.1:8080; location / { proxy_pass http://a; } }"
                      " server { listen 127.0.0.1:8081; location / { proxy_pass http://b; } } }");
    CHECK(t.complete());
    const auto config = turnout::config::parse(t.toml, "/x/t.toml");
    REQUIRE(config.listeners.size() == 2);
    CHECK(config.listeners[0].name == "127.0.0.1_8080");
    CHECK(config.listeners[1].name == "127.0.0.1_8081");
    REQUIRE(config.routes.size() == 2);
    CHECK(config.routes[0].upstream == "a");
    CHECK(config.routes[0].listeners == std::vector<std::size_t>{0});
    CHECK(config.routes[1].upstream == "b");
    CHECK(config.routes[1].listeners == std::vector<std::size_t>{1});
    // Servers that all listen on the same addresses need no listener on their routes.
    const auto same = of("events{} http { upstream a { server 127.0.0.1:1; }"
                         " server { listen 127.0.0.1:8080; listen 127.0.0.1:8081; location / { proxy_pass http://a; } } }");
    CHECK(turnout::config::parse(same.toml, "/x/t.toml").routes[0].listeners.empty());
}

TEST_CASE("nginx translation: backup servers of a split_clients share are approximated")
{
    const auto t = of("events{} http { upstream a { server 127.0.0.1:1; server 127.0.0.1:3 backup; }"
                      " upstream b { server 127.0.0.1:2; }"
                      " split_clients $remote_addr $up { 10% a; * b; }"
                      " server { listen 127.0.0.1:8080; location / { proxy_pass http://$up; } } }");
    CHECK(line_of(t, "server 127.0.0.1:3 backup")->what == verdict::approximated);
    const auto config = turnout::config::parse(t.toml, "/x/t.toml");
    const auto& pools = config.upstreams.at(0).pools;
    CHECK(std::count_if(pools.begin(), pools.end(), [](const auto& p) { return p.backup; }) == 1);
}
