// turnout: the proxy daemon. Thin: parses the command line and hands over to server.

#include "turnout/config/config.hpp"
#include "turnout/server.hpp"
#include "turnout/version.hpp"

#include "turnout/upgrade/channel.hpp"

#include <cstdio>
#include <cstdlib>
#include <exception>
#include <filesystem>
#include <string>
#include <string_view>

#include <unistd.h>

namespace {

constexpr const char* default_config = "/etc/turnout/turnout.toml";

void usage(std::FILE* out)
{
    std::fprintf(out,
                 "usage: turnout [-c PATH] [-t] [--version]\n"
                 "  -c PATH     configuration file (default %s)\n"
                 "  -t          check the configuration and exit\n"
                 "  --version   print the version and exit\n",
                 default_config);
}

/// The binary an upgrade starts by default: argv[0] as the shell found it. A path stays a
/// path (so a new file installed there is what runs next); a bare name is looked up in PATH.
std::string own_binary(const char* argv0)
{
    namespace fs = std::filesystem;
    std::error_code ec;
    const std::string_view name = argv0 ? argv0 : "";
    if (name.find('/') != std::string_view::npos) {
        const auto absolute = fs::absolute(fs::path(name), ec);
        return ec ? std::string(name) : absolute.lexically_normal().string();
    }
    if (const char* path = std::getenv("PATH")) {
        std::string_view dirs = path;
        while (!name.empty()) {
            const auto colon = dirs.find(':');
            const auto candidate = fs::path(std::string(dirs.substr(0, colon))) / std::string(name);
            if (::access(candidate.c_str(), X_OK) == 0)
                return fs::absolute(candidate, ec).lexically_normal().string();
            if (colon == std::string_view::npos)
                break;
            dirs.remove_prefix(colon + 1);
        }
    }
    return fs::read_symlink("/proc/self/exe", ec).string();
}

/// The hand-over socket a predecessor passed (see upgrade/channel.hpp), or -1; the variable
/// is removed so that nothing this process starts inherits it by mistake.
int upgrade_fd_from_environment()
{
    const char* text = std::getenv(turnout::upgrade::fd_variable);
    if (!text)
        return -1;
    char* end = nullptr;
    const long fd = std::strtol(text, &end, 10);
    ::unsetenv(turnout::upgrade::fd_variable);
    return end != text && *end == '\0' && fd >= 0 && fd < 1 << 20 ? static_cast<int>(fd) : -1;
}

} // namespace

int main(int argc, char** argv)
{
    std::string config_path = default_config;
    bool check_only = false;
    for (int i = 1; i < argc; ++i) {
        const std::string_view arg = argv[i];
        if (arg == "--version" || arg == "-v") {
            std::printf("turnout %.*s\n", static_cast<int>(turnout::version().size()), turnout::version().data());
            return 0;
        }
        if (arg == "-h" || arg == "--help") {
            usage(stdout);
            return 0;
        }
        if (arg == "-t") {
            check_only = true;
        } else if (arg == "-c" && i + 1 < argc) {
            config_path = argv[++i];
        } else {
            std::fprintf(stderr, "turnout: unknown argument '%s'\n", argv[i]);
            usage(stderr);
            return 2;
        }
    }

    try {
        if (check_only) {
            turnout::check_configuration(config_path);
            std::printf("configuration ok\n");
            return 0;
        }
        turnout::launch_info launch;
        launch.argv.assign(argv, argv + argc);
        launch.binary = own_binary(argv[0]);
        launch.upgrade_fd = upgrade_fd_from_environment();
        turnout::server server(config_path, std::move(launch));
        return server.run();
    } catch (const turnout::config::config_error& e) {
        std::fprintf(stderr, "%s\n", e.what());
        return 1;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "turnout: %s\n", e.what());
        return 1;
    }
}
