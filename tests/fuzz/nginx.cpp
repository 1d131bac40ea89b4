// libFuzzer target: the nginx configuration reader and the translation behind
// `turnout import nginx` and `turnout -c nginx.conf`, on arbitrary text. The reader must
// return directives or throw parse_error with "PATH:LINE: message"; the translation of
// whatever it read must finish, with a report line per directive it saw and TOML text that
// turnout's loader either accepts or rejects with a config_error. Anything else (another
// exception, a crash, a hang) is a finding.

#include "fuzz_support.hpp"

#include "turnout/config/config.hpp"
#include "turnout/nginx/reader.hpp"
#include "turnout/nginx/translator.hpp"

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace {

std::size_t count(const std::vector<turnout::nginx::directive>& list)
{
    std::size_t n = list.size();
    for (const auto& d : list) {
        FUZZ_CHECK(!d.name.empty());
        FUZZ_CHECK(d.line >= 1);
        n += count(d.block);
    }
    return n;
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size)
{
    const turnout::fuzz::exact_copy text{{reinterpret_cast<const char*>(data), size}};
    std::vector<turnout::nginx::directive> conf;
    try {
        conf = turnout::nginx::parse(text.view(), "/fuzz/nginx.conf");
    } catch (const turnout::nginx::parse_error& e) {
        FUZZ_CHECK(std::string_view(e.what()).starts_with("/fuzz/nginx.conf:"));
        FUZZ_CHECK(e.line() >= 1);
        return 0;
    }
    const auto directives = count(conf);
    const auto t = turnout::nginx::translate(conf, "/fuzz/nginx.conf");
    // A line per directive, two at most (a server without listen also reports nginx's default
    // listener; map and split_clients entries and the insides of blocks turnout does not do are
    // reported with their block).
    FUZZ_CHECK(t.report.size() <= 2 * directives);
    for (const auto& line : t.report)
        FUZZ_CHECK(line.text().starts_with("/fuzz/nginx.conf:"));
    try {
        (void)turnout::config::parse(t.toml, "/fuzz/turnout.toml");
    } catch (const turnout::config::config_error& e) {
        // The translation of nonsense may not load, but never because it is not TOML: what
        // the translation writes is always well-formed, only its values may be refused.
        FUZZ_CHECK(std::string_view(e.what()).find("invalid utf-8") == std::string_view::npos);
    }
    return 0;
}
