#include "turnout/runtime/state_file.hpp"

#include <doctest/doctest.h>

#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>
#include <stdexcept>
#include <string>
#include <string_view>

#include <sys/stat.h>

using namespace turnout::runtime;
namespace fs = std::filesystem;

namespace {

// A state with something in every field: a rollback point, a drain with a deadline, backends
// set at run time and a pool created at run time; and an untouched second upstream.
runtime_state sample_state()
{
    runtime_state s;
    upstream_runtime mcp;
    mcp.name = "mcp";
    mcp.previous_weights = weight_list{{"blue", 100}, {"green", 0}};
    mcp.pools.push_back({"blue", 95, true, 1'700'000'000'123, std::nullopt, false});
    mcp.pools.push_back(
        {"green", 5, false, std::nullopt, std::vector<std::string>{"127.0.0.1:3021", "[::1]:3022"}, false});
    mcp.pools.push_back({"canary", 0, false, std::nullopt, std::vector<std::string>{}, true});
    s.upstreams.push_back(mcp);

    upstream_runtime tools;
    tools.name = "tools";
    tools.pools.push_back({"main", 1'000'000, false, std::nullopt, std::nullopt, false});
    s.upstreams.push_back(tools);
    return s;
}

// The document every validation case edits: one upstream, two pools.
constexpr std::string_view valid_document =
    R"({"format":"turnout-state","version":1,"upstreams":[{"name":"mcp","previous_weights":[["blue",100],["green",0]],)"
    R"("pools":[{"name":"blue","weight":95,"draining":false,"drain_deadline_ms":null,"backends":null,"created_at_runtime":false},)"
    R"({"name":"green","weight":5,"draining":true,"drain_deadline_ms":1700000000000,"backends":["127.0.0.1:3021"],"created_at_runtime":true}]}]})";

// valid_document with the first `from` replaced by `to`.
std::string edited(std::string_view from, std::string_view to)
{
    std::string text{valid_document};
    const auto at = text.find(from);
    REQUIRE_MESSAGE(at != std::string::npos, "not in the document: " << from);
    text.replace(at, from.size(), to);
    return text;
}

std::string error_of(std::string_view text)
{
    try {
        (void)from_json(text);
    } catch (const std::runtime_error& e) {
        return e.what();
    }
    FAIL("expected an error for: " << text);
    return {};
}

// A fresh folder under /tmp, removed with everything in it at the end of the test.
class temp_dir {
public:
    temp_dir()
    {
        std::string pattern = (fs::temp_directory_path() / "turnout-state-test-XXXXXX").string();
        REQUIRE(::mkdtemp(pattern.data()) != nullptr);
        path_ = pattern;
    }
    temp_dir(const temp_dir&) = delete;
    temp_dir& operator=(const temp_dir&) = delete;
    ~temp_dir()
    {
        std::error_code ec;
        fs::remove_all(path_, ec);
    }

    std::string file(std::string_view name) const { return (path_ / name).string(); }

private:
    fs::path path_;
};

void write_bytes(const std::string& path, std::string_view bytes)
{
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    REQUIRE(out.good());
}

std::string read_bytes(const std::string& path)
{
    std::ifstream in(path, std::ios::binary);
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

// load_state must throw a runtime_error that starts with the path, and nothing else.
std::string load_error_of(const std::string& path)
{
    try {
        (void)load_state(path);
    } catch (const std::runtime_error& e) {
        const std::string what = e.what();
        CHECK_MESSAGE(what.starts_with(path + ": "), what);
        return what;
    }
    FAIL("expected load_state to fail for " << path);
    return {};
}

std::string save_error_of(const std::string& path)
{
    try {
        save_state(path, runtime_state{});
    } catch (const std::runtime_error& e) {
        return e.what();
    }
    FAIL("expected save_state to fail for " << path);
    return {};
}

} // namespace

// ---------------------------------------------------------------------------------------------
// JSON

TEST_CASE("state file: to_json writes the documented format")
{
    runtime_state s;
    upstream_runtime mcp;
    mcp.name = "mcp";
    mcp.pools.push_back({"blue", 95, false, std::nullopt, std::nullopt, false});
    mcp.pools.push_back({"green", 5, true, 42, std::vector<std::string>{"127.0.0.1:3001"}, true});
    mcp.previous_weights = weight_list{{"blue", 100}, {"green", 0}};
    s.upstreams.push_back(mcp);

    CHECK(
        to_json(s) ==
        R"({"format":"turnout-state","version":1,"upstreams":[{"name":"mcp","previous_weights":[["blue",100],["green",0]],)"
        R"("pools":[{"name":"blue","weight":95,"draining":false,"drain_deadline_ms":null,"backends":null,"created_at_runtime":false},)"
        R"({"name":"green","weight":5,"draining":true,"drain_deadline_ms":42,"backends":["127.0.0.1:3001"],"created_at_runtime":true}]}]})"
        "\n");
    CHECK(to_json(runtime_state{}) == "{\"format\":\"turnout-state\",\"version\":1,\"upstreams\":[]}\n");
}

TEST_CASE("state file: from_json reads back what to_json wrote")
{
    const auto s = sample_state();
    CHECK(from_json(to_json(s)) == s);
    CHECK(from_json(to_json(runtime_state{})) == runtime_state{});

    // The extremes of every number survive too.
    auto extremes = sample_state();
    extremes.upstreams[0].pools[0].weight = 0;
    extremes.upstreams[0].pools[0].drain_deadline_ms = INT64_MAX;
    extremes.upstreams[0].pools[1].drain_deadline_ms = 0;
    CHECK(from_json(to_json(extremes)) == extremes);
}

TEST_CASE("state file: drained backends are written when there are some, read back, and optional")
{
    runtime_state s;
    upstream_runtime mcp;
    mcp.name = "mcp";
    pool_runtime blue{"blue", 100, false, std::nullopt, std::nullopt, false, {}};
    blue.drained_backends = {{"127.0.0.1:3001", 1'700'000'000'000}, {"[::1]:3002", 0}};
    mcp.pools.push_back(blue);
    s.upstreams.push_back(mcp);

    const auto text = to_json(s);
    CHECK(text.find(R"("drained_backends":[{"address":"127.0.0.1:3001","deadline_ms":1700000000000},)"
                    R"({"address":"[::1]:3002","deadline_ms":0}])") != std::string::npos);
    CHECK(from_json(text) == s);

    // None: the key is left out, so the file reads as it did before backends drained one by one.
    s.upstreams[0].pools[0].drained_backends.clear();
    CHECK(to_json(s).find("drained_backends") == std::string::npos);
    CHECK(from_json(valid_document).upstreams[0].pools[0].drained_backends.empty());
}

TEST_CASE("state file: a bad drained backend is named with what was expected")
{
    const auto with = [](std::string_view drains) {
        return edited(R"("created_at_runtime":false})",
                      R"("created_at_runtime":false,"drained_backends":)" + std::string(drains) + "}");
    };
    const std::string at = "upstreams[0].pools[0].drained_backends";
    CHECK(error_of(with("{}")) == at + ": expected an array, got an object");
    CHECK(error_of(with(R"([{"address":"nowhere","deadline_ms":1}])")) ==
          at + R"([0].address: expected a "host:port" string such as "127.0.0.1:3001")");
    CHECK(error_of(with(R"([{"address":"127.0.0.1:1","deadline_ms":null}])")) ==
          at + "[0].deadline_ms: expected a Unix time in milliseconds (an integer >= 0)");
    CHECK(error_of(with(R"([{"address":"127.0.0.1:1"}])")) == at + R"([0]: missing key "deadline_ms")");
    CHECK(error_of(with(R"([{"address":"127.0.0.1:1","deadline_ms":1,"x":2}])")) == at + R"([0]: unknown key "x")");
    CHECK(error_of(with(R"([{"address":"127.0.0.1:1","deadline_ms":1},{"address":"127.0.0.1:1","deadline_ms":2}])")) ==
          at + R"([1].address: duplicate backend "127.0.0.1:1")");
}

TEST_CASE("state file: from_json accepts the documented example and any JSON layout")
{
    const auto s = from_json(valid_document);
    REQUIRE(s.upstreams.size() == 1);
    const auto& mcp = s.upstreams[0];
    CHECK(mcp.previous_weights == weight_list{{"blue", 100}, {"green", 0}});
    REQUIRE(mcp.pools.size() == 2);
    CHECK(mcp.pools[0] == pool_runtime{"blue", 95, false, std::nullopt, std::nullopt, false});
    CHECK(mcp.pools[1] == pool_runtime{"green", 5, true, 1'700'000'000'000,
                                       std::vector<std::string>{"127.0.0.1:3021"}, true});

    // Hand-edited: other key order, whitespace, newlines.
    const auto pretty = R"(
  { "upstreams" : [ ] ,
    "version" : 1 ,
    "format" : "turnout-state" }
)";
    CHECK(from_json(pretty) == runtime_state{});
}

TEST_CASE("state file: from_json names the bad field and what was expected")
{
    struct bad_case {
        std::string text;
        std::string message;
    };
    const std::string pools =
        R"({"format":"turnout-state","version":1,"upstreams":[{"name":"mcp","previous_weights":null,"pools":)";
    const std::string blue_pool =
        R"({"name":"blue","weight":1,"draining":false,"drain_deadline_ms":null,"backends":null,"created_at_runtime":false})";
    const std::string name_rule = ": must be 1 to 64 letters, digits, '.', '_' or '-'";
    const std::string weight_rule = "expected an integer 0..1000000";
    const std::string deadline_rule = "expected null or a Unix time in milliseconds (an integer >= 0)";
    const bad_case cases[] = {
        // The document
        {"[]", "expected a JSON object, got an array: not a turnout state file"},
        {"42", "expected a JSON object, got an integer: not a turnout state file"},
        {"\"turnout-state\"", "expected a JSON object, got a string: not a turnout state file"},
        {"{}", "not a turnout state file (no \"format\" key)"},
        {edited(R"("format":"turnout-state")", R"("format":"haproxy")"),
         "format: expected \"turnout-state\", got \"haproxy\": not a turnout state file"},
        {edited(R"("format":"turnout-state")", R"("format":1)"),
         "format: expected \"turnout-state\", got an integer: not a turnout state file"},
        {edited(R"("version":1,)", ""), "missing key \"version\""},
        {edited(R"("version":1)", R"("version":2)"),
         "version: unsupported version 2 (this turnout reads version 1)"},
        {edited(R"("version":1)", R"("version":0)"),
         "version: unsupported version 0 (this turnout reads version 1)"},
        {edited(R"("version":1)", R"("version":-1)"),
         "version: unsupported version -1 (this turnout reads version 1)"},
        {edited(R"("version":1)", R"("version":18446744073709551615)"),
         "version: unsupported version 18446744073709551615 (this turnout reads version 1)"},
        {edited(R"("version":1)", R"("version":"1")"), "version: expected an integer, got a string"},
        {edited(R"("version":1)", R"("version":1.0)"), "version: expected an integer, got a number"},
        {edited(R"("version":1)", R"("version":null)"), "version: expected an integer, got null"},
        {edited(R"("upstreams":[)", R"("extra":true,"upstreams":[)"), "unknown key \"extra\""},
        {R"({"format":"turnout-state","version":1})", "missing key \"upstreams\""},
        {R"({"format":"turnout-state","version":1,"upstreams":{}})",
         "upstreams: expected an array, got an object"},
        {R"({"format":"turnout-state","version":1,"upstreams":null})",
         "upstreams: expected an array, got null"},

        // Upstreams
        {R"({"format":"turnout-state","version":1,"upstreams":[1]})",
         "upstreams[0]: expected an object, got an integer"},
        {R"({"format":"turnout-state","version":1,"upstreams":[{"previous_weights":null,"pools":[]}]})",
         "upstreams[0]: missing key \"name\""},
        {R"({"format":"turnout-state","version":1,"upstreams":[{"name":"mcp","pools":[]}]})",
         "upstreams[0]: missing key \"previous_weights\""},
        {R"({"format":"turnout-state","version":1,"upstreams":[{"name":"mcp","previous_weights":null}]})",
         "upstreams[0]: missing key \"pools\""},
        {edited(R"("name":"mcp")", R"("name":"mcp","weights":{})"), "upstreams[0]: unknown key \"weights\""},
        {edited(R"("name":"mcp")", R"("name":"m cp")"),
         "upstreams[0].name: invalid upstream name \"m cp\"" + name_rule},
        {edited(R"("name":"mcp")", R"("name":"")"),
         "upstreams[0].name: invalid upstream name \"\"" + name_rule},
        {edited(R"("name":"mcp")", "\"name\":\"" + std::string(65, 'a') + "\""),
         "upstreams[0].name: invalid upstream name \"" + std::string(65, 'a') + "\"" + name_rule},
        {edited(R"("name":"mcp")", R"("name":7)"), "upstreams[0].name: expected a string, got an integer"},
        {R"({"format":"turnout-state","version":1,"upstreams":[)"
         R"({"name":"mcp","previous_weights":null,"pools":[]},{"name":"mcp","previous_weights":null,"pools":[]}]})",
         "upstreams[1].name: duplicate upstream \"mcp\""},
        {pools + "{}}]}", "upstreams[0].pools: expected an array, got an object"},

        // Rollback weights
        {edited(R"("previous_weights":[["blue",100],["green",0]])", R"("previous_weights":{})"),
         "upstreams[0].previous_weights: expected null or an array of [pool, weight] pairs, got an object"},
        {edited(R"(["blue",100])", R"(["blue",100,1])"),
         "upstreams[0].previous_weights[0]: expected a [pool, weight] pair"},
        {edited(R"(["blue",100])", R"(["blue"])"),
         "upstreams[0].previous_weights[0]: expected a [pool, weight] pair"},
        {edited(R"(["blue",100])", R"({"blue":100})"),
         "upstreams[0].previous_weights[0]: expected a [pool, weight] pair"},
        {edited(R"(["blue",100])", R"([7,100])"),
         "upstreams[0].previous_weights[0][0]: expected a string, got an integer"},
        {edited(R"(["blue",100])", R"(["b/ue",100])"),
         "upstreams[0].previous_weights[0][0]: invalid pool name \"b/ue\"" + name_rule},
        {edited(R"(["green",0])", R"(["green",-1])"), "upstreams[0].previous_weights[1][1]: " + weight_rule},
        {edited(R"(["green",0])", R"(["green",1000001])"),
         "upstreams[0].previous_weights[1][1]: " + weight_rule},
        {edited(R"(["green",0])", R"(["blue",0])"),
         "upstreams[0].previous_weights[1][0]: duplicate pool \"blue\""},

        // Pools
        {pools + "[1]}]}", "upstreams[0].pools[0]: expected an object, got an integer"},
        {edited(R"("created_at_runtime":false})", R"("created_at_runtime":false,"version":"1.4.2"})"),
         "upstreams[0].pools[0]: unknown key \"version\""},
        {pools +
             R"([{"name":"blue","weight":1,"draining":false,"drain_deadline_ms":null,"backends":null}]}]})",
         "upstreams[0].pools[0]: missing key \"created_at_runtime\""},
        {pools +
             R"([{"name":"blue","draining":false,"drain_deadline_ms":null,"backends":null,"created_at_runtime":false}]}]})",
         "upstreams[0].pools[0]: missing key \"weight\""},
        {pools + "[" + blue_pool + "," + blue_pool + "]}]}",
         "upstreams[0].pools[1].name: duplicate pool \"blue\" in upstream \"mcp\""},
        {edited(R"("name":"blue")", R"("name":null)"),
         "upstreams[0].pools[0].name: expected a string, got null"},
        {edited(R"("name":"green")", R"("name":"gr:een")"),
         "upstreams[0].pools[1].name: invalid pool name \"gr:een\"" + name_rule},
        {edited(R"("weight":5)", R"("weight":1000001)"), "upstreams[0].pools[1].weight: " + weight_rule},
        {edited(R"("weight":5)", R"("weight":-1)"), "upstreams[0].pools[1].weight: " + weight_rule},
        {edited(R"("weight":5)", R"("weight":5.5)"), "upstreams[0].pools[1].weight: " + weight_rule},
        {edited(R"("weight":5)", R"("weight":5.0)"), "upstreams[0].pools[1].weight: " + weight_rule},
        {edited(R"("weight":5)", R"("weight":5e0)"), "upstreams[0].pools[1].weight: " + weight_rule},
        {edited(R"("weight":5)", R"("weight":"5")"), "upstreams[0].pools[1].weight: " + weight_rule},
        {edited(R"("weight":5)", R"("weight":true)"), "upstreams[0].pools[1].weight: " + weight_rule},
        {edited(R"("weight":5)", R"("weight":null)"), "upstreams[0].pools[1].weight: " + weight_rule},
        {edited(R"("weight":5)", R"("weight":18446744073709551615)"),
         "upstreams[0].pools[1].weight: " + weight_rule},
        {edited(R"("weight":5)", R"("weight":4294967296)"), "upstreams[0].pools[1].weight: " + weight_rule},
        {edited(R"("draining":false)", R"("draining":"no")"),
         "upstreams[0].pools[0].draining: expected true or false, got a string"},
        {edited(R"("draining":false)", R"("draining":0)"),
         "upstreams[0].pools[0].draining: expected true or false, got an integer"},
        {edited(R"("drain_deadline_ms":1700000000000)", R"("drain_deadline_ms":-5)"),
         "upstreams[0].pools[1].drain_deadline_ms: " + deadline_rule},
        {edited(R"("drain_deadline_ms":1700000000000)", R"("drain_deadline_ms":1.5e12)"),
         "upstreams[0].pools[1].drain_deadline_ms: " + deadline_rule},
        {edited(R"("drain_deadline_ms":1700000000000)", R"("drain_deadline_ms":"soon")"),
         "upstreams[0].pools[1].drain_deadline_ms: " + deadline_rule},
        {edited(R"("drain_deadline_ms":1700000000000)", R"("drain_deadline_ms":9223372036854775808)"),
         "upstreams[0].pools[1].drain_deadline_ms: " + deadline_rule},
        {edited(R"("backends":["127.0.0.1:3021"])", R"("backends":"127.0.0.1:3021")"),
         "upstreams[0].pools[1].backends: expected null or an array of \"host:port\" strings, got a string"},
        {edited(R"("backends":["127.0.0.1:3021"])", R"("backends":[3021])"),
         "upstreams[0].pools[1].backends[0]: expected a \"host:port\" string, got an integer"},
        {edited(R"("backends":["127.0.0.1:3021"])", R"("backends":["127.0.0.1:3021","nope"])"),
         "upstreams[0].pools[1].backends[1]: expected host:port such as \"127.0.0.1:3001\", got \"nope\""},
        {edited(R"("backends":["127.0.0.1:3021"])", R"("backends":["127.0.0.1:0"])"),
         "upstreams[0].pools[1].backends[0]: expected host:port such as \"127.0.0.1:3001\", got "
         "\"127.0.0.1:0\""},
        {edited(R"("backends":["127.0.0.1:3021"])", R"("backends":["127.0.0.1:65536"])"),
         "upstreams[0].pools[1].backends[0]: expected host:port such as \"127.0.0.1:3001\", got "
         "\"127.0.0.1:65536\""},
        {edited(R"("backends":["127.0.0.1:3021"])", R"("backends":["::1:3021"])"),
         "upstreams[0].pools[1].backends[0]: expected host:port such as \"127.0.0.1:3001\", got "
         "\"::1:3021\""},
        {edited(R"("backends":["127.0.0.1:3021"])", R"("backends":["LocalHost:3021","localhost:03021"])"),
         "upstreams[0].pools[1].backends[1]: duplicate backend \"localhost:03021\""},
        {edited(R"("created_at_runtime":true)", R"("created_at_runtime":null)"),
         "upstreams[0].pools[1].created_at_runtime: expected true or false, got null"},
    };
    for (const auto& c : cases) {
        CAPTURE(c.text);
        CHECK(error_of(c.text) == c.message);
    }
}

TEST_CASE("state file: from_json refuses broken JSON and says where")
{
    CHECK(error_of("") == "empty: no JSON document (a write that never completed?)");
    CHECK(error_of(" \n\t") == "empty: no JSON document (a write that never completed?)");
    CHECK(error_of("{\"format\":") ==
          "truncated JSON: the document ends before it is complete (a torn or partial write?)");
    CHECK(error_of("{\n  \"format\" \"turnout-state\"}") ==
          "invalid JSON at line 2, column 12: syntax error");
    CHECK(error_of(std::string{valid_document} + "\n{}").starts_with("invalid JSON at line 2, column 1: "));
    CHECK(error_of(std::string{valid_document} + ",").starts_with("invalid JSON at line 1, column "));
    CHECK(error_of("{\"format\":\"turnout-state\",} ").starts_with("invalid JSON at line 1, column 27: "));
    CHECK(error_of("{\"format\":\"turnout-state\" /* comment */}")
              .starts_with("invalid JSON at line 1, column "));
    CHECK(error_of("\xEF\xBB\xBF{}").starts_with("invalid JSON at line 1, column 1: ")); // a BOM
    CHECK(error_of("{\"format\":\"turnout-\xff\"}")
              .starts_with("invalid JSON at line 1, column "));                            // not UTF-8
    CHECK(error_of(std::string(100, '[')).starts_with("invalid JSON at line 1, column ")); // too deep
}

TEST_CASE("state file: from_json refuses duplicate keys instead of keeping one of them")
{
    CHECK(error_of(edited(R"("weight":95,)", R"("weight":95,"weight":0,)")) ==
          "invalid JSON at line 1, column 155: duplicate key \"weight\"");
    CHECK(error_of(edited(R"("version":1,)", R"("version":1,"version":1,)"))
              .ends_with(": duplicate key \"version\""));
    // The same key in two different objects is fine.
    CHECK_NOTHROW((void)from_json(valid_document));
}

TEST_CASE("state file: bytes from a corrupt file are escaped in messages")
{
    const auto message = error_of(edited(R"("name":"mcp")", R"("name":"a\u0000b\u001b[31m")"));
    CHECK(
        message ==
        R"(upstreams[0].name: invalid upstream name "a\u0000b\u001b[31m": must be 1 to 64 letters, digits, '.', '_' or '-')");
    CHECK(error_of(edited(R"("upstreams":[)", R"("\n":1,"upstreams":[)")) == R"(unknown key "\n")");
}

TEST_CASE("state file: from_json never crashes on mutated or random input")
{
    const std::string valid{valid_document};
    std::mt19937 random{20240601}; // fixed: a failure can be replayed
    const std::string alphabet = "{}[]\":,0123456789-+.eE truenfalsl\\\x01\xff";
    for (int i = 0; i < 3000; ++i) {
        std::string text = valid;
        const int edits = 1 + static_cast<int>(random() % 4);
        for (int e = 0; e < edits; ++e) {
            const auto at = random() % text.size();
            switch (random() % 3) {
            case 0:
                text[at] = alphabet[random() % alphabet.size()];
                break;
            case 1:
                text.erase(at, 1 + random() % 8);
                break;
            default:
                text.insert(at, 1, alphabet[random() % alphabet.size()]);
                break;
            }
            if (text.empty())
                text = "{";
        }
        try {
            const auto s = from_json(text);
            CHECK(from_json(to_json(s)) == s); // whatever is accepted is a state that round-trips
        } catch (const std::runtime_error& e) {
            CHECK(std::string_view{e.what()}.size() > 0);
        }
    }
    for (int i = 0; i < 1000; ++i) {
        std::string bytes(random() % 64, '\0');
        for (auto& b : bytes)
            b = static_cast<char>(random());
        CHECK_THROWS_AS((void)from_json(bytes), std::runtime_error);
    }
}

// ---------------------------------------------------------------------------------------------
// Files

TEST_CASE("state file: save_state then load_state gives back the same state")
{
    temp_dir dir;
    const auto path = dir.file("turnout.state.json");
    save_state(path, sample_state());
    const auto loaded = load_state(path);
    REQUIRE(loaded);
    CHECK(*loaded == sample_state());
    CHECK(read_bytes(path) == to_json(sample_state()));

    // Saving again replaces the state.
    save_state(path, runtime_state{});
    CHECK(load_state(path) == runtime_state{});
}

TEST_CASE("state file: save_state leaves no temporary file and creates the file 0600")
{
    temp_dir dir;
    const auto path = dir.file("state.json");
    save_state(path, sample_state());
    CHECK_FALSE(fs::exists(path + ".tmp"));
    struct stat st {};
    REQUIRE(::stat(path.c_str(), &st) == 0);
    CHECK((st.st_mode & 0777) == 0600);

    // A temporary file left by a crash is replaced, and the mode is still 0600.
    write_bytes(path + ".tmp", "junk from an interrupted save");
    fs::permissions(path + ".tmp", fs::perms::all);
    save_state(path, runtime_state{});
    CHECK_FALSE(fs::exists(path + ".tmp"));
    REQUIRE(::stat(path.c_str(), &st) == 0);
    CHECK((st.st_mode & 0777) == 0600);
    CHECK(load_state(path) == runtime_state{});
}

TEST_CASE("state file: a failing save_state throws with the path and leaves the previous file intact")
{
    temp_dir dir;
    SUBCASE("the folder does not exist (save_state creates none)")
    {
        const auto path = dir.file("missing/state.json");
        const auto what = save_error_of(path);
        CHECK_MESSAGE(what.starts_with(path + ": "), what);
        CHECK_MESSAGE(what.find("No such file or directory") != std::string::npos, what);
        CHECK_FALSE(fs::exists(dir.file("missing")));
    }
    SUBCASE("the temporary file cannot be written")
    {
        const auto path = dir.file("state.json");
        save_state(path, sample_state());
        const auto before = read_bytes(path);
        fs::create_directory(path + ".tmp"); // in the way, and not removable by unlink()
        const auto what = save_error_of(path);
        CHECK_MESSAGE(what.starts_with(path + ": "), what);
        CHECK(read_bytes(path) == before);
        CHECK(load_state(path) == sample_state());
    }
    SUBCASE("the path is a folder")
    {
        const auto path = dir.file("folder");
        fs::create_directory(path);
        CHECK(save_error_of(path).starts_with(path + ": "));
        CHECK(fs::is_directory(path));
        CHECK_FALSE(fs::exists(path + ".tmp"));
    }
    SUBCASE("no path at all")
    {
        CHECK_THROWS_AS(save_state("", sample_state()), std::runtime_error);
    }
}

TEST_CASE("state file: load_state of a missing file is nullopt")
{
    temp_dir dir;
    CHECK_FALSE(load_state(dir.file("never-written.json")));
    CHECK_FALSE(load_state(dir.file("no-folder/never-written.json")));
}

TEST_CASE("state file: load_state of an empty file is an error, not an empty state")
{
    temp_dir dir;
    const auto path = dir.file("state.json");
    write_bytes(path, "");
    CHECK(load_error_of(path) == path + ": empty: no JSON document (a write that never completed?)");
}

TEST_CASE("state file: load_state of a torn file is a clear error at every length, never a crash")
{
    temp_dir dir;
    const auto path = dir.file("state.json");
    const auto full = to_json(sample_state());
    // Every proper prefix but the one that only lacks the final newline is a torn document.
    for (std::size_t length = 0; length + 1 < full.size(); ++length) {
        CAPTURE(length);
        write_bytes(path, full.substr(0, length));
        const auto message = load_error_of(path);
        const bool explained = message.find("truncated JSON") != std::string::npos ||
                               message.find("empty: no JSON document") != std::string::npos;
        CHECK_MESSAGE(explained, message);
    }
    write_bytes(path, full.substr(0, full.size() - 1));
    CHECK(load_state(path) == sample_state());
}

TEST_CASE("state file: load_state of garbage, another JSON file or a folder is an error")
{
    temp_dir dir;
    const auto path = dir.file("state.json");

    write_bytes(path, std::string("\x00\x01\x02\xff\xfe garbage \x00", 15));
    CHECK(load_error_of(path).starts_with(path + ": invalid JSON at line 1, column 1: "));

    std::mt19937 random{7};
    for (int i = 0; i < 200; ++i) {
        std::string bytes(1 + random() % 512, '\0');
        for (auto& b : bytes)
            b = static_cast<char>(random());
        write_bytes(path, bytes);
        (void)load_error_of(path);
    }

    write_bytes(path, R"({"sessions":[]})");
    CHECK(load_error_of(path) == path + ": not a turnout state file (no \"format\" key)");

    write_bytes(path, edited(R"("weight":5)", R"("weight":1000001)"));
    CHECK(load_error_of(path) == path + ": upstreams[0].pools[1].weight: expected an integer 0..1000000");

    const auto folder = dir.file("folder");
    fs::create_directory(folder);
    CHECK(load_error_of(folder) == folder + ": not a regular file");
}

TEST_CASE("state file: load_state refuses a file far larger than any state")
{
    temp_dir dir;
    const auto path = dir.file("state.json");
    {
        std::ofstream out(path, std::ios::binary);
        out.seekp(64 * 1024 * 1024);
        out.put(' ');
    }
    CHECK(load_error_of(path).find("too large for a state file") != std::string::npos);
}
