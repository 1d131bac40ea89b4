// turnout: the proxy daemon. Thin: parses the command line and hands over to server.

#include "turnout/config/config.hpp"
#include "turnout/server.hpp"
#include "turnout/version.hpp"

#include <cstdio>
#include <exception>
#include <string>
#include <string_view>

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
        turnout::server server(config_path);
        return server.run();
    } catch (const turnout::config::config_error& e) {
        std::fprintf(stderr, "%s\n", e.what());
        return 1;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "turnout: %s\n", e.what());
        return 1;
    }
}
