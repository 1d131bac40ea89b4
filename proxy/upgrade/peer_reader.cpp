#include "turnout/upgrade/peer_reader.hpp"

#include <spdlog/spdlog.h>

#include <utility>

#include <unistd.h>

namespace turnout::upgrade {

bool peer_reader::read_locked()
{
    if (ended_)
        return false;
    const bool open = channel_.read_available();
    message m;
    for (;;) {
        const auto status = channel_.incoming().next(m);
        if (status == decoder::status::need_more)
            break;
        if (status == decoder::status::error) {
            ended_ = true;
            why_ = channel_.incoming().error();
            return false;
        }
        on_message_(m);
    }
    if (!open) {
        ended_ = true;
        if (channel_.incoming().pending() > 0)
            why_ = "the other process closed the channel in the middle of a message";
    }
    return !ended_;
}

void peer_reader::poll() noexcept
{
    try {
        std::lock_guard lock(mutex_);
        read_locked();
    } catch (const std::exception& e) {
        // A worker's lookup must not fail for it (the session is then routed by hash).
        spdlog::error("upgrade: reading the other process: {}", e.what());
    }
}

std::string peer_reader::wait(const std::function<bool()>& done, deadline until)
{
    for (;;) {
        {
            std::lock_guard lock(mutex_);
            if (!read_locked() && !done())
                return why_.empty() ? "the other process closed the channel" : why_;
        }
        if (done())
            return {};
        if (!channel_.wait_readable(until))
            return "timed out waiting for the other process";
    }
}

std::string peer_reader::start(end_handler on_end)
{
    on_end_ = std::move(on_end);
    // A duplicate: the channel keeps its own fd for writing, and the watch closes only this.
    boost::system::error_code ec;
    watch_.assign(::dup(channel_.fd()), ec);
    if (ec)
        return ec.message();
    // Bytes may have arrived since the last read: they raised no new readiness event.
    on_readable();
    return {};
}

void peer_reader::close()
{
    {
        std::lock_guard lock(mutex_);
        ended_ = true;
    }
    boost::system::error_code ignored;
    watch_.close(ignored);
}

void peer_reader::do_wait()
{
    watch_.async_wait(boost::asio::posix::descriptor_base::wait_read, [this](boost::system::error_code ec) {
        if (!ec)
            on_readable();
    });
}

void peer_reader::on_readable()
{
    std::string why;
    {
        std::lock_guard lock(mutex_);
        if (read_locked())
            return do_wait();
        why = why_;
    }
    boost::system::error_code ignored;
    watch_.close(ignored);
    if (auto done = std::exchange(on_end_, nullptr))
        done(why);
}

} // namespace turnout::upgrade
