#pragma once
// Reads the other process's messages during and after a hand-over: the successor reads its
// predecessor's session changes and `touched` batches, the predecessor its successor's
// session changes (version 3) and its ready. Three kinds of readers share one channel, hence
// the lock: the control thread waiting for ready, the control thread's event loop as bytes
// arrive, and any worker whose session lookup missed (poll()): the other process writes a
// session change before its client can see the session, so a lookup that reads what waits
// on the channel first sees every session the other process pinned before the request came.

#include "turnout/upgrade/channel.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>

#include <functional>
#include <mutex>
#include <string>

namespace turnout::upgrade {

class peer_reader {
public:
    /// Called for each message, on whichever thread read it, under the reader's lock.
    using message_handler = std::function<void(const message&)>;
    /// why is empty when the peer closed its end (it exited), else what broke the stream.
    using end_handler = std::function<void(const std::string& why)>;

    peer_reader(boost::asio::io_context& io, channel& ch, message_handler on_message)
        : channel_(ch), watch_(io), on_message_(std::move(on_message))
    {
    }
    peer_reader(const peer_reader&) = delete;
    peer_reader& operator=(const peer_reader&) = delete;

    /// Reads what arrived, without blocking, handing each whole message to on_message. Any
    /// thread; waits while another thread reads (and applies what it read).
    void poll() noexcept;
    /// Polls as bytes arrive until done() or until (control thread, before start()). Empty
    /// when done(), else why not.
    std::string wait(const std::function<bool()>& done, deadline until);
    /// From now on, reads on the event loop as bytes arrive; on_end once when the stream ends.
    /// An error when the channel cannot be watched.
    std::string start(end_handler on_end);
    /// Stops reading for good: after it, no thread touches the channel through this reader
    /// (control thread).
    void close();

private:
    /// Under mutex_: reads and hands out; false once the stream ended.
    bool read_locked();
    void do_wait();
    void on_readable();

    std::mutex mutex_;
    channel& channel_;
    boost::asio::posix::stream_descriptor watch_;
    message_handler on_message_;
    end_handler on_end_;
    bool ended_ = false; // under mutex_
    std::string why_;    // under mutex_: why the stream ended, empty when the peer closed it
};

} // namespace turnout::upgrade
