#pragma once
// Helpers shared by the fuzz targets: a failed invariant aborts (libFuzzer reports it as a
// crash with the input), and pieces are copied into buffers of their exact size so that
// AddressSanitizer sees a read past a piece's end.

#include <cstddef>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string_view>

#define FUZZ_CHECK(cond)                                                                   \
    do {                                                                                   \
        if (!(cond)) {                                                                     \
            std::fprintf(stderr, "%s:%d: invariant failed: %s\n", __FILE__, __LINE__, #cond); \
            std::abort();                                                                  \
        }                                                                                  \
    } while (0)

namespace turnout::fuzz {

/// A copy of bytes in a heap block of exactly their size.
class exact_copy {
public:
    explicit exact_copy(std::string_view bytes) : size_(bytes.size()), data_(new char[bytes.size() ? bytes.size() : 1])
    {
        if (size_)
            std::memcpy(data_.get(), bytes.data(), size_);
    }
    const char* data() const noexcept { return data_.get(); }
    std::size_t size() const noexcept { return size_; }
    std::string_view view() const noexcept { return {data_.get(), size_}; }

private:
    std::size_t size_;
    std::unique_ptr<char[]> data_;
};

/// Reads every byte of s (so ASan checks that the view is still valid) and returns a value
/// that depends on them, so the reads are not optimised away.
inline unsigned touch(std::string_view s) noexcept
{
    unsigned sum = 0;
    for (const char c : s)
        sum += static_cast<unsigned char>(c);
    return sum;
}

} // namespace turnout::fuzz
