#include "turnout/nginx/reader.hpp"

#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <unistd.h>

using namespace turnout::nginx;
namespace fs = std::filesystem;

namespace {

std::string error_of(std::string_view text)
{
    try {
        parse(text, "t.conf");
    } catch (const parse_error& e) {
        return e.what();
    }
    return "no error";
}

struct temp_dir {
    fs::path path = fs::temp_directory_path() / ("nginx_reader_" + std::to_string(::getpid()));
    temp_dir() { fs::create_directories(path / "conf.d"); }
    ~temp_dir() { fs::remove_all(path); }
    void write(const std::string& name, const std::string& text) const { std::ofstream(path / name) << text; }
};

} // namespace

TEST_CASE("nginx reader: directives, blocks and their lines")
{
    const auto conf = parse("worker_processes 2;\nhttp {\n  server {\n    listen 80;\n  }\n}\n", "t.conf");
    REQUIRE(conf.size() == 2);
    CHECK(conf[0].name == "worker_processes");
    CHECK(conf[0].args == std::vector<std::string>{"2"});
    CHECK(conf[0].line == 1);
    CHECK(conf[1].has_block);
    REQUIRE(conf[1].block.size() == 1);
    const auto& listen = conf[1].block[0].block.at(0);
    CHECK(listen.name == "listen");
    CHECK(listen.line == 4);
    CHECK(listen.file == "t.conf");
}

TEST_CASE("nginx reader: quotes, escapes and variables stay text")
{
    const auto conf = parse(R"(a "x y" 'it\'s' "q\"t" "tab\there" plain\;semi "${host}z" $var;)", "t.conf");
    REQUIRE(conf.size() == 1);
    const auto& args = conf[0].args;
    REQUIRE(args.size() == 7);
    CHECK(args[0] == "x y");
    CHECK(args[1] == "it's");
    CHECK(args[2] == "q\"t");
    CHECK(args[3] == "tab\there");
    CHECK(args[4] == "plain\\;semi"); // nginx keeps a backslash it does not know
    CHECK(args[5] == "${host}z");
    CHECK(args[6] == "$var");
    CHECK(parse("map ${a} $b { default x; }", "t.conf")[0].args[0] == "${a}");
    CHECK(parse("a \"\";", "t.conf")[0].args == std::vector<std::string>{""});
}

TEST_CASE("nginx reader: comments, and # inside a word")
{
    const auto conf = parse("# top\na 1; # after\n# b 2;\nc x#y \"#z\";\n", "t.conf");
    REQUIRE(conf.size() == 2);
    CHECK(conf[1].name == "c");
    CHECK(conf[1].args == std::vector<std::string>{"x#y", "#z"});
}

TEST_CASE("nginx reader: grammar errors name the file and line as nginx does")
{
    CHECK(error_of("a 1;\n}\n") == "t.conf:2: unexpected \"}\"");
    CHECK(error_of("a 1") == "t.conf:1: unexpected end of file, expecting \";\" or \"}\"");
    CHECK(error_of("http {\n a 1;\n") == "t.conf:3: unexpected end of file, expecting \"}\"");
    CHECK(error_of("\n;") == "t.conf:2: unexpected \";\"");
    CHECK(error_of("{ }") == "t.conf:1: unexpected \"{\"");
    CHECK(error_of("a \"x\"y;") == "t.conf:1: unexpected \"y\"");
    CHECK(error_of("\n\"\" 1;") == "t.conf:2: unknown directive \"\""); // found by the fuzzer
    CHECK(error_of("a \"open;\n") == "t.conf:2: unexpected end of file, expecting \";\" or \"}\"");
    CHECK(error_of("a b\\") == "t.conf:1: unexpected end of file, expecting \";\" or \"}\"");
    CHECK(error_of("a { b 1 }") == "t.conf:1: unexpected \"}\"");
    CHECK(error_of(std::string(100, '{')).find("unexpected \"{\"") != std::string::npos);
    std::string deep;
    for (int i = 0; i < 100; ++i)
        deep += "a {";
    CHECK(error_of(deep) == "t.conf:1: blocks nested too deeply (more than 64)");
}

TEST_CASE("nginx reader: include with globs, relative to the main file's folder, sorted")
{
    temp_dir dir;
    dir.write("nginx.conf", "http {\n include conf.d/*.conf;\n include none/*.conf;\n}\n");
    dir.write("conf.d/b.conf", "b 2;\n");
    dir.write("conf.d/a.conf", "a 1;\n\nx {\n}\n");
    dir.write("conf.d/skip.inc", "skip 1;\n");
    const auto conf = read_file((dir.path / "nginx.conf").string());
    REQUIRE(conf.size() == 1);
    const auto& http = conf[0].block;
    REQUIRE(http.size() == 5);
    CHECK(http[0].name == "include");
    CHECK(http[0].included.size() == 2);
    CHECK(http[1].name == "a");
    CHECK(http[1].file == (dir.path / "conf.d/a.conf").string());
    CHECK(http[2].name == "x");
    CHECK(http[2].line == 3);
    CHECK(http[3].name == "b");
    CHECK(http[4].name == "include"); // matches nothing: no error, as in nginx
    CHECK(http[4].included.empty());
}

TEST_CASE("nginx reader: include errors")
{
    temp_dir dir;
    dir.write("missing.conf", "events {}\ninclude nothere.conf;\n");
    dir.write("loop.conf", "include loop.conf;\n");
    dir.write("bad.conf", "include conf.d/broken.conf;\n");
    dir.write("conf.d/broken.conf", "a 1;\nb {\n");
    const auto error = [&](const char* name) {
        try {
            read_file((dir.path / name).string());
        } catch (const parse_error& e) {
            return std::string(e.what());
        }
        return std::string("no error");
    };
    CHECK(error("missing.conf").starts_with((dir.path / "missing.conf").string() + ":2: cannot read \""));
    CHECK(error("loop.conf").find("includes nested too deeply") != std::string::npos);
    CHECK(error("bad.conf") == (dir.path / "conf.d/broken.conf").string() + ":3: unexpected end of file, expecting \"}\"");
    CHECK(error("absent.conf") == (dir.path / "absent.conf").string() + ": No such file or directory");
}
