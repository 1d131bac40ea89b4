// libFuzzer target: http::event_stream_lines (the SSE line splitter) and
// session::endpoint_scanner (the legacy `endpoint` event finder) fed a stream in pieces.
//
// Input: byte 0 picks the piece size (1..256, 0 → whole input), byte 1 the splitter's line
// bound and the scanner's scan bound; the rest is the event stream.
//
// Invariants: lines never contain CR or LF; cutting the stream into pieces changes neither the
// lines (with a bound larger than the stream) nor what the scanner finds; the scanner reports
// at most once and looks at no more than its bound.

#include "fuzz_support.hpp"

#include "turnout/http/event_stream.hpp"
#include "turnout/session/session_id.hpp"

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

using turnout::http::event_stream_lines;
using turnout::session::endpoint_scanner;

namespace {

constexpr std::size_t never = SIZE_MAX; // stop_after: do not stop

std::vector<std::string> split_lines(std::string_view stream, std::size_t step, std::size_t max_line,
                                     std::size_t stop_after)
{
    event_stream_lines lines{max_line};
    std::vector<std::string> out;
    const auto on_line = [&](std::string_view line) {
        FUZZ_CHECK(line.find_first_of("\r\n") == std::string_view::npos);
        out.emplace_back(line);
        return out.size() == stop_after;
    };
    std::size_t offset = 0;
    while (offset < stream.size()) {
        const std::size_t end = std::min(stream.size(), offset + step);
        const turnout::fuzz::exact_copy piece{stream.substr(offset, end - offset)};
        const std::size_t n = lines.feed(piece.view(), on_line);
        FUZZ_CHECK(n <= piece.size());
        if (out.size() == stop_after) {
            FUZZ_CHECK(offset + n == lines.consumed());
            return out;
        }
        FUZZ_CHECK(n == piece.size());
        offset = end;
    }
    FUZZ_CHECK(lines.consumed() == stream.size());
    lines.finish(on_line);
    return out;
}

std::optional<std::string> scan(std::string_view stream, std::size_t step, std::size_t max_scan)
{
    endpoint_scanner scanner{max_scan};
    std::optional<std::string> found;
    std::size_t offset = 0;
    while (offset < stream.size()) {
        const std::size_t end = std::min(stream.size(), offset + step);
        const turnout::fuzz::exact_copy piece{stream.substr(offset, end - offset)};
        const bool was_done = scanner.done();
        auto result = scanner.feed(piece.view());
        if (was_done)
            FUZZ_CHECK(!result);
        if (result) {
            FUZZ_CHECK(!found); // reported once only
            FUZZ_CHECK(scanner.done());
            found = std::move(result);
        }
        offset = end;
        if (offset >= max_scan)
            FUZZ_CHECK(scanner.done() || found); // stops after its bound
    }
    return found;
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size)
{
    if (size < 2)
        return 0;
    const std::string_view stream{reinterpret_cast<const char*>(data + 2), size - 2};
    const std::size_t step = data[0] == 0 ? stream.size() + 1 : data[0];

    // Lines: pieces against the whole stream, with no bound in play.
    const auto whole = split_lines(stream, stream.size() + 1, stream.size() + 1, never);
    const auto pieces = split_lines(stream, step, stream.size() + 1, never);
    FUZZ_CHECK(whole == pieces);

    // A small bound: lines that span pieces are cut at it, nothing else changes.
    const std::size_t max_line = 1 + (data[1] & 0x3f);
    const auto bounded = split_lines(stream, step, max_line, never);
    FUZZ_CHECK(bounded.size() == whole.size());
    for (std::size_t i = 0; i < bounded.size(); ++i)
        FUZZ_CHECK(whole[i].starts_with(bounded[i]) || (i == 0 && max_line < 3)); // a cut byte order mark stays

    // Stopping early: on_line returning true stops the splitter where that line ended.
    if (!whole.empty()) {
        const std::size_t stop_after = 1 + data[1] % whole.size();
        const auto stopped = split_lines(stream, step, stream.size() + 1, stop_after);
        FUZZ_CHECK(stopped.size() == stop_after);
        FUZZ_CHECK(std::equal(stopped.begin(), stopped.end(), whole.begin()));
    }

    // The endpoint scanner: the same answer however the stream is cut.
    const std::size_t max_scan = (data[1] & 0x80) ? 4096 : 16 + data[1];
    const auto found_whole = scan(stream, stream.size() + 1, max_scan);
    const auto found_pieces = scan(stream, step, max_scan);
    FUZZ_CHECK(found_whole == found_pieces);
    if (found_whole)
        FUZZ_CHECK(found_whole->size() < max_scan);
    return 0;
}
