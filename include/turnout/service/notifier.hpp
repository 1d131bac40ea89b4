#pragma once
// The service manager's notify-socket protocol (sd_notify(3)), spoken directly: no libsystemd.
// NOTIFY_SOCKET names an AF_UNIX datagram socket, a path ("/run/systemd/notify") or an
// abstract name ("@name"); each datagram is newline-separated VAR=VALUE assignments.
// Without NOTIFY_SOCKET every call is a no-op. Sends never block: a datagram the manager
// cannot take at once is dropped (and logged), the proxy keeps running.

#include <sys/socket.h>
#include <sys/types.h>
#include <sys/un.h>

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace turnout::service {

/// A notify socket address as sendto() wants it.
struct notify_address {
    sockaddr_un address{};
    socklen_t length = 0;
};

/// Parses a NOTIFY_SOCKET value: an absolute path, or '@' + an abstract name. nullopt for
/// anything else (empty, relative, too long for sun_path, other schemes such as vsock:).
std::optional<notify_address> parse_notify_socket(std::string_view value);

/// The watchdog interval systemd asks for (sd_watchdog_enabled(3)): WATCHDOG_USEC when it is a
/// positive integer and WATCHDOG_PID is unset or names pid; nullopt otherwise.
std::optional<std::chrono::microseconds> parse_watchdog(const char* watchdog_usec, const char* watchdog_pid,
                                                        pid_t pid);

// Message text. STATUS values are one line: newlines become spaces, and long ones are cut.
std::string ready_message(std::string_view status = {});
/// systemd >= 253 pairs RELOADING=1 with the CLOCK_MONOTONIC time of the request; earlier
/// versions ignore the extra field.
std::string reloading_message(std::uint64_t monotonic_usec, std::string_view status = {});
std::string stopping_message(std::string_view status = {});
std::string status_message(std::string_view status);
std::string main_pid_message(pid_t pid);
inline constexpr std::string_view watchdog_message = "WATCHDOG=1";

/// CLOCK_MONOTONIC now, in microseconds.
std::uint64_t monotonic_usec();

class notifier {
public:
    /// Reads NOTIFY_SOCKET, WATCHDOG_USEC and WATCHDOG_PID; changes nothing in the
    /// environment (a binary upgrade's new process needs NOTIFY_SOCKET to announce itself).
    static notifier from_environment();

    notifier() = default; // disabled
    explicit notifier(std::string_view socket_value,
                      std::optional<std::chrono::microseconds> watchdog = std::nullopt);
    notifier(notifier&& other) noexcept;
    notifier& operator=(notifier&& other) noexcept;
    notifier(const notifier&) = delete;
    notifier& operator=(const notifier&) = delete;
    ~notifier();

    bool enabled() const noexcept { return address_.has_value(); }
    std::optional<std::chrono::microseconds> watchdog_interval() const noexcept { return watchdog_; }

    bool ready(std::string_view status = {}) { return send(ready_message(status)); }
    bool reloading(std::string_view status = {}) { return send(reloading_message(monotonic_usec(), status)); }
    bool stopping(std::string_view status = {}) { return send(stopping_message(status)); }
    bool status(std::string_view text) { return send(status_message(text)); }
    /// For a new process that takes over from the old one (binary upgrade): it becomes the
    /// service's main process. Needs NotifyAccess=all when sent by the new process itself.
    bool main_pid(pid_t pid) { return send(main_pid_message(pid)); }
    bool watchdog() { return send(watchdog_message); }

    /// Sends one datagram; true when the manager got it (or when disabled: nothing to do).
    bool send(std::string_view message);

private:
    void close_socket() noexcept;

    std::optional<notify_address> address_;
    std::optional<std::chrono::microseconds> watchdog_;
    int fd_ = -1;
};

} // namespace turnout::service
