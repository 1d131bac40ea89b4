#include "turnout/net/io_backend.hpp"

#include <doctest/doctest.h>

using turnout::config::io_backend_setting;
using turnout::net::choose_io_backend;
using turnout::net::io_backend;
using action = turnout::net::io_choice::action;

TEST_CASE("io_backend auto: io_uring where it runs, turnout-epoll where it cannot, and why")
{
    CHECK(choose_io_backend(io_backend_setting::automatic, io_backend::io_uring, "").what == action::run);

    const auto c = choose_io_backend(io_backend_setting::automatic, io_backend::io_uring,
                                     "io_uring_setup failed: Operation not permitted (kernel.io_uring_disabled = 2)");
    CHECK(c.what == action::become_epoll);
    CHECK(c.why == "io_uring unavailable: io_uring_setup failed: Operation not permitted (kernel.io_uring_disabled = 2)");

    // An epoll build runs as it is, whatever io_uring could do.
    CHECK(choose_io_backend(io_backend_setting::automatic, io_backend::epoll, "no io_uring").what == action::run);
}

TEST_CASE("io_backend epoll: an io_uring build becomes turnout-epoll, an epoll build runs")
{
    const auto c = choose_io_backend(io_backend_setting::epoll, io_backend::io_uring, "");
    CHECK(c.what == action::become_epoll);
    CHECK(c.why == "[proxy] io_backend = \"epoll\"");
    CHECK(choose_io_backend(io_backend_setting::epoll, io_backend::epoll, "").what == action::run);
}

TEST_CASE("io_backend io_uring is a requirement: refused where it cannot be met, never a silent epoll")
{
    CHECK(choose_io_backend(io_backend_setting::io_uring, io_backend::io_uring, "").what == action::run);

    const auto blocked = choose_io_backend(io_backend_setting::io_uring, io_backend::io_uring, "io_uring_setup failed: x");
    CHECK(blocked.what == action::refuse);
    CHECK(blocked.why == "[proxy] io_backend = \"io_uring\", but io_uring cannot run here: io_uring_setup failed: x");

    const auto epoll_build = choose_io_backend(io_backend_setting::io_uring, io_backend::epoll, "");
    CHECK(epoll_build.what == action::refuse);
    CHECK(epoll_build.why == "[proxy] io_backend = \"io_uring\", but this build of turnout has no io_uring");
}

TEST_CASE("the unit tests' library is built on epoll and says so")
{
    CHECK(turnout::net::built_io_backend() == io_backend::epoll);
    CHECK(turnout::net::to_string(io_backend::epoll) == "epoll");
    CHECK(turnout::net::to_string(io_backend::io_uring) == "io_uring");
    CHECK_FALSE(turnout::net::io_uring_unavailable().empty());
}
