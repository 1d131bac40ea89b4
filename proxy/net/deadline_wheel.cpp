#include "turnout/net/deadline_wheel.hpp"

#include <algorithm>

namespace turnout::net {

namespace {
constexpr auto step = std::chrono::duration_cast<deadline_wheel::clock::duration>(deadline_wheel::tick).count();
} // namespace

void deadline_wheel::entry::cancel() noexcept
{
    if (wheel_)
        wheel_->unlink(*this);
}

deadline_wheel::deadline_wheel(boost::asio::io_context& io, clock::time_point origin)
    : origin_(origin), timer_(io)
{}

deadline_wheel::~deadline_wheel()
{
    // Owners may outlive the wheel (a worker's loop is destroyed after it): they must find
    // themselves unlinked.
    for (entry* head : heads_)
        for (entry* e = head; e; e = e->next_)
            e->wheel_ = nullptr;
}

std::uint64_t deadline_wheel::tick_at_or_after(clock::time_point t) const noexcept
{
    if (t <= origin_)
        return 0;
    return static_cast<std::uint64_t>(((t - origin_).count() + step - 1) / step);
}

void deadline_wheel::schedule(entry& e, clock::time_point at)
{
    if (at == clock::time_point::max())
        return; // nothing to fire
    const std::uint64_t t = std::max(tick_at_or_after(at), done_tick_ + 1);
    if (e.wheel_ == this && e.list_ != firing_list && e.tick_ <= t)
        return; // due earlier already: it re-checks then
    if (e.wheel_)
        e.wheel_->unlink(e);
    e.tick_ = t;
    link(e, t % slot_count);
    if (!stopped_ && (!timer_armed_ || t < timer_tick_))
        arm(t);
}

void deadline_wheel::run_due(clock::time_point now)
{
    const std::uint64_t target = now <= origin_ ? 0 : static_cast<std::uint64_t>((now - origin_).count() / step);
    if (target > done_tick_) {
        // Every slot between the last run and now, at most one revolution of them.
        const std::uint64_t first = std::max(done_tick_ + 1, target >= slot_count ? target - slot_count + 1 : 0);
        for (std::uint64_t k = first; k <= target; ++k) {
            for (entry* e = heads_[k % slot_count]; e;) {
                entry* next = e->next_;
                if (e->tick_ <= target) {
                    unlink(*e);
                    link(*e, firing_list);
                }
                e = next;
            }
        }
        done_tick_ = target;
    }
    if (timer_armed_ && timer_tick_ <= done_tick_)
        timer_armed_ = false; // its moment has passed (run before the timer's own wake-up)
    // One at a time from the firing list: a handler may cancel or reschedule any entry,
    // including one still waiting here.
    while (entry* e = heads_[firing_list]) {
        unlink(*e);
        e->on_due(now);
    }
    // A handler above may have armed the timer for its own, later tick: wake for the nearest.
    if (size_ > 0 && !stopped_) {
        const auto next = next_occupied_tick();
        if (!timer_armed_ || next < timer_tick_)
            arm(next);
    }
}

void deadline_wheel::stop()
{
    stopped_ = true;
    timer_armed_ = false;
    timer_.cancel();
}

void deadline_wheel::link(entry& e, std::size_t list) noexcept
{
    e.wheel_ = this;
    e.list_ = list;
    e.prev_ = nullptr;
    e.next_ = heads_[list];
    if (e.next_)
        e.next_->prev_ = &e;
    heads_[list] = &e;
    ++size_;
}

void deadline_wheel::unlink(entry& e) noexcept
{
    if (e.prev_)
        e.prev_->next_ = e.next_;
    else
        heads_[e.list_] = e.next_;
    if (e.next_)
        e.next_->prev_ = e.prev_;
    e.prev_ = e.next_ = nullptr;
    e.wheel_ = nullptr;
    if (--size_ == 0 && timer_armed_) {
        // Nothing left to wake for: a pending wait would only keep the loop busy.
        timer_armed_ = false;
        timer_.cancel();
    }
}

std::uint64_t deadline_wheel::next_occupied_tick() const noexcept
{
    for (std::uint64_t k = done_tick_ + 1; k <= done_tick_ + slot_count; ++k)
        if (heads_[k % slot_count])
            return k;
    return done_tick_ + slot_count;
}

void deadline_wheel::arm(std::uint64_t tick)
{
    timer_armed_ = true;
    timer_tick_ = tick;
    timer_.expires_at(time_of(tick));
    timer_.async_wait([this](boost::system::error_code ec) { on_timer(ec); });
}

void deadline_wheel::on_timer(boost::system::error_code ec)
{
    if (ec == boost::asio::error::operation_aborted || stopped_)
        return; // moved earlier, or nothing left
    timer_armed_ = false;
    run_due(clock::now());
}

} // namespace turnout::net
