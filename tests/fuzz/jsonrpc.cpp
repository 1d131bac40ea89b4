// libFuzzer target: mcp::request_inspector and mcp::response_inspector (and the json_scanner
// under them) fed a body in pieces.
//
// Input: byte 0 picks the piece size (1..256, 0 → whole input), byte 1 the byte limit
// (0 → 65536, else byte × 16); the rest is the body.
//
// Invariants: cutting the body into pieces changes no fact and no outcome; an inspection
// settles within its limit; when Boost.JSON reads the body as one JSON-RPC request object
// within the limit, the inspector completes and agrees with it on method, params.name and id.

#include "fuzz_support.hpp"

#include "turnout/mcp/jsonrpc_inspector.hpp"

#include <boost/json/parse.hpp>
#include <boost/json/src.hpp>

#include <cstddef>
#include <cstdint>
#include <string_view>

using namespace turnout::mcp;

namespace {

template <class Inspector>
void feed_all(Inspector& in, std::string_view body, std::size_t step)
{
    for (std::size_t at = 0; at < body.size() && !in.settled(); at += step) {
        const turnout::fuzz::exact_copy piece{body.substr(at, step)};
        in.feed(piece.view());
    }
}

bool same(const rpc_request_facts& a, const rpc_request_facts& b)
{
    return a.method == b.method && a.name == b.name && a.uri == b.uri && a.id == b.id && a.batch == b.batch;
}

void check_against_boost_json(std::string_view body, const request_inspector& in, std::size_t limit)
{
    if (body.size() > limit)
        return;
    boost::system::error_code ec;
    const auto v = boost::json::parse(body, ec);
    if (ec || !v.is_object())
        return;
    FUZZ_CHECK(in.state() == inspection::complete);
    const auto& o = v.get_object();
    // Duplicate members: the inspector keeps the last, as Boost.JSON does.
    if (const auto* m = o.if_contains("method"); m && m->is_string() && m->get_string().size() <= 200)
        FUZZ_CHECK(in.facts().method == std::string_view(m->get_string()));
    if (const auto* id = o.if_contains("id"); id && (id->is_number() || id->is_string())) {
        FUZZ_CHECK(!in.facts().id.empty());
        FUZZ_CHECK(boost::json::parse(in.facts().id) == *id);
    }
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size)
{
    if (size < 2)
        return 0;
    const std::size_t step = data[0] == 0 ? size : data[0];
    const std::size_t limit = data[1] == 0 ? 65536 : std::size_t{data[1]} * 16;
    const std::string_view body(reinterpret_cast<const char*>(data) + 2, size - 2);

    request_inspector whole(limit), pieces(limit);
    feed_all(whole, body, body.size() + 1);
    feed_all(pieces, body, step);
    FUZZ_CHECK(whole.state() == pieces.state());
    FUZZ_CHECK(same(whole.facts(), pieces.facts()));
    if (body.size() >= limit)
        FUZZ_CHECK(pieces.settled());
    check_against_boost_json(body, whole, limit);

    for (const bool tool_call : {false, true}) {
        response_inspector a(limit, tool_call), b(limit, tool_call);
        feed_all(a, body, body.size() + 1);
        feed_all(b, body, step);
        FUZZ_CHECK(a.outcome() == b.outcome());
        FUZZ_CHECK(a.state() == b.state());
    }
    return 0;
}
