#include "turnout/net/io_backend.hpp"

#include <cstdlib>
#include <cstring>
#include <fstream>

#if defined(BOOST_ASIO_HAS_IO_URING) && defined(BOOST_ASIO_DISABLE_EPOLL)
#include <liburing.h>
#define TURNOUT_ON_IO_URING 1
#endif

namespace turnout::net {

std::string_view to_string(io_backend b) noexcept
{
    return b == io_backend::io_uring ? "io_uring" : "epoll";
}

io_backend built_io_backend() noexcept
{
#ifdef TURNOUT_ON_IO_URING
    return io_backend::io_uring;
#else
    return io_backend::epoll;
#endif
}

#ifdef TURNOUT_ON_IO_URING
namespace {

// The kernel's own switch (Linux 6.6+): 1 = only the io_uring group, 2 = nobody.
std::string disabled_by_sysctl()
{
    std::ifstream in("/proc/sys/kernel/io_uring_disabled");
    int value = 0;
    if (!(in >> value) || value == 0)
        return {};
    return " (kernel.io_uring_disabled = " + std::to_string(value) + ")";
}

} // namespace
#endif

std::string io_uring_unavailable()
{
#ifdef TURNOUT_ON_IO_URING
    // The ring Asio's io_uring_service sets up (io_uring_queue_init), made and let go.
    io_uring ring{};
    const int rc = ::io_uring_queue_init(16, &ring, 0);
    if (rc == 0) {
        ::io_uring_queue_exit(&ring);
        return {};
    }
    return "io_uring_setup failed: " + std::string(std::strerror(-rc)) + disabled_by_sysctl();
#else
    return "this build of turnout has no io_uring (built without liburing)";
#endif
}

io_choice choose_io_backend(config::io_backend_setting requested, io_backend built, std::string_view uring_unavailable)
{
    using setting = config::io_backend_setting;
    using action = io_choice::action;
    const bool on_uring = built == io_backend::io_uring;
    switch (requested) {
    case setting::epoll:
        if (on_uring)
            return {action::become_epoll, "[proxy] io_backend = \"epoll\""};
        return {action::run, {}};
    case setting::io_uring:
        if (!on_uring)
            return {action::refuse, "[proxy] io_backend = \"io_uring\", but this build of turnout has no io_uring"};
        if (!uring_unavailable.empty())
            return {action::refuse, "[proxy] io_backend = \"io_uring\", but io_uring cannot run here: " +
                                        std::string(uring_unavailable)};
        return {action::run, {}};
    case setting::automatic:
        break;
    }
    if (on_uring && !uring_unavailable.empty())
        return {action::become_epoll, "io_uring unavailable: " + std::string(uring_unavailable)};
    return {action::run, {}};
}

std::string io_backend_note()
{
    const char* note = std::getenv(io_note_variable);
    return note ? note : "";
}

} // namespace turnout::net
