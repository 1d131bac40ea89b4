#pragma once
// HTTP/1.1 body framing toward a peer, written in one place: pieces go out as they are, or as
// one chunk (size line, pieces, CRLF) when turnout frames the body chunked. The pieces are
// views (into a read buffer, usually): nothing is copied.

#include <boost/asio/buffer.hpp>

#include <cstdio>
#include <string_view>
#include <vector>

namespace turnout::http {

class chunk_framer {
public:
    using buffers = std::vector<boost::asio::const_buffer>;

    /// Appends size bytes of body, in pieces, to out; as one chunk when chunked. The size line
    /// lives in this framer until the next append.
    template <class Pieces>
    [[gnu::always_inline]] void append(buffers& out, const Pieces& pieces, std::size_t size, bool chunked)
    {
        if (size == 0)
            return;
        if (chunked) {
            const int n = std::snprintf(size_line_, sizeof size_line_, "%zx\r\n", size);
            out.emplace_back(size_line_, static_cast<std::size_t>(n));
        }
        for (const std::string_view piece : pieces)
            out.emplace_back(piece.data(), piece.size());
        if (chunked)
            out.emplace_back(boost::asio::buffer(chunk_end));
    }

    /// The end of a chunked body (no trailers).
    static void append_last(buffers& out) { out.emplace_back(boost::asio::buffer(last_chunk)); }

private:
    static constexpr std::string_view chunk_end = "\r\n";
    static constexpr std::string_view last_chunk = "0\r\n\r\n";
    char size_line_[24];
};

} // namespace turnout::http
