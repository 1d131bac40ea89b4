#include "turnout/session/session_id.hpp"
#include "turnout/http/target.hpp"

#include <doctest/doctest.h>

#include <string>

using turnout::session::endpoint_scanner;
using turnout::session::is_valid_session_id;
using turnout::session::legacy_session_id;
using turnout::http::query_parameter;
using turnout::http::replace_query_parameter;

namespace {

// Feeds pieces one after another; the first found endpoint, if any.
std::optional<std::string> scan_pieces(endpoint_scanner& scanner,
                                       std::initializer_list<std::string_view> pieces)
{
    std::optional<std::string> found;
    for (const std::string_view piece : pieces) {
        auto result = scanner.feed(piece);
        if (result) {
            CHECK_FALSE(found); // reported once only
            found = std::move(result);
        }
    }
    return found;
}

std::optional<std::string> scan_bytewise(endpoint_scanner& scanner, std::string_view stream)
{
    std::optional<std::string> found;
    for (std::size_t i = 0; i < stream.size(); ++i) {
        auto result = scanner.feed(stream.substr(i, 1));
        if (result) {
            CHECK_FALSE(found);
            found = std::move(result);
        }
    }
    return found;
}

const std::string_view ts_sdk_stream = "event: endpoint\ndata: /messages?sessionId=abc\n\n";
const std::string_view python_sdk_stream = "event: endpoint\r\ndata: /messages/?session_id=abc\r\n\r\n";

} // namespace

// --- is_valid_session_id -------------------------------------------------------------------

TEST_CASE("session id validity: length from 1 to 256 bytes")
{
    CHECK_FALSE(is_valid_session_id(""));
    CHECK(is_valid_session_id("a"));
    CHECK(is_valid_session_id(std::string(256, 'x')));
    CHECK_FALSE(is_valid_session_id(std::string(257, 'x')));
    CHECK(is_valid_session_id("0f8b5c1e-3d2a-4b7c-9e6f-1a2b3c4d5e6f"));
}

TEST_CASE("session id validity: visible ASCII only")
{
    CHECK(is_valid_session_id("!~"));                         // 0x21 and 0x7E, the bounds
    CHECK(is_valid_session_id("a\"b\\c{}[]<>%&?=#/"));        // any visible punctuation
    CHECK_FALSE(is_valid_session_id("a b"));                  // space
    CHECK_FALSE(is_valid_session_id(" ab"));                  // leading space
    CHECK_FALSE(is_valid_session_id("ab\x7F"));               // DEL
    CHECK_FALSE(is_valid_session_id("caf\xC3\xA9"));          // UTF-8 (non-ASCII bytes)
    CHECK_FALSE(is_valid_session_id("\x80"));                 // a lone high byte
    CHECK_FALSE(is_valid_session_id("ab\tc"));                // control character
    CHECK_FALSE(is_valid_session_id("ab\r\nX-Evil: 1"));      // header injection
    CHECK_FALSE(is_valid_session_id(std::string{"a\0b", 3})); // NUL
}

// --- query parameters ----------------------------------------------------------------------

TEST_CASE("session id query_parameter finds exact names in the query")
{
    CHECK(query_parameter("/messages?sessionId=abc", "sessionId") == "abc");
    CHECK(query_parameter("/messages?a=1&sessionId=abc&b=2", "sessionId") == "abc");
    CHECK(query_parameter("/messages?a=1&sessionId=abc", "sessionId") == "abc");
    CHECK(query_parameter("/messages?sessionId=a=b", "sessionId") == "a=b"); // value up to '&'
    CHECK_FALSE(query_parameter("/messages?sessionid=abc", "sessionId"));    // case matters
}

TEST_CASE("session id query_parameter edge cases")
{
    // No query at all, or an empty one.
    CHECK_FALSE(query_parameter("/messages", "sessionId"));
    CHECK_FALSE(query_parameter("/messages?", "sessionId"));
    CHECK_FALSE(query_parameter("", "sessionId"));
    // The name must match whole, not as a suffix or prefix of another name.
    CHECK_FALSE(query_parameter("/m?xsessionId=abc", "sessionId"));
    CHECK_FALSE(query_parameter("/m?sessionIdx=abc", "sessionId"));
    CHECK(query_parameter("/m?xsessionId=no&sessionId=yes", "sessionId") == "yes");
    // The path is not the query.
    CHECK_FALSE(query_parameter("/sessionId=abc", "sessionId"));
    // Empty values: with and without '='.
    CHECK(query_parameter("/m?sessionId=", "sessionId") == "");
    CHECK(query_parameter("/m?sessionId", "sessionId") == "");
    CHECK(query_parameter("/m?sessionId&b=2", "sessionId") == "");
    CHECK(query_parameter("/m?a=1&&sessionId=x", "sessionId") == "x");
    // Repeated: the first one counts.
    CHECK(query_parameter("/m?sessionId=one&sessionId=two", "sessionId") == "one");
    // The fragment ends the query.
    CHECK(query_parameter("/m?sessionId=abc#frag", "sessionId") == "abc");
    CHECK_FALSE(query_parameter("/m?a=1#sessionId=abc", "sessionId"));
    CHECK_FALSE(query_parameter("/m#x?sessionId=abc", "sessionId"));
    CHECK(query_parameter("/m?a=1#x&sessionId=no", "a") == "1");
    // A second '?' belongs to the query.
    CHECK(query_parameter("/m?a=?&sessionId=x?y", "sessionId") == "x?y");
}

TEST_CASE("session id legacy_session_id reads the TypeScript and the Python SDK spellings")
{
    const auto ts = legacy_session_id("/messages?sessionId=abc");
    REQUIRE(ts);
    CHECK(ts->name == "sessionId");
    CHECK(ts->value == "abc");

    const auto py = legacy_session_id("/messages/?session_id=0f8b5c1e3d2a");
    REQUIRE(py);
    CHECK(py->name == "session_id");
    CHECK(py->value == "0f8b5c1e3d2a");

    // sessionId is checked first.
    const auto both = legacy_session_id("/m?session_id=py&sessionId=ts");
    REQUIRE(both);
    CHECK(both->name == "sessionId");
    CHECK(both->value == "ts");

    CHECK_FALSE(legacy_session_id("/messages"));
    CHECK_FALSE(legacy_session_id("/messages?sessionid=abc&SessionId=x"));
}

TEST_CASE("session id replace_query_parameter keeps everything else byte for byte")
{
    CHECK(replace_query_parameter("/messages?sessionId=abc", "sessionId", "TOKEN") ==
          "/messages?sessionId=TOKEN");
    CHECK(replace_query_parameter("/m?a=1&sessionId=abc&b=%20x#f", "sessionId", "T") ==
          "/m?a=1&sessionId=T&b=%20x#f");
    CHECK(replace_query_parameter("/m/?session_id=abc", "session_id", "longer-token-value") ==
          "/m/?session_id=longer-token-value");
    // Only the first occurrence; a look-alike name is left alone.
    CHECK(replace_query_parameter("/m?xsessionId=1&sessionId=2&sessionId=3", "sessionId", "T") ==
          "/m?xsessionId=1&sessionId=T&sessionId=3");
    // Empty values, with and without '='.
    CHECK(replace_query_parameter("/m?sessionId=&b=2", "sessionId", "T") == "/m?sessionId=T&b=2");
    CHECK(replace_query_parameter("/m?sessionId&b=2", "sessionId", "T") == "/m?sessionId=T&b=2");
    // Absent: unchanged.
    CHECK(replace_query_parameter("/m?a=1", "sessionId", "T") == "/m?a=1");
    CHECK(replace_query_parameter("/m", "sessionId", "T") == "/m");
    CHECK(replace_query_parameter("/m?a=1#sessionId=x", "sessionId", "T") == "/m?a=1#sessionId=x");
}

// --- endpoint_scanner ----------------------------------------------------------------------

TEST_CASE("endpoint_scanner finds the TypeScript SDK endpoint event")
{
    endpoint_scanner scanner;
    CHECK(scanner.feed(ts_sdk_stream) == "/messages?sessionId=abc");
    CHECK(scanner.done());
    CHECK_FALSE(scanner.feed("event: endpoint\ndata: /other\n\n"));
}

TEST_CASE("endpoint_scanner finds the Python SDK endpoint event (CRLF)")
{
    endpoint_scanner scanner;
    CHECK(scanner.feed(python_sdk_stream) == "/messages/?session_id=abc");
    CHECK(scanner.done());
}

TEST_CASE("endpoint_scanner accepts bare CR line ends and no space after the colon")
{
    endpoint_scanner scanner;
    CHECK(scanner.feed("event:endpoint\rdata:/m?sessionId=x y\r\r") == "/m?sessionId=x y");
}

TEST_CASE("endpoint_scanner fed one byte at a time")
{
    for (const std::string_view stream : {ts_sdk_stream, python_sdk_stream}) {
        endpoint_scanner scanner;
        const auto found = scan_bytewise(scanner, stream);
        REQUIRE(found);
        CHECK(found->starts_with("/messages"));
        CHECK(found->ends_with("=abc"));
        CHECK(found->find('\r') == std::string::npos);
    }
}

TEST_CASE("endpoint_scanner fed with CR and LF in separate pieces")
{
    {
        endpoint_scanner scanner;
        const auto found = scan_pieces(
            scanner, {"event: endpoint\r", "\ndata: /messages/?session_id=abc\r", "\n", "\r", "\n"});
        CHECK(found == "/messages/?session_id=abc");
    }
    {
        // Were the LF after a CR taken as a second line end, this blank line would end the event
        // before its data, and the endpoint would be missed.
        endpoint_scanner scanner;
        const auto found = scan_pieces(scanner, {"event: endpoint\r", "\n", "data: /m?sessionId=1\r", "\n"});
        CHECK(found == "/m?sessionId=1");
    }
}

TEST_CASE("endpoint_scanner skips a comment and an earlier event")
{
    endpoint_scanner scanner;
    const auto found = scan_pieces(
        scanner, {": keep-alive comment\n",
                  "event: message\ndata: {\"jsonrpc\":\"2.0\"}\nid: 7\nretry: 100\n\n", ts_sdk_stream});
    CHECK(found == "/messages?sessionId=abc");
}

TEST_CASE("endpoint_scanner ignores data of other events")
{
    {
        // Data first, then a message event type: dispatched, but not an endpoint.
        endpoint_scanner scanner;
        CHECK_FALSE(scanner.feed("data: /messages?sessionId=wrong\nevent: message\n\n"));
        CHECK_FALSE(scanner.done());
        CHECK(scanner.feed(ts_sdk_stream) == "/messages?sessionId=abc");
    }
    {
        // A message event's data does not leak into the next event.
        endpoint_scanner scanner;
        CHECK_FALSE(scanner.feed("event: message\ndata: hello\n\n"));
        CHECK(scanner.feed("event: endpoint\ndata: /m?sessionId=1\n\n") == "/m?sessionId=1");
    }
    {
        // Data without an event type is a "message" event.
        endpoint_scanner scanner;
        CHECK_FALSE(scanner.feed("data: /m?sessionId=1\n\n"));
        CHECK_FALSE(scanner.feed("event: endpoints\ndata: /m?sessionId=1\n\n"));
        CHECK_FALSE(scanner.feed("event: Endpoint\ndata: /m?sessionId=1\n\n"));
        CHECK_FALSE(scanner.feed("eventx: endpoint\ndata: /m?sessionId=1\n\n"));
        CHECK_FALSE(scanner.done());
    }
    {
        // An endpoint event with empty data is no endpoint.
        endpoint_scanner scanner;
        CHECK_FALSE(scanner.feed("event: endpoint\ndata:\n\n"));
        CHECK_FALSE(scanner.feed("event: endpoint\n\n"));
        CHECK_FALSE(scanner.done());
    }
}

TEST_CASE("endpoint_scanner reports the endpoint once its data line ends, and when data came first")
{
    {
        endpoint_scanner scanner;
        CHECK_FALSE(scanner.feed("event: endpoint\ndata: /m?sessionId=1"));
        CHECK(scanner.feed("\n") == "/m?sessionId=1");
        CHECK_FALSE(scanner.feed("\n"));
    }
    {
        // The field order within an event is free: the event type may follow the data.
        endpoint_scanner scanner;
        CHECK_FALSE(scanner.feed("data: /m?sessionId=2\nevent: endpoint\n"));
        CHECK(scanner.feed("\n") == "/m?sessionId=2");
    }
}

TEST_CASE("endpoint_scanner skips a byte order mark at the start of the stream")
{
    endpoint_scanner scanner;
    const auto found = scan_pieces(scanner, {"\xEF",
                                             "\xBB\xBF"
                                             "event: endpoint\n",
                                             "data: /m?sessionId=1\n\n"});
    CHECK(found == "/m?sessionId=1");
}

TEST_CASE("endpoint_scanner looks at nothing after max_scan bytes")
{
    {
        endpoint_scanner scanner{64};
        CHECK_FALSE(scanner.feed(": " + std::string(70, 'x') + "\n"));
        CHECK(scanner.done());
        CHECK_FALSE(scanner.feed(ts_sdk_stream));
    }
    {
        // The endpoint line crosses the limit: not complete within it.
        const std::string padding = ": pad\n";
        endpoint_scanner scanner{padding.size() + ts_sdk_stream.size() - 3};
        CHECK_FALSE(scanner.feed(padding));
        CHECK_FALSE(scanner.feed(ts_sdk_stream));
        CHECK(scanner.done());
    }
    {
        // Right at the limit: the data line's LF is the last byte looked at.
        const std::string stream = "event: endpoint\ndata: /m?sessionId=1\n";
        endpoint_scanner scanner{stream.size()};
        CHECK(scan_bytewise(scanner, stream + "\n") == "/m?sessionId=1");
        CHECK(scanner.done());
    }
    {
        // A line far longer than the limit, fed in many pieces, stops being looked at.
        endpoint_scanner scanner{4096};
        const std::string chunk(1000, 'a');
        for (int i = 0; i < 100; ++i)
            CHECK_FALSE(scanner.feed(chunk));
        CHECK(scanner.done());
    }
}
