#include "turnout/control/etcd_codec.hpp"

#include <boost/json/parse.hpp>

#include <doctest/doctest.h>

#include <string>

using namespace turnout::control::etcd;
namespace json = boost::json;

TEST_CASE("etcd base64: RFC 4648 vectors both ways, binary bytes, bad text refused")
{
    const std::pair<std::string, std::string> vectors[] = {
        {"", ""}, {"f", "Zg=="}, {"fo", "Zm8="}, {"foo", "Zm9v"}, {"foob", "Zm9vYg=="}, {"fooba", "Zm9vYmE="},
        {"foobar", "Zm9vYmFy"}, {"/turnout/state", "L3R1cm5vdXQvc3RhdGU="}};
    for (const auto& [plain, encoded] : vectors) {
        CHECK(base64_encode(plain) == encoded);
        CHECK(base64_decode(encoded) == plain);
    }
    const std::string binary{"\x00\xff\x10\x80\x7f", 5};
    CHECK(base64_decode(base64_encode(binary)) == binary);
    CHECK_FALSE(base64_decode("Zm9"));      // not a multiple of 4
    CHECK_FALSE(base64_decode("Zm9*"));     // not in the alphabet
    CHECK_FALSE(base64_decode("Z=9v"));     // padding inside
    CHECK_FALSE(base64_decode("Zg=a"));     // "x=y" is not padding
    CHECK_FALSE(base64_decode("Zg==Zm8=")); // padding before the end
}

TEST_CASE("etcd prefix_end: the first key after the prefix's range")
{
    CHECK(prefix_end("/turnout/") == "/turnout0");
    CHECK(prefix_end("a\xff") == "b");
    CHECK(prefix_end(std::string("\xff\xff")) == std::string(1, '\0'));
}

TEST_CASE("etcd requests: range, compare-and-put on mod_revision, watch of the prefix")
{
    CHECK(json::parse(range_request("/t/state")) == json::parse(R"({"key":"L3Qvc3RhdGU="})"));

    const auto txn = json::parse(compare_and_put_request("/t/state", "{}", 42)).as_object();
    CHECK(txn.at("compare") == json::parse(R"([{"key":"L3Qvc3RhdGU=","target":"MOD","result":"EQUAL","mod_revision":"42"}])"));
    CHECK(txn.at("success") == json::parse(R"([{"request_put":{"key":"L3Qvc3RhdGU=","value":"e30="}}])"));
    CHECK(txn.at("failure") == json::parse(R"([{"request_range":{"key":"L3Qvc3RhdGU="}}])"));
    // 0: the key must not exist yet (an absent key's mod_revision is 0).
    CHECK(json::parse(compare_and_put_request("k", "v", 0)).at("compare").at(0).at("mod_revision") == "0");

    CHECK(json::parse(watch_request("/t/", 7)) ==
          json::parse(R"({"create_request":{"key":"L3Qv","range_end":"L3Qw","start_revision":"7"}})"));
    CHECK_FALSE(json::parse(watch_request("/t/", 0)).at("create_request").as_object().contains("start_revision"));
}

TEST_CASE("etcd range answers: the key with its mod_revision, or absent; errors and garbage refused")
{
    const auto found = parse_range(
        R"({"header":{"cluster_id":"1","revision":"9"},"kvs":[{"key":"L3Qvc3RhdGU=","create_revision":"2","mod_revision":"8","version":"3","value":"e30="}],"count":"1"})");
    CHECK(found.revision == 9);
    REQUIRE(found.kv);
    CHECK(found.kv->key == "/t/state");
    CHECK(found.kv->value == "{}");
    CHECK(found.kv->mod_revision == 8);

    const auto absent = parse_range(R"({"header":{"revision":"3"}})");
    CHECK(absent.revision == 3);
    CHECK_FALSE(absent.kv);

    CHECK_THROWS_AS(parse_range("not json"), protocol_error);
    CHECK_THROWS_AS(parse_range(R"([1])"), protocol_error);
    CHECK_THROWS_WITH_AS(parse_range(R"({"error":"etcdserver: request timed out","code":14})"),
                         "etcd answered an error: etcdserver: request timed out", protocol_error);
    CHECK_THROWS_AS(parse_range(R"({"header":{"revision":"x9"}})"), protocol_error);
    CHECK_THROWS_AS(parse_range(R"({"kvs":[{"key":"%%%%","mod_revision":"1"}]})"), protocol_error);
}

TEST_CASE("etcd txn answers: the put's revision on success; the key as it is on a conflict")
{
    const auto won = parse_txn(R"({"header":{"revision":"12"},"succeeded":true,"responses":[{"response_put":{"header":{"revision":"12"}}}]})");
    CHECK(won.succeeded);
    CHECK(won.revision == 12);
    CHECK_FALSE(won.current);

    // succeeded is false by default, so the gateway leaves it out.
    const auto lost = parse_txn(
        R"({"header":{"revision":"12"},"responses":[{"response_range":{"header":{"revision":"12"},"kvs":[{"key":"aw==","mod_revision":"11","value":"dg=="}],"count":"1"}}]})");
    CHECK_FALSE(lost.succeeded);
    REQUIRE(lost.current);
    CHECK(lost.current->mod_revision == 11);
    CHECK(lost.current->value == "v");

    const auto gone = parse_txn(R"({"header":{"revision":"12"},"responses":[{"response_range":{"header":{"revision":"12"}}}]})");
    CHECK_FALSE(gone.succeeded);
    CHECK_FALSE(gone.current);
}

TEST_CASE("etcd watch messages: created, events in order (PUT left out as the default), delete, compaction")
{
    const auto created = parse_watch_message(json::parse(R"({"result":{"header":{"revision":"5"},"created":true}})"));
    CHECK(created.created);
    CHECK(created.revision == 5);
    CHECK(created.events.empty());

    const auto events = parse_watch_message(json::parse(
        R"({"result":{"header":{"revision":"7"},"events":[{"kv":{"key":"aw==","mod_revision":"6","value":"MQ=="}},{"type":"DELETE","kv":{"key":"aw==","mod_revision":"7"}}]}})"));
    REQUIRE(events.events.size() == 2);
    CHECK_FALSE(events.events[0].deleted);
    CHECK(events.events[0].kv.value == "1");
    CHECK(events.events[0].kv.mod_revision == 6);
    CHECK(events.events[1].deleted);
    CHECK(events.events[1].kv.mod_revision == 7);

    const auto compacted = parse_watch_message(
        json::parse(R"({"result":{"header":{"revision":"30"},"canceled":true,"compact_revision":"20"}})"));
    CHECK(compacted.canceled);
    CHECK(compacted.compact_revision == 20);

    CHECK_THROWS_AS(parse_watch_message(json::parse(R"({"error":{"grpc_code":14,"message":"unavailable"}})")), protocol_error);
    CHECK_THROWS_AS(parse_watch_message(json::parse(R"({"other":1})")), protocol_error);
}

TEST_CASE("etcd watch stream: JSON objects cut anywhere by the network come out whole and in order")
{
    const std::string stream = "{\"result\":{\"a\":1}}\n{\"result\":{\"b\":\"x}y\"}}\n{\"result\":{}}\n";
    // Every way of cutting it in two pieces gives the same three objects.
    for (std::size_t cut = 0; cut <= stream.size(); ++cut) {
        json_sequence seq;
        auto values = seq.feed(std::string_view(stream).substr(0, cut));
        for (auto& v : seq.feed(std::string_view(stream).substr(cut)))
            values.push_back(std::move(v));
        REQUIRE(values.size() == 3);
        CHECK(values[0] == json::parse(R"({"result":{"a":1}})"));
        CHECK(values[1] == json::parse(R"({"result":{"b":"x}y"}})"));
        CHECK(values[2] == json::parse(R"({"result":{}})"));
    }
    // One byte at a time.
    json_sequence seq;
    std::size_t count = 0;
    for (char c : stream)
        count += seq.feed(std::string_view(&c, 1)).size();
    CHECK(count == 3);

    json_sequence bad;
    CHECK_THROWS_AS(bad.feed("{\"a\":1}\n}"), protocol_error);
}

TEST_CASE("etcd leases and elections: grant, keep-alive, a put with a lease, create-if-absent")
{
    CHECK(json::parse(lease_grant_request(3)) == json::parse(R"({"TTL":"3"})"));
    const auto g = parse_lease_grant(R"({"header":{"revision":"5"},"ID":"7587867021553493767","TTL":"3"})");
    CHECK(g.id == 7587867021553493767);
    CHECK(g.ttl_s == 3);
    CHECK_THROWS_AS(parse_lease_grant(R"({"header":{}})"), protocol_error);
    CHECK(json::parse(lease_id_request(42)) == json::parse(R"({"ID":"42"})"));

    CHECK(parse_keepalive_ttl(R"({"result":{"header":{"revision":"5"},"ID":"42","TTL":"3"}})") == 3);
    // A lease that ended: TTL left out (its default, 0).
    CHECK(parse_keepalive_ttl(R"({"result":{"header":{"revision":"5"},"ID":"42"}})") == 0);
    CHECK_THROWS_AS(parse_keepalive_ttl(R"({"error":{"grpc_code":14,"message":"unavailable"}})"), protocol_error);

    CHECK(json::parse(put_request("/t/figures/a", "{}", 42)) ==
          json::parse(R"({"key":"L3QvZmlndXJlcy9h","value":"e30=","lease":"42"})"));
    CHECK_FALSE(json::parse(put_request("k", "v", 0)).as_object().contains("lease"));

    const auto txn = json::parse(create_with_lease_request("/t/leader", "edge-a", 42)).as_object();
    CHECK(txn.at("compare") ==
          json::parse(R"([{"key":"L3QvbGVhZGVy","target":"CREATE","result":"EQUAL","create_revision":"0"}])"));
    CHECK(txn.at("success") ==
          json::parse(R"([{"request_put":{"key":"L3QvbGVhZGVy","value":"ZWRnZS1h","lease":"42"}}])"));
    // Lost: the leader key as it is, with its lease.
    const auto lost = parse_txn(
        R"({"header":{"revision":"9"},"responses":[{"response_range":{"kvs":[{"key":"L3QvbGVhZGVy","value":"ZWRnZS1i","mod_revision":"8","lease":"77"}]}}]})");
    CHECK_FALSE(lost.succeeded);
    REQUIRE(lost.current);
    CHECK(lost.current->value == "edge-b");
    CHECK(lost.current->lease == 77);
}

TEST_CASE("etcd ranges of a prefix, a watch of a key range, authentication")
{
    CHECK(json::parse(range_prefix_request("/t/f/")) == json::parse(R"({"key":"L3QvZi8=","range_end":"L3QvZjA="})"));
    const auto all = parse_range_all(
        R"({"header":{"revision":"9"},"kvs":[{"key":"YQ==","value":"MQ==","mod_revision":"3"},{"key":"Yg==","value":"Mg==","mod_revision":"4"}],"count":"2"})");
    REQUIRE(all.size() == 2);
    CHECK(all[1].key == "b");
    CHECK(all[1].value == "2");
    CHECK(parse_range_all(R"({"header":{"revision":"9"}})").empty());

    CHECK(json::parse(watch_range_request("/t/leader", "/t/statf", 3)) ==
          json::parse(R"({"create_request":{"key":"L3QvbGVhZGVy","range_end":"L3Qvc3RhdGY=","start_revision":"3"}})"));

    CHECK(json::parse(authenticate_request("root", "pw")) == json::parse(R"({"name":"root","password":"pw"})"));
    CHECK(parse_token(R"({"header":{},"token":"abc.123"})") == "abc.123");
    CHECK_THROWS_AS(parse_token(R"({"header":{}})"), protocol_error);
    CHECK_THROWS_AS(parse_token(R"({"error":"authentication failed, invalid user ID or password","code":3})"), protocol_error);
}
