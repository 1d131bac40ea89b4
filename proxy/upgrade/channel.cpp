#include "turnout/upgrade/channel.hpp"

#include "turnout/service/notifier.hpp"

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstring>

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

extern char** environ;

namespace turnout::upgrade {
namespace {

constexpr std::size_t max_fds_per_read = 16;

/// poll() for events on fd until `until`; false on timeout.
bool wait_for(int fd, short events, deadline until)
{
    for (;;) {
        const auto left =
            std::chrono::duration_cast<std::chrono::milliseconds>(until - std::chrono::steady_clock::now());
        if (left.count() <= 0)
            return false;
        pollfd p{fd, events, 0};
        const int n = ::poll(&p, 1, static_cast<int>(std::min<std::int64_t>(left.count(), 1000)));
        if (n > 0)
            return true;
        if (n < 0 && errno != EINTR)
            return true; // let the following read/write report the error
    }
}

std::string errno_text(const char* what)
{
    return std::string(what) + ": " + std::strerror(errno);
}

} // namespace

channel::channel(int fd) : fd_(fd)
{
    const int flags = ::fcntl(fd_, F_GETFL);
    if (flags >= 0)
        ::fcntl(fd_, F_SETFL, flags | O_NONBLOCK);
    ::fcntl(fd_, F_SETFD, FD_CLOEXEC);
}

channel::~channel()
{
    for (const int fd : received_fds_)
        ::close(fd);
    if (fd_ >= 0)
        ::close(fd_);
}

std::string channel::send(const message& m, deadline until, int passed_fd)
{
    const auto frame = encode(m);
    if (passed_fd < 0)
        return send_bytes(frame, until);
    // The fd rides on the frame's first bytes; the rest goes as ordinary bytes.
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
    iovec iov{const_cast<char*>(frame.data()), frame.size()};
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control;
    msg.msg_controllen = sizeof control;
    auto* c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int));
    std::memcpy(CMSG_DATA(c), &passed_fd, sizeof(int));
    for (;;) {
        const auto n = ::sendmsg(fd_, &msg, MSG_NOSIGNAL);
        if (n >= 0)
            return send_bytes(std::string_view(frame).substr(static_cast<std::size_t>(n)), until);
        if (errno == EINTR)
            continue;
        if (errno != EAGAIN && errno != EWOULDBLOCK)
            return errno_text("sending a listening socket");
        if (!wait_for(fd_, POLLOUT, until))
            return "timed out sending a listening socket";
    }
}

std::string channel::send_bytes(std::string_view bytes, deadline until)
{
    while (!bytes.empty()) {
        const auto n = ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL);
        if (n >= 0) {
            bytes.remove_prefix(static_cast<std::size_t>(n));
            continue;
        }
        if (errno == EINTR)
            continue;
        if (errno != EAGAIN && errno != EWOULDBLOCK)
            return errno_text("writing to the other process");
        if (!wait_for(fd_, POLLOUT, until))
            return "timed out writing to the other process";
    }
    return {};
}

bool channel::wait_readable(deadline until)
{
    return wait_for(fd_, POLLIN, until);
}

bool channel::read_available()
{
    char buffer[16384];
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * max_fds_per_read)];
    for (;;) {
        iovec iov{buffer, sizeof buffer};
        msghdr msg{};
        msg.msg_iov = &iov;
        msg.msg_iovlen = 1;
        msg.msg_control = control;
        msg.msg_controllen = sizeof control;
        const auto n = ::recvmsg(fd_, &msg, MSG_CMSG_CLOEXEC);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return errno == EAGAIN || errno == EWOULDBLOCK;
        }
        for (auto* c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
            if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
                continue;
            const std::size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
            for (std::size_t i = 0; i < count; ++i) {
                int fd;
                std::memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
                received_fds_.push_back(fd);
            }
        }
        if (n == 0)
            return false; // the peer closed its end
        decoder_.feed(std::string_view(buffer, static_cast<std::size_t>(n)));
        if (static_cast<std::size_t>(n) < sizeof buffer)
            return true;
    }
}

std::string channel::receive(message& out, deadline until)
{
    for (;;) {
        switch (decoder_.next(out)) {
        case decoder::status::message:
            return {};
        case decoder::status::error:
            return decoder_.error();
        case decoder::status::need_more:
            break;
        }
        if (!wait_for(fd_, POLLIN, until))
            return "timed out waiting for the other process";
        if (!read_available()) {
            if (decoder_.pending() > 0)
                return "the other process closed the channel in the middle of a message";
            return "the other process closed the channel";
        }
    }
}

int channel::take_fd()
{
    if (received_fds_.empty())
        return -1;
    const int fd = received_fds_.front();
    received_fds_.pop_front();
    return fd;
}

// ---- forwarding -----------------------------------------------------------------------------

void session_forwarder::learned(const session::session_key& key, session::backend_id owner)
{
    const auto* b = registry_.get(owner);
    if (!b)
        return;
    enqueue(upgrade::learned{key, b->address()});
}

void session_forwarder::forgot(const session::session_key& key)
{
    enqueue(upgrade::forgot{key});
}

bool session_forwarder::touched(const std::vector<session::session_key>& keys)
{
    std::lock_guard lock(mutex_);
    if (stopped_)
        return true; // nobody to tell: the keys are not owed to anyone
    if (pending_.size() > max_backlog)
        return false;
    for (std::size_t i = 0; i < keys.size(); i += max_touched_keys) {
        const auto end = std::min(keys.size(), i + max_touched_keys);
        pending_ += encode(upgrade::touched{{keys.begin() + static_cast<std::ptrdiff_t>(i),
                                             keys.begin() + static_cast<std::ptrdiff_t>(end)}});
    }
    write_pending();
    return true;
}

void session_forwarder::enqueue(const message& m)
{
    auto frame = encode(m);
    std::lock_guard lock(mutex_);
    if (stopped_)
        return;
    pending_ += frame;
    ++forwarded_;
    write_pending();
}

void session_forwarder::write_pending()
{
    while (!pending_.empty() && !stopped_) {
        const auto n = ::send(channel_.fd(), pending_.data(), pending_.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n > 0) {
            pending_.erase(0, static_cast<std::size_t>(n));
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return;      // flush() or the next delta tries again
        stopped_ = true; // the successor is gone: nobody to tell
        pending_.clear();
    }
}

std::string session_forwarder::send_first(const std::function<std::string()>& make, deadline until)
{
    std::lock_guard lock(mutex_);
    auto error = channel_.send_bytes(make(), until);
    if (!error.empty())
        stopped_ = true;
    return error;
}

std::string session_forwarder::send(const message& m, deadline until)
{
    std::lock_guard lock(mutex_);
    if (stopped_)
        return "the other process is gone";
    pending_ += encode(m);
    auto error = channel_.send_bytes(pending_, until);
    pending_.clear();
    if (!error.empty())
        stopped_ = true;
    return error;
}

void session_forwarder::flush()
{
    std::lock_guard lock(mutex_);
    write_pending();
}

void session_forwarder::stop()
{
    std::lock_guard lock(mutex_);
    stopped_ = true;
    pending_.clear();
}

std::uint64_t session_forwarder::forwarded() const
{
    std::lock_guard lock(mutex_);
    return forwarded_;
}

// ---- the successor process ------------------------------------------------------------------

namespace {

bool has_name(std::string_view assignment, std::string_view name)
{
    return assignment.size() > name.size() && assignment.substr(0, name.size()) == name &&
           assignment[name.size()] == '=';
}

const char* value_of(char** env, std::string_view name)
{
    for (char** e = env; e && *e; ++e)
        if (has_name(*e, name))
            return *e + name.size() + 1;
    return nullptr;
}

} // namespace

successor_environment::successor_environment(char** parent, pid_t self)
{
    // Appended, not `std::string(..) + ".."`: GCC 12 warns (wrongly) about the latter here.
    fd_assignment_.append(fd_variable).append("=3");
    version_assignment_.append(version_variable).append("=").append(announced_version(self));
    // Watched by the service manager's watchdog: then so is whoever takes over from us.
    watchdog_ =
        service::parse_watchdog(value_of(parent, "WATCHDOG_USEC"), value_of(parent, "WATCHDOG_PID"), self)
            .has_value();
    for (char** e = parent; e && *e; ++e) {
        const std::string_view a(*e);
        if (has_name(a, fd_variable) || has_name(a, version_variable) ||
            (watchdog_ && has_name(a, "WATCHDOG_PID")))
            continue;
        pointers_.push_back(*e);
    }
    pointers_.push_back(fd_assignment_.data());
    pointers_.push_back(version_assignment_.data());
    if (watchdog_) {
        set_pid(self); // a placeholder of the right shape until the child knows its pid
        pointers_.push_back(watchdog_pid_);
    }
    pointers_.push_back(nullptr);
}

void successor_environment::set_pid(pid_t pid) noexcept
{
    // No std::to_string here: this runs between fork and exec.
    static constexpr char prefix[] = "WATCHDOG_PID=";
    char digits[16];
    std::size_t n = 0;
    auto v = static_cast<unsigned long>(pid > 0 ? pid : 0);
    do {
        digits[n++] = static_cast<char>('0' + v % 10);
        v /= 10;
    } while (v != 0 && n < sizeof digits);
    std::size_t at = 0;
    for (; prefix[at] != '\0'; ++at)
        watchdog_pid_[at] = prefix[at];
    while (n > 0)
        watchdog_pid_[at++] = digits[--n];
    watchdog_pid_[at] = '\0';
}

pid_t spawn_successor(const std::string& binary, const std::vector<std::string>& argv, int child_fd)
{
    // Everything the child needs is built before fork: between fork and exec a threaded
    // process may only make async-signal-safe calls.
    successor_environment env(environ, ::getpid());
    std::vector<std::string> args = argv;
    if (args.empty())
        args.push_back(binary);
    args[0] = binary;
    std::vector<char*> arg_ptrs;
    for (auto& a : args)
        arg_ptrs.push_back(a.data());
    arg_ptrs.push_back(nullptr);

    const pid_t pid = ::fork();
    if (pid != 0)
        return pid;
    // Child. Asio opens sockets without CLOEXEC: without the close_range below the new
    // process would hold every client connection of this one open.
    if (child_fd == 3) {
        ::fcntl(3, F_SETFD, 0);
    } else if (::dup2(child_fd, 3) < 0) {
        ::_exit(127);
    }
    ::close_range(4, ~0u, 0);
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    ::signal(SIGPIPE, SIG_DFL);
    env.set_pid(::getpid());
    ::execve(binary.c_str(), arg_ptrs.data(), env.envp());
    ::_exit(127);
}

std::string describe_exit(int wait_status)
{
    if (WIFEXITED(wait_status))
        return "exited with status " + std::to_string(WEXITSTATUS(wait_status));
    if (WIFSIGNALED(wait_status))
        return "was killed by signal " + std::to_string(WTERMSIG(wait_status));
    return "stopped";
}

} // namespace turnout::upgrade
