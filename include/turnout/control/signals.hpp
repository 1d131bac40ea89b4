#pragma once
// The process's signals, as the operator's verbs: SIGTERM/SIGINT/SIGQUIT stop (drain, then
// exit), SIGHUP reloads, SIGUSR1 reopens log files (logrotate), SIGUSR2 upgrades. Registered before anything is announced, so that a stop
// signal right after "listening" drains instead of killing.

#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>

#include <functional>

namespace turnout::control {

class signals {
public:
    struct handlers {
        std::function<void()> stop;
        std::function<void()> reload;
        std::function<void()> upgrade;
        std::function<void()> reopen;
    };

    explicit signals(boost::asio::io_context& control);

    /// From now on the signals are the process's: they wait, queued, until start().
    void install();
    /// Delivers each signal to its handler (control thread) until cancel().
    void start(handlers h);
    void cancel();

private:
    void do_wait();
    void on_signal(int signal_number);

    boost::asio::signal_set set_;
    handlers handlers_;
};

} // namespace turnout::control
