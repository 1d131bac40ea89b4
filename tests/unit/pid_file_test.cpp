#include "turnout/control/pid_file.hpp"

#include <doctest/doctest.h>

#include <csignal>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <string>

#include <sys/wait.h>
#include <unistd.h>

using namespace turnout::control;
namespace fs = std::filesystem;

namespace {

fs::path temp_file(const char* name)
{
    return fs::temp_directory_path() / (std::string(name) + "." + std::to_string(::getpid()));
}

} // namespace

TEST_CASE("pid_file: written at start with this pid, removed at exit")
{
    const auto path = temp_file("turnout-pid");
    {
        pid_file file(path.string());
        CHECK(read_pid(path.string()) == ::getpid());
    }
    CHECK(!fs::exists(path));
    pid_file none; // no path: nothing written, nothing removed
}

TEST_CASE("pid_file: a successor's pid is left in place at exit (upgrade)")
{
    const auto path = temp_file("turnout-pid-upgrade");
    {
        pid_file file(path.string());
        std::ofstream(path) << 1 << "\n"; // the successor took it over
    }
    CHECK(fs::exists(path));
    CHECK(read_pid(path.string()) == 1);
    fs::remove(path);
}

TEST_CASE("-s verbs and signalling the pid in the file")
{
    CHECK(signal_for("reload") == SIGHUP);
    CHECK(signal_for("reopen") == SIGUSR1);
    CHECK(signal_for("quit") == SIGQUIT);
    CHECK(signal_for("stop") == SIGTERM);
    CHECK(signal_for("restart") == 0);

    const auto path = temp_file("turnout-pid-signal");
    CHECK_THROWS_WITH_AS(signal_process(path.string(), SIGHUP), doctest::Contains("cannot open pid file"),
                         std::runtime_error);
    std::ofstream(path) << "garbage\n";
    CHECK_THROWS_WITH_AS(read_pid(path.string()), doctest::Contains("holds no pid"), std::runtime_error);

    // The child drops the test runner's signal handlers, says so, and waits to be signalled.
    int ready[2];
    REQUIRE(::pipe(ready) == 0);
    const pid_t child = ::fork();
    REQUIRE(child >= 0);
    if (child == 0) {
        std::signal(SIGTERM, SIG_DFL);
        (void)!::write(ready[1], "r", 1);
        for (;;)
            ::pause();
    }
    char byte = 0;
    REQUIRE(::read(ready[0], &byte, 1) == 1);
    ::close(ready[0]);
    ::close(ready[1]);
    std::ofstream(path) << child << "\n";
    CHECK(signal_process(path.string(), SIGTERM) == child);
    int status = 0;
    ::waitpid(child, &status, 0);
    CHECK(WIFSIGNALED(status));
    CHECK(WTERMSIG(status) == SIGTERM);
    // now the pid names no process
    CHECK_THROWS_WITH_AS(signal_process(path.string(), SIGHUP), doctest::Contains("turnout is not running"),
                         std::runtime_error);
    fs::remove(path);
}
