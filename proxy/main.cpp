// turnout: the proxy daemon. Thin: parses the command line and hands over to server.

#include "turnout/config/config.hpp"
#include "turnout/control/pid_file.hpp"
#include "turnout/net/io_backend.hpp"
#include "turnout/nginx/loader.hpp"
#include "turnout/server.hpp"
#include "turnout/version.hpp"

#include "turnout/upgrade/channel.hpp"

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <filesystem>
#include <fstream>
#include <string>
#include <stdexcept>
#include <string_view>

#include <unistd.h>

namespace {

constexpr const char* default_config = "/etc/turnout/turnout.toml";

void usage(std::FILE* out)
{
    std::fprintf(out,
                 "usage: turnout [-c PATH] [-t] [-s reload|reopen|quit|stop] [--version]\n"
                 "       turnout import nginx PATH [-o FILE]\n"
                 "  -c PATH     configuration file (default %s): turnout TOML, or an nginx\n"
                 "              configuration (*.conf), translated as `import nginx` does\n"
                 "  -t          check the configuration and exit (for nginx: the report too)\n"
                 "  -s VERB     signal the process in the configuration's pid_file and exit\n"
                 "  --version   print the version and exit\n"
                 "  import nginx PATH [-o FILE]  translate an nginx configuration into turnout\n"
                 "              TOML (stdout or FILE), a report line per directive on stderr\n",
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

void print_report(const turnout::nginx::translation& t)
{
    for (const auto& line : t.report)
        std::fprintf(stderr, "%s\n", line.text().c_str());
}

/// turnout import nginx PATH [-o FILE]: 0 when everything that decides where requests go and
/// what clients get was translated, 1 otherwise (the TOML is written all the same, its gaps as
/// comments), 2 for a usage error.
int import_nginx(int argc, char** argv)
{
    std::string input, output;
    for (int i = 3; i < argc; ++i) {
        const std::string_view arg = argv[i];
        if (arg == "-o" && i + 1 < argc)
            output = argv[++i];
        else if (input.empty() && !arg.starts_with('-'))
            input = argv[i];
        else
            return usage(stderr), 2;
    }
    if (input.empty())
        return usage(stderr), 2;
    try {
        const auto t = turnout::nginx::translate_file(input);
        print_report(t);
        if (output.empty()) {
            std::fwrite(t.toml.data(), 1, t.toml.size(), stdout);
        } else {
            std::ofstream out(output, std::ios::trunc);
            if (!(out << t.toml) || !out.flush()) {
                std::fprintf(stderr, "turnout: cannot write %s\n", output.c_str());
                return 1;
            }
        }
        // What was written must load: a translation turnout itself refuses helps nobody.
        turnout::config::parse(t.toml, output.empty() ? input : output);
        if (!t.complete()) {
            std::fprintf(stderr, "turnout: some directives are untranslated (see above); the TOML marks them\n");
            return 1;
        }
        return 0;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "%s\n", e.what());
        return 1;
    }
}

/// turnout -s VERB [-c PATH]: the pid file named by that configuration's pid_file.
int send_signal(const std::string& verb, const std::string& config_path)
{
    const int sig = turnout::control::signal_for(verb);
    if (sig == 0) {
        std::fprintf(stderr, "turnout: -s takes reload, reopen, quit or stop, not '%s'\n", verb.c_str());
        return 2;
    }
    try {
        std::string pid_path;
        if (turnout::nginx::is_nginx_config(config_path)) {
            // Untranslated parts do not matter here: only the pid file's place does.
            const auto t = turnout::nginx::translate_file(config_path);
            pid_path = turnout::config::parse(t.toml, config_path).proxy.pid_file;
        } else {
            pid_path = turnout::config::load_file(config_path).proxy.pid_file;
        }
        if (pid_path.empty()) {
            std::fprintf(stderr, "turnout: %s sets no pid_file ([proxy] pid_file, or nginx's pid)\n",
                         config_path.c_str());
            return 1;
        }
        const auto pid = turnout::control::signal_process(pid_path, sig);
        std::fprintf(stderr, "turnout: sent %s to pid %d\n", verb.c_str(), static_cast<int>(pid));
        return 0;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "turnout: %s\n", e.what());
        return 1;
    }
}

/// turnout-epoll beside this program (a build tree), or where an install puts it.
std::string epoll_program()
{
    namespace fs = std::filesystem;
    std::error_code ec;
    const auto dir = fs::read_symlink("/proc/self/exe", ec).parent_path();
    for (const auto& candidate : {dir / "turnout-epoll", dir / ".." / "libexec" / "turnout" / "turnout-epoll"})
        if (::access(candidate.c_str(), X_OK) == 0)
            return candidate.lexically_normal().string();
    return (dir / "turnout-epoll").string();
}

/// The event loop (net/io_backend.hpp), before anything else starts: returns when this program
/// runs; otherwise becomes turnout-epoll (same pid, arguments and descriptors: an upgrade's
/// hand-over survives it) or exits with why.
void settle_io_backend(const std::string& config_path, char** argv)
{
    namespace net = turnout::net;
    const auto requested = turnout::nginx::load_configuration(config_path).proxy.io_backend;
    const auto built = net::built_io_backend();
    const auto choice = net::choose_io_backend(requested, built,
                                               built == net::io_backend::io_uring ? net::io_uring_unavailable() : "");
    switch (choice.what) {
    case net::io_choice::action::run:
        if (built == net::io_backend::io_uring)
            ::unsetenv(net::io_note_variable); // a predecessor's note: not this process's
        return;
    case net::io_choice::action::refuse:
        throw std::runtime_error(choice.why);
    case net::io_choice::action::become_epoll: {
        const auto program = epoll_program();
        ::setenv(net::io_note_variable, choice.why.c_str(), 1);
        ::execv(program.c_str(), argv);
        throw std::runtime_error(choice.why + "; and " + program + " could not be started: " + std::strerror(errno));
    }
    }
}

} // namespace

int main(int argc, char** argv)
{
    if (argc >= 2 && std::string_view(argv[1]) == "import") {
        if (argc < 3 || std::string_view(argv[2]) != "nginx")
            return usage(stderr), 2;
        return import_nginx(argc, argv);
    }
    std::string config_path = default_config;
    bool check_only = false;
    std::string signal_verb;
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
        } else if (arg == "-s" && i + 1 < argc) {
            signal_verb = argv[++i];
        } else if (arg == "-c" && i + 1 < argc) {
            config_path = argv[++i];
        } else {
            std::fprintf(stderr, "turnout: unknown argument '%s'\n", argv[i]);
            usage(stderr);
            return 2;
        }
    }

    if (!signal_verb.empty())
        return send_signal(signal_verb, config_path);
    try {
        if (check_only) {
            if (turnout::nginx::is_nginx_config(config_path))
                print_report(turnout::nginx::translate_file(config_path));
            turnout::check_configuration(config_path);
            std::printf("configuration ok\n");
            return 0;
        }
        settle_io_backend(config_path, argv);
        turnout::launch_info launch;
        launch.argv.assign(argv, argv + argc);
        launch.binary = own_binary(argv[0]);
        launch.upgrade_fd = upgrade_fd_from_environment();
        turnout::server server(config_path, std::move(launch));
        return server.run();
    } catch (const turnout::config::config_error& e) {
        std::fprintf(stderr, "%s\n", e.what());
        return 1;
    } catch (const turnout::nginx::parse_error& e) {
        std::fprintf(stderr, "%s\n", e.what());
        return 1;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "turnout: %s\n", e.what());
        return 1;
    }
}
