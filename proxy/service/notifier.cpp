#include "turnout/service/notifier.hpp"

#include <spdlog/spdlog.h>

#include <cerrno>
#include <charconv>
#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <utility>

#include <unistd.h>

namespace turnout::service {
namespace {

/// systemd keeps STATUS= for display; a screenful is plenty.
constexpr std::size_t max_status_bytes = 480;

std::string one_line(std::string_view text)
{
    std::string out{text.substr(0, max_status_bytes)};
    for (auto& ch : out) {
        if (ch == '\n' || ch == '\r')
            ch = ' ';
    }
    return out;
}

std::string with_status(std::string message, std::string_view status)
{
    if (!status.empty())
        message += "\nSTATUS=" + one_line(status);
    return message;
}

} // namespace

std::optional<notify_address> parse_notify_socket(std::string_view value)
{
    notify_address out;
    out.address.sun_family = AF_UNIX;
    constexpr auto base = offsetof(sockaddr_un, sun_path);
    if (value.size() >= 2 && value.front() == '@') {
        // Abstract: a leading NUL, then the name; the length counts no terminator.
        const auto name = value.substr(1);
        if (name.size() + 1 > sizeof out.address.sun_path)
            return std::nullopt;
        out.address.sun_path[0] = '\0';
        std::memcpy(out.address.sun_path + 1, name.data(), name.size());
        out.length = static_cast<socklen_t>(base + 1 + name.size());
        return out;
    }
    if (value.size() >= 2 && value.front() == '/') {
        if (value.size() + 1 > sizeof out.address.sun_path || value.find('\0') != std::string_view::npos)
            return std::nullopt;
        std::memcpy(out.address.sun_path, value.data(), value.size());
        out.address.sun_path[value.size()] = '\0';
        out.length = static_cast<socklen_t>(base + value.size() + 1);
        return out;
    }
    return std::nullopt;
}

std::optional<std::chrono::microseconds> parse_watchdog(const char* watchdog_usec, const char* watchdog_pid, pid_t pid)
{
    if (!watchdog_usec)
        return std::nullopt;
    const std::string_view text{watchdog_usec};
    std::uint64_t usec = 0;
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), usec);
    if (ec != std::errc{} || end != text.data() + text.size() || usec == 0)
        return std::nullopt;
    if (watchdog_pid) {
        const std::string_view pid_text{watchdog_pid};
        long long named = 0;
        const auto [pid_end, pid_ec] = std::from_chars(pid_text.data(), pid_text.data() + pid_text.size(), named);
        if (pid_ec != std::errc{} || pid_end != pid_text.data() + pid_text.size() || named != pid)
            return std::nullopt; // meant for another process (we inherited it)
    }
    return std::chrono::microseconds(usec);
}

std::string ready_message(std::string_view status) { return with_status("READY=1", status); }

std::string reloading_message(std::uint64_t monotonic, std::string_view status)
{
    return with_status("RELOADING=1\nMONOTONIC_USEC=" + std::to_string(monotonic), status);
}

std::string stopping_message(std::string_view status) { return with_status("STOPPING=1", status); }

std::string status_message(std::string_view status) { return "STATUS=" + one_line(status); }

std::string main_pid_message(pid_t pid) { return "MAINPID=" + std::to_string(pid); }

std::uint64_t monotonic_usec()
{
    timespec ts{};
    ::clock_gettime(CLOCK_MONOTONIC, &ts);
    return static_cast<std::uint64_t>(ts.tv_sec) * 1'000'000u + static_cast<std::uint64_t>(ts.tv_nsec) / 1000u;
}

notifier notifier::from_environment()
{
    const char* socket = std::getenv("NOTIFY_SOCKET");
    if (!socket || !*socket)
        return {};
    return notifier(socket, parse_watchdog(std::getenv("WATCHDOG_USEC"), std::getenv("WATCHDOG_PID"), ::getpid()));
}

notifier::notifier(std::string_view socket_value, std::optional<std::chrono::microseconds> watchdog)
    : address_(parse_notify_socket(socket_value)), watchdog_(watchdog)
{
    if (!address_) {
        spdlog::warn("NOTIFY_SOCKET \"{}\" is not a path or @abstract name: not notifying the service manager",
                     socket_value);
        watchdog_.reset();
        return;
    }
    fd_ = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd_ < 0) {
        spdlog::warn("notify socket: {}; not notifying the service manager", std::strerror(errno));
        address_.reset();
        watchdog_.reset();
    }
}

notifier::notifier(notifier&& other) noexcept
    : address_(std::exchange(other.address_, std::nullopt)),
      watchdog_(std::exchange(other.watchdog_, std::nullopt)),
      fd_(std::exchange(other.fd_, -1))
{}

notifier& notifier::operator=(notifier&& other) noexcept
{
    if (this != &other) {
        close_socket();
        address_ = std::exchange(other.address_, std::nullopt);
        watchdog_ = std::exchange(other.watchdog_, std::nullopt);
        fd_ = std::exchange(other.fd_, -1);
    }
    return *this;
}

notifier::~notifier() { close_socket(); }

void notifier::close_socket() noexcept
{
    if (fd_ >= 0)
        ::close(fd_);
    fd_ = -1;
}

bool notifier::send(std::string_view message)
{
    if (!address_)
        return true;
    const auto* target = reinterpret_cast<const sockaddr*>(&address_->address);
    for (int attempt = 0; attempt < 2; ++attempt) { // one retry after EINTR, no more
        const auto sent = ::sendto(fd_, message.data(), message.size(), MSG_NOSIGNAL | MSG_DONTWAIT, target,
                                   address_->length);
        if (sent == static_cast<ssize_t>(message.size()))
            return true;
        if (sent < 0 && errno == EINTR)
            continue;
        break;
    }
    spdlog::warn("service manager notification not delivered ({}): {}", std::strerror(errno),
                 message.substr(0, message.find('\n')));
    return false;
}

} // namespace turnout::service
