#pragma once
// [proxy] pid_file, nginx's habit: the running process's pid in a file, so that
// `turnout -s reload|reopen|quit|stop` (and scripts, logrotate) can find it. Written at start
// (an upgrade's successor writes its own pid: it takes the file over), removed at exit only
// while it still names this process — after an upgrade it names the successor.

#include <string>

#include <sys/types.h>

namespace turnout::control {

class pid_file {
public:
    pid_file() = default;
    /// Writes this process's pid to path (temp file + rename); an empty path does nothing.
    /// Throws std::runtime_error when it cannot be written.
    explicit pid_file(std::string path);
    ~pid_file();
    pid_file(const pid_file&) = delete;
    pid_file& operator=(const pid_file&) = delete;

    const std::string& path() const noexcept { return path_; }

private:
    std::string path_;
};

/// The pid written in path; throws std::runtime_error with a clear sentence when there is no
/// such file or it holds no pid.
pid_t read_pid(const std::string& path);

/// The verbs of `turnout -s`: reload (SIGHUP), reopen (SIGUSR1), quit (SIGQUIT: drain),
/// stop (SIGTERM: drain); 0 for any other word.
int signal_for(const std::string& verb);

/// Sends sig to the process named in the pid file at path. Throws std::runtime_error with one
/// clear line when the file names no live process or the signal cannot be sent.
pid_t signal_process(const std::string& path, int sig);

} // namespace turnout::control
