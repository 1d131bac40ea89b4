#pragma once
// The event loop under Asio: epoll, or io_uring (a ring of submissions and completions, fewer
// system calls per request). Asio fixes it when it is compiled — io_uring needs
// BOOST_ASIO_HAS_IO_URING with BOOST_ASIO_DISABLE_EPOLL, and is then the only one — so a build
// with io_uring ships two programs: `turnout` on io_uring, and `turnout-epoll`, the same code on
// epoll, which `turnout` becomes (exec, same pid and arguments) where io_uring cannot run
// (kernel.io_uring_disabled, a seccomp filter, an old kernel) or where the configuration
// asks for epoll ([proxy] io_backend). See choose_io_backend.

#include "turnout/config/config.hpp"

#include <string>
#include <string_view>

namespace turnout::net {

enum class io_backend { epoll, io_uring };

std::string_view to_string(io_backend b) noexcept;

/// The event loop this program's Asio runs on.
io_backend built_io_backend() noexcept;

/// Empty when an io_uring instance can be set up here as Asio sets its own up; otherwise why
/// not, in words (the kernel's error, and /proc/sys/kernel/io_uring_disabled when it says
/// so). In an epoll build: that the build has no io_uring.
std::string io_uring_unavailable();

/// What start-up does with the configuration's io_backend in this program.
struct io_choice {
    enum class action {
        run,             // run here, on this program's backend
        become_epoll,    // exec turnout-epoll: io_uring is not to be used or cannot be
        refuse,          // io_uring was required and cannot run: exit with `why`
    };
    action what = action::run;
    std::string why; // for become_epoll (logged, shown in status) and refuse
};

/// requested: [proxy] io_backend; built: this program's; uring_unavailable: io_uring_unavailable()
/// (asked only of an io_uring program).
io_choice choose_io_backend(config::io_backend_setting requested, io_backend built,
                            std::string_view uring_unavailable);

/// Why this process runs on epoll although `turnout` was started (empty when it was not
/// switched): set by the switch for its successor, shown in status and logged at start.
std::string io_backend_note();

/// The environment variable that carries io_backend_note() across the exec.
inline constexpr const char* io_note_variable = "TURNOUT_IO_FALLBACK";

} // namespace turnout::net
