#include "turnout/control/signals.hpp"

#include <csignal>

namespace turnout::control {

signals::signals(boost::asio::io_context& control) : set_(control)
{
}

void signals::install()
{
    set_.add(SIGTERM);
    set_.add(SIGINT);
    set_.add(SIGQUIT); // nginx's graceful stop: turnout's stops are all graceful
    set_.add(SIGHUP);
    set_.add(SIGUSR1);
    set_.add(SIGUSR2);
}

void signals::start(handlers h)
{
    handlers_ = std::move(h);
    do_wait();
}

void signals::cancel()
{
    boost::system::error_code ignored;
    set_.cancel(ignored);
}

void signals::do_wait()
{
    set_.async_wait([this](boost::system::error_code ec, int signal_number) {
        if (ec)
            return;
        on_signal(signal_number);
        do_wait();
    });
}

void signals::on_signal(int signal_number)
{
    if (signal_number == SIGHUP)
        handlers_.reload();
    else if (signal_number == SIGUSR2)
        handlers_.upgrade();
    else if (signal_number == SIGUSR1)
        handlers_.reopen();
    else
        handlers_.stop();
}

} // namespace turnout::control
