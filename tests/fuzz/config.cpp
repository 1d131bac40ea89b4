// libFuzzer target: config::parse on arbitrary text. It must return a configuration or throw
// config::config_error; anything else (another exception, a crash, a hang) is a finding.

#include "turnout/config/config.hpp"

#include <cstddef>
#include <cstdint>
#include <string_view>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size)
{
    const std::string_view text{reinterpret_cast<const char*>(data), size};
    try {
        const auto config = turnout::config::parse(text, "/fuzz/fuzz.toml");
        (void)config;
    } catch (const turnout::config::config_error&) {
        // rejected with a message: fine
    }
    return 0;
}
