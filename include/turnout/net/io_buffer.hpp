#pragma once
// A contiguous byte buffer for socket reads: [begin, end) holds unread bytes, [end, capacity)
// is free for the next read. Consuming bytes never moves or frees memory, so views handed out
// into consumed bytes stay valid until the owner calls reset() or compact() — that is what
// lets body bytes be forwarded straight from the read buffer, without a copy.

#include <cstddef>
#include <cstring>
#include <memory>

namespace turnout::net {

class io_buffer {
public:
    explicit io_buffer(std::size_t capacity = 0) { reserve(capacity); }

    const char* data() const noexcept { return storage_.get() + begin_; }
    std::size_t size() const noexcept { return end_ - begin_; }
    bool empty() const noexcept { return begin_ == end_; }

    char* write_data() noexcept { return storage_.get() + end_; }
    std::size_t space() const noexcept { return capacity_ - end_; }
    std::size_t capacity() const noexcept { return capacity_; }

    void commit(std::size_t n) noexcept { end_ += n; }
    void consume(std::size_t n) noexcept { begin_ += n; }

    /// Forgets consumed bytes: moves the unread ones to the front. Invalidates views.
    void compact() noexcept
    {
        if (begin_ == 0)
            return;
        if (end_ != begin_)
            std::memmove(storage_.get(), storage_.get() + begin_, end_ - begin_);
        end_ -= begin_;
        begin_ = 0;
    }

    /// Grows to at least capacity, keeping unread bytes. Invalidates views.
    void reserve(std::size_t capacity)
    {
        if (capacity <= capacity_)
            return;
        auto bigger = std::make_unique_for_overwrite<char[]>(capacity);
        if (!empty())
            std::memcpy(bigger.get(), data(), size());
        end_ -= begin_;
        begin_ = 0;
        storage_ = std::move(bigger);
        capacity_ = capacity;
    }

    /// Hands the (empty) storage back, for reuse elsewhere; null when something is unread.
    std::unique_ptr<char[]> detach() noexcept
    {
        if (!empty() || !storage_)
            return nullptr;
        capacity_ = begin_ = end_ = 0;
        return std::move(storage_);
    }

    /// Gives up the storage whatever it holds (the connection is going away).
    std::unique_ptr<char[]> release() noexcept
    {
        capacity_ = begin_ = end_ = 0;
        return std::move(storage_);
    }

    /// Takes storage of the given capacity (from detach() of a buffer of that size).
    void attach(std::unique_ptr<char[]> storage, std::size_t capacity) noexcept
    {
        storage_ = std::move(storage);
        capacity_ = capacity;
        begin_ = end_ = 0;
    }

private:
    std::unique_ptr<char[]> storage_;
    std::size_t capacity_ = 0;
    std::size_t begin_ = 0;
    std::size_t end_ = 0;
};

} // namespace turnout::net
