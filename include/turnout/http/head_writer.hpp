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
    /// Writes after what out already holds, which is kept, with room for about `room` bytes
    /// (more are taken when needed). A close estimate keeps the string's capacity close to
    /// what its messages need: it is held for the connection's life, and std::string doubles
    /// a capacity it has to grow.
    explicit head_writer(std::string& out, std::size_t room = default_room) : out_(out)
    {
        const auto used = out_.size();
        out_.resize(used + room); // zero-fills the room: a few stores for a head
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
    static constexpr std::size_t default_room = 256;

    /// Makes room for need more bytes (out of line: the rare path stays out of every piece).
    void grow(std::size_t need);

    std::string& out_;
    char* at_;
    char* end_;
};

} // namespace turnout::http
