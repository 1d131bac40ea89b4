#include "turnout/mcp/json_scanner.hpp"
#include "turnout/mcp/jsonrpc_inspector.hpp"

#include <doctest/doctest.h>

#include <string>
#include <vector>

using namespace turnout::mcp;

namespace {

/// Feeds text in pieces of size step (the last may be shorter).
template <class Inspector>
inspection feed_in_pieces(Inspector& in, std::string_view text, std::size_t step)
{
    auto state = in.state();
    for (std::size_t at = 0; at < text.size() && !in.settled(); at += step)
        state = in.feed(text.substr(at, step));
    return state;
}

std::vector<json_event> events_of(std::string_view text)
{
    json_scanner s;
    s.feed(text);
    std::vector<json_event> out;
    for (auto e = s.next(); e != json_event::need_more && e != json_event::done && e != json_event::error;
         e = s.next())
        out.push_back(e);
    return out;
}

} // namespace

TEST_CASE("json_scanner: events of a nested document, and broken ones fail")
{
    using E = json_event;
    CHECK(events_of(R"({"a":[1,true,"x"],"b":{}})") ==
          std::vector<E>{E::begin_object, E::key, E::begin_array, E::literal, E::literal, E::string, E::end_array,
                         E::key, E::begin_object, E::end_object, E::end_object});
    for (std::string_view broken : {"{\"a\" 1}", "{\"a\":1,}x", "[1 2]", "{1:2}", "\"a\nb\"", "{\"a\":\"\\q\"}", "}"}) {
        json_scanner s;
        s.feed(broken);
        auto e = s.next();
        while (e != json_event::error && e != json_event::need_more && e != json_event::done)
            e = s.next();
        CHECK_MESSAGE(e == json_event::error, broken);
    }
}

TEST_CASE("json_scanner: escapes decode, surrogate pairs join, long text is cut at max_text")
{
    json_scanner s(4);
    s.feed(R"(["a\"\\\/\n\u00e9\ud83d\ude00", "abcdefgh"])");
    REQUIRE(s.next() == json_event::begin_array);
    REQUIRE(s.next() == json_event::string);
    CHECK(s.text() == "a\"\\/"); // cut at 4 bytes
    CHECK(s.truncated());
    REQUIRE(s.next() == json_event::string);
    CHECK(s.text() == "abcd");

    json_scanner wide;
    wide.feed(R"("\u00e9\ud83d\ude00" )");
    REQUIRE(wide.next() == json_event::string);
    CHECK(wide.text() == "\xC3\xA9\xF0\x9F\x98\x80");
    CHECK(wide.next() == json_event::done);
}

TEST_CASE("json_scanner: containers nested past max_depth are refused, not followed")
{
    std::string deep(json_scanner::max_depth + 1, '[');
    json_scanner s;
    s.feed(deep);
    json_event e = json_event::begin_array;
    for (std::size_t i = 0; i <= json_scanner::max_depth && e == json_event::begin_array; ++i)
        e = s.next();
    CHECK(e == json_event::error);
}

TEST_CASE("request_inspector: method, tool name and id, whatever the pieces")
{
    const std::string body =
        R"({"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"search_docs","arguments":{"name":"not this","q":"x"}}})";
    for (std::size_t step = 1; step <= body.size(); ++step) {
        request_inspector in;
        CHECK(feed_in_pieces(in, body, step) == inspection::complete);
        CHECK(in.facts().method == "tools/call");
        CHECK(in.facts().name == "search_docs");
        CHECK(in.facts().subject() == "search_docs");
        CHECK(in.facts().id == "7");
        CHECK_FALSE(in.facts().is_notification());
    }
}

TEST_CASE("request_inspector: members in any order, string ids quoted, resources by uri")
{
    request_inspector in;
    in.feed(R"({"params":{"uri":"file:///a\"b"},"method":"resources/read","id":"x\"y","jsonrpc":"2.0"})");
    REQUIRE(in.state() == inspection::complete);
    CHECK(in.facts().method == "resources/read");
    CHECK(in.facts().subject() == "file:///a\"b");
    CHECK(in.facts().id == R"("x\"y")");
}

TEST_CASE("request_inspector: notifications, batches, non-JSON and the byte limit")
{
    request_inspector note;
    note.feed(R"({"jsonrpc":"2.0","method":"notifications/initialized"})");
    CHECK(note.facts().is_notification());

    request_inspector null_id;
    null_id.feed(R"({"jsonrpc":"2.0","id":null,"method":"ping"})");
    CHECK(null_id.facts().id.empty());

    request_inspector batch;
    CHECK(batch.feed(R"([{"jsonrpc":"2.0","id":1,"method":"ping"}])") == inspection::complete);
    CHECK(batch.facts().batch);
    CHECK(batch.facts().method.empty());

    request_inspector text;
    CHECK(text.feed("hello") == inspection::not_jsonrpc);
    request_inspector scalar;
    CHECK(scalar.feed("12 ") == inspection::not_jsonrpc);

    const std::string big = R"({"jsonrpc":"2.0","params":{"pad":")" + std::string(200, 'x') + R"("},"method":"tools/call"})";
    request_inspector limited(64);
    CHECK(feed_in_pieces(limited, big, 50) == inspection::over_limit);
    CHECK(limited.facts().method.empty());
    request_inspector roomy(1024);
    CHECK(feed_in_pieces(roomy, big, 50) == inspection::complete);
    CHECK(roomy.facts().method == "tools/call");
}

TEST_CASE("request_inspector: a name deeper than params.name is not the tool")
{
    request_inspector in;
    in.feed(R"({"method":"tools/call","params":{"arguments":{"name":"inner"}},"meta":{"name":"outer"}})");
    CHECK(in.facts().name.empty());
}

TEST_CASE("response_inspector: result, error, and a tool's isError")
{
    const auto outcome_of = [](std::string_view body, bool tool_call, std::size_t step) {
        response_inspector in(65536, tool_call);
        feed_in_pieces(in, body, step);
        return in.outcome();
    };
    const std::string ok = R"({"jsonrpc":"2.0","id":1,"result":{"content":[{"type":"text","text":"hi"}]}})";
    const std::string err = R"({"jsonrpc":"2.0","id":1,"error":{"code":-32601,"message":"nope"}})";
    const std::string tool_err =
        R"({"result":{"content":[{"type":"text","text":"failed","isError":true}],"isError":true},"jsonrpc":"2.0","id":1})";
    const std::string tool_fine = R"({"result":{"content":[{"isError":true}],"isError":false},"id":1})";
    for (std::size_t step : {std::size_t{1}, std::size_t{3}, std::size_t{1000}}) {
        CHECK(outcome_of(ok, true, step) == rpc_outcome::result);
        CHECK(outcome_of(err, true, step) == rpc_outcome::error);
        CHECK(outcome_of(err, false, step) == rpc_outcome::error);
        CHECK(outcome_of(tool_err, true, step) == rpc_outcome::tool_error);
        CHECK(outcome_of(tool_err, false, step) == rpc_outcome::result); // not a tools/call: not read
        CHECK(outcome_of(tool_fine, true, step) == rpc_outcome::result);
    }
    CHECK(outcome_of(R"({"jsonrpc":"2.0","method":"notifications/progress","params":{}})", true, 5) ==
          rpc_outcome::none);
}

TEST_CASE("response_inspector: a result settles at once unless a tool error is looked for")
{
    response_inspector quick(65536, false);
    CHECK(quick.feed(R"({"jsonrpc":"2.0","id":1,"result":{)") == inspection::complete);
    response_inspector tool(65536, true);
    CHECK(tool.feed(R"({"jsonrpc":"2.0","id":1,"result":{)") == inspection::pending);
}

TEST_CASE("response_inspector: messages of an event stream keep the worst outcome; batches too")
{
    response_inspector in(65536, true);
    in.feed(R"({"jsonrpc":"2.0","method":"notifications/message","params":{"level":"info"}})");
    in.next_message();
    in.feed(R"({"jsonrpc":"2.0","id":3,"result":{"isError":true,"content":[]}})");
    in.next_message();
    in.feed(R"({"jsonrpc":"2.0","id":4,"result":{}})");
    CHECK(in.outcome() == rpc_outcome::tool_error);

    response_inspector batch;
    batch.feed(R"([{"jsonrpc":"2.0","id":1,"result":{}},{"jsonrpc":"2.0","id":2,"error":{"code":1}}])");
    CHECK(batch.outcome() == rpc_outcome::error);
    CHECK(batch.state() == inspection::complete);
}
