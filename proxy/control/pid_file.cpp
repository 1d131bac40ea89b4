#include "turnout/control/pid_file.hpp"

#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <stdexcept>
#include <string>

#include <unistd.h>

namespace turnout::control {

namespace {

pid_t read_pid_or_zero(const std::string& path)
{
    std::ifstream in(path);
    long pid = 0;
    if (!(in >> pid) || pid <= 0 || pid > 4'194'304)
        return 0;
    return static_cast<pid_t>(pid);
}

} // namespace

pid_file::pid_file(std::string path) : path_(std::move(path))
{
    if (path_.empty())
        return;
    const std::string temp = path_ + ".tmp." + std::to_string(::getpid());
    {
        std::ofstream out(temp, std::ios::trunc);
        out << ::getpid() << '\n';
        if (!out.flush())
            throw std::runtime_error("cannot write pid_file " + path_ + ": " + std::strerror(errno));
    }
    if (std::rename(temp.c_str(), path_.c_str()) != 0) {
        const int e = errno;
        std::remove(temp.c_str());
        throw std::runtime_error("cannot write pid_file " + path_ + ": " + std::strerror(e));
    }
}

pid_file::~pid_file()
{
    // After an upgrade the file names the successor, which removes it when it stops.
    if (!path_.empty() && read_pid_or_zero(path_) == ::getpid())
        std::remove(path_.c_str());
}

pid_t read_pid(const std::string& path)
{
    std::ifstream in(path);
    if (!in)
        throw std::runtime_error("cannot open pid file " + path + ": " + std::strerror(errno) +
                                 " (is turnout running?)");
    const pid_t pid = read_pid_or_zero(path);
    if (pid == 0)
        throw std::runtime_error("pid file " + path + " holds no pid");
    return pid;
}

int signal_for(const std::string& verb)
{
    if (verb == "reload")
        return SIGHUP;
    if (verb == "reopen")
        return SIGUSR1;
    if (verb == "quit")
        return SIGQUIT;
    if (verb == "stop")
        return SIGTERM;
    return 0;
}

pid_t signal_process(const std::string& path, int sig)
{
    const pid_t pid = read_pid(path);
    if (::kill(pid, sig) != 0) {
        const int e = errno;
        throw std::runtime_error(e == ESRCH ? "no process with pid " + std::to_string(pid) + " (from " + path +
                                                  "): turnout is not running"
                                            : "cannot signal pid " + std::to_string(pid) + ": " + std::strerror(e));
    }
    return pid;
}

} // namespace turnout::control
