#pragma once
// The deadlines of one worker's connections on a hashed timing wheel (Varghese and Lauck's
// scheme 6), in place of a timer per connection: an entry is two pointers and a tick number
// inside the connection, moving a deadline is a few pointer writes (no timer operation to
// allocate, no heap to reorder, no system call), and one Asio timer per worker wakes at the
// next slot that holds an entry. A deadline fires at the first tick at or after it: up to one
// tick late, never early.
//
// Deadlines far beyond one revolution (slot_count ticks) stay in their slot and are passed
// over until their revolution comes. Owners may move a deadline later without telling the
// wheel (it is re-checked when it fires, as a lazily re-armed timer is); an earlier one must
// be scheduled.

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>

namespace turnout::net {

class deadline_wheel {
public:
    using clock = std::chrono::steady_clock;
    static constexpr std::chrono::milliseconds tick{16};
    static constexpr std::size_t slot_count = 4096; // one revolution: about 65 s

    /// What has a deadline: embedded in (inherited by) its owner, which must outlive its link
    /// (the destructor unlinks).
    class entry {
    public:
        entry() = default;
        entry(const entry&) = delete;
        entry& operator=(const entry&) = delete;

        bool scheduled() const noexcept { return wheel_ != nullptr; }

    protected:
        ~entry() { cancel(); }
        /// Its tick came: `now` is at or after the time it was scheduled for. The entry is
        /// unlinked; scheduling it again from here is allowed.
        virtual void on_due(clock::time_point now) = 0;
        /// Unlinks it (nothing fires).
        void cancel() noexcept;

    private:
        friend class deadline_wheel;
        entry* prev_ = nullptr;
        entry* next_ = nullptr;
        deadline_wheel* wheel_ = nullptr; // linked into it, or null
        std::uint64_t tick_ = 0;          // the tick it fires at
        std::size_t list_ = 0;            // which list holds it (a slot, or the firing list)
    };

    explicit deadline_wheel(boost::asio::io_context& io, clock::time_point origin = clock::now());
    deadline_wheel(const deadline_wheel&) = delete;
    deadline_wheel& operator=(const deadline_wheel&) = delete;
    ~deadline_wheel();

    /// Fires e at the first tick at or after `at`. An entry already due earlier keeps its
    /// earlier tick (its owner re-checks and reschedules when it fires).
    void schedule(entry& e, clock::time_point at);

    /// Fires every entry whose tick is at or before `now` (the timer calls this; tests may
    /// drive it directly).
    void run_due(clock::time_point now);

    std::size_t size() const noexcept { return size_; }
    /// When the timer wakes the wheel next (max: it sleeps).
    clock::time_point wakes_at() const noexcept { return timer_armed_ ? time_of(timer_tick_) : clock::time_point::max(); }
    /// Stops the timer (the worker's loop is ending); entries stay linked.
    void stop();

private:
    static constexpr std::size_t firing_list = slot_count;

    std::uint64_t tick_at_or_after(clock::time_point t) const noexcept;
    clock::time_point time_of(std::uint64_t tick) const noexcept { return origin_ + tick * deadline_wheel::tick; }
    void link(entry& e, std::size_t list) noexcept;
    void unlink(entry& e) noexcept;
    /// The next tick whose slot holds an entry (scans at most one revolution).
    std::uint64_t next_occupied_tick() const noexcept;
    void arm(std::uint64_t tick);
    void on_timer(boost::system::error_code ec);

    clock::time_point origin_;
    std::uint64_t done_tick_ = 0; // every slot up to this tick has fired
    std::array<entry*, slot_count + 1> heads_{};
    std::size_t size_ = 0;
    boost::asio::steady_timer timer_;
    std::uint64_t timer_tick_ = 0; // the tick the timer is set for (valid while timer_armed_)
    bool timer_armed_ = false;
    bool stopped_ = false;
};

} // namespace turnout::net
