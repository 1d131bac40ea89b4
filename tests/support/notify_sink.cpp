// turnout-notify-sink: a fake service-manager notify socket for the integration tests (node
// has no AF_UNIX datagram sockets). Binds PATH (or the abstract @NAME), prints "bound", then
// one line per datagram received: the datagram as a JSON string, so newlines inside survive.
// Exits on SIGTERM, or by itself after --lifetime-s seconds (default 600) so it cannot linger.

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>

namespace {

std::string json_string(std::string_view text)
{
    std::string out = "\"";
    for (const unsigned char ch : text) {
        switch (ch) {
        case '"': out += "\\\""; break;
        case '\\': out += "\\\\"; break;
        case '\n': out += "\\n"; break;
        default:
            if (ch < 0x20) {
                char escaped[8];
                std::snprintf(escaped, sizeof escaped, "\\u%04x", ch);
                out += escaped;
            } else {
                out += static_cast<char>(ch);
            }
        }
    }
    return out + "\"";
}

int fail(const char* what)
{
    std::fprintf(stderr, "turnout-notify-sink: %s: %s\n", what, std::strerror(errno));
    return 1;
}

} // namespace

int main(int argc, char** argv)
{
    if (argc < 2) {
        std::fprintf(stderr, "usage: turnout-notify-sink PATH|@NAME [--lifetime-s N]\n");
        return 2;
    }
    const std::string_view name = argv[1];
    unsigned lifetime = 600;
    if (argc >= 4 && std::string_view(argv[2]) == "--lifetime-s")
        lifetime = static_cast<unsigned>(std::strtoul(argv[3], nullptr, 10));

    sockaddr_un address{};
    address.sun_family = AF_UNIX;
    if (name.size() + 1 > sizeof address.sun_path) {
        std::fprintf(stderr, "turnout-notify-sink: name too long\n");
        return 2;
    }
    socklen_t length = 0;
    if (name.front() == '@') {
        std::memcpy(address.sun_path + 1, name.data() + 1, name.size() - 1); // sun_path[0] stays NUL
        length = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + name.size());
    } else {
        std::memcpy(address.sun_path, name.data(), name.size());
        length = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + name.size() + 1);
        ::unlink(address.sun_path);
    }

    const int fd = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return fail("socket");
    if (::bind(fd, reinterpret_cast<const sockaddr*>(&address), length) != 0)
        return fail("bind");
    ::alarm(lifetime);
    std::printf("bound %.*s\n", static_cast<int>(name.size()), name.data());
    std::fflush(stdout);

    char buffer[65536];
    for (;;) {
        const auto n = ::recv(fd, buffer, sizeof buffer, 0);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return fail("recv");
        }
        std::printf("%s\n", json_string(std::string_view(buffer, static_cast<std::size_t>(n))).c_str());
        std::fflush(stdout);
    }
}
