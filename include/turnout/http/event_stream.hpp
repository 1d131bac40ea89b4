#pragma once
// Server-sent events as the HTML standard's "event stream interpretation" reads them: a line
// ends with CRLF, LF or CR; it is a field (`name: value`), a comment (`:` first) or blank (the
// event is dispatched). One line splitter serves every reader of event streams in turnout:
// the legacy `endpoint` scanner on the data path and the health checker's MCP probe.

#include <cstddef>
#include <string>
#include <string_view>

namespace turnout::http {

struct event_field {
    std::string_view name;
    std::string_view value;
};

/// "name: value" → {name, value}: one space after the colon is not part of the value; a line
/// without a colon is a field name with an empty value.
event_field split_event_field(std::string_view line) noexcept;

/// Splits an event stream that arrives in pieces into lines. A line split between pieces is
/// kept until its end arrives (at most max_line bytes of it: the rest is dropped, which bounds
/// memory against a stream that never ends a line).
class event_stream_lines {
public:
    explicit event_stream_lines(std::size_t max_line = 65536) : max_line_(max_line) {}

    /// Calls on_line(std::string_view) for every line that ends in bytes, in order, without
    /// its end. on_line returns true to stop: feed then returns how many bytes it consumed.
    template <class OnLine>
    std::size_t feed(std::string_view bytes, OnLine&& on_line);

    /// The stream ended: a last line without its end counts. Returns on_line's answer, or
    /// false when nothing was pending.
    template <class OnLine>
    bool finish(OnLine&& on_line)
    {
        if (line_.empty())
            return false;
        std::string_view line = line_;
        if (first_line_ && line.starts_with("\xEF\xBB\xBF"))
            line.remove_prefix(3);
        first_line_ = false;
        const bool stop = on_line(line);
        line_.clear();
        return stop;
    }

    /// Bytes fed so far.
    std::size_t consumed() const noexcept { return consumed_; }

private:
    void keep(std::string_view part);

    std::size_t max_line_;
    std::size_t consumed_ = 0;
    std::string line_; // the current line's start, when it began in an earlier piece
    bool after_cr_ = false; // the last line ended with CR: an LF right after is its end too
    bool first_line_ = true;
};

template <class OnLine>
std::size_t event_stream_lines::feed(std::string_view bytes, OnLine&& on_line)
{
    std::size_t pos = 0;
    while (pos < bytes.size()) {
        if (after_cr_) {
            after_cr_ = false;
            if (bytes[pos] == '\n') {
                ++pos;
                continue;
            }
        }
        const auto end = bytes.find_first_of("\r\n", pos);
        if (end == std::string_view::npos) {
            keep(bytes.substr(pos));
            pos = bytes.size();
            break;
        }
        after_cr_ = bytes[end] == '\r';
        std::string_view line = bytes.substr(pos, end - pos);
        if (!line_.empty()) {
            keep(line);
            line = line_;
        }
        // A UTF-8 byte order mark at the very start of the stream is not part of the first line.
        if (first_line_ && line.starts_with("\xEF\xBB\xBF"))
            line.remove_prefix(3);
        first_line_ = false;
        pos = end + 1;
        const bool stop = on_line(line);
        line_.clear();
        if (stop) {
            consumed_ += pos;
            return pos;
        }
    }
    consumed_ += pos;
    return pos;
}

} // namespace turnout::http
