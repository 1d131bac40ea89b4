#pragma once
// Writes a message head into a std::string that keeps its capacity from one message to the
// next. Each piece is one bounds check and one memcpy (inlined for literals), where
// std::string::append is a call into the library per piece; a forwarded head is some thirty
// pieces. The string is trimmed to what was written when the writer goes out of scope.

#include <algorithm>
#include <charconv>
#include <cstddef>
#include <cstring>
#include <string>
#include <string_view>

namespace turnout::http {

class head_writer {
public:
    /// Writes after what out already holds, which is kept.
    explicit head_writer(std::string& out) : out_(out)
    {
        // The room is zero-filled by resize: asking for a little and growing when a head needs
        // more costs less than clearing a large capacity for every head.
        const auto used = out_.size();
        out_.resize(used + initial_room);
        at_ = out_.data() + used;
        end_ = out_.data() + out_.size();
    }
    head_writer(const head_writer&) = delete;
    head_writer& operator=(const head_writer&) = delete;
    ~head_writer() { out_.resize(static_cast<std::size_t>(at_ - out_.data())); }

    [[gnu::always_inline]] head_writer& operator<<(std::string_view s)
    {
        if (s.empty()) // memcpy may not be given the null pointer of an empty view
            return *this;
        if (s.size() > static_cast<std::size_t>(end_ - at_)) [[unlikely]]
            grow(s.size());
        std::memcpy(at_, s.data(), s.size());
        at_ += s.size();
        return *this;
    }
    [[gnu::always_inline]] head_writer& operator<<(char c) { return *this << std::string_view(&c, 1); }
    head_writer& operator<<(unsigned n)
    {
        char digits[16];
        const auto end = std::to_chars(digits, digits + sizeof digits, n).ptr;
        return *this << std::string_view(digits, static_cast<std::size_t>(end - digits));
    }

    /// "name: value\r\n"
    [[gnu::always_inline]] void field(std::string_view name, std::string_view value) { *this << name << ": " << value << "\r\n"; }

private:
    static constexpr std::size_t initial_room = 384;

    /// Makes room for need more bytes (out of line: the rare path stays out of every piece).
    void grow(std::size_t need);

    std::string& out_;
    char* at_;
    char* end_;
};

} // namespace turnout::http
