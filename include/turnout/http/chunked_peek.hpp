#pragma once
// Reading a chunked body's payload where it lies, without consuming it: for routing a request
// by its JSON-RPC body when it came with Transfer-Encoding: chunked. The framed bytes stay in
// the read buffer, untouched, for the message parser to forward afterwards as it does any
// body; this only finds the payload's pieces among them. It is as strict as the parser's
// strict mode (hex sizes, CRLF line ends), and anything it does not accept it calls
// malformed, leaving the parser to refuse it with its own error.

#include <cstddef>
#include <cstdint>
#include <string_view>
#include <vector>

namespace turnout::http {

struct chunked_peek {
    enum class state : std::uint8_t {
        incomplete, // the bytes end before the last chunk and trailers do
        complete,   // the whole body is there: pieces hold its payload
        over_limit, // a chunk takes the payload past max_payload
        malformed,  // not chunked framing as the parser accepts it
    };
    state status = state::incomplete;
    std::size_t payload = 0; // payload bytes in pieces
    std::size_t framed = 0;  // complete: bytes of the body, framing included, from the start
    std::size_t needed = 0;  // incomplete: the fewest bytes (from the start) the body can end in
};

/// Walks the chunked framing of framed (the bytes right after the head) and appends each
/// chunk's payload to pieces as a view into framed, up to max_payload payload bytes.
chunked_peek peek_chunked(std::string_view framed, std::size_t max_payload, std::vector<std::string_view>& pieces);

} // namespace turnout::http
