#pragma once
// The error log (spdlog's default logger, on stderr) and the access log (one line per request,
// to stderr, a file, or nowhere).

#include <spdlog/logger.h>

#include <memory>
#include <string>
#include <string_view>

namespace turnout::log {

/// Points the default logger at stderr with turnout's pattern and the given level name
/// (trace|debug|info|warn|error|critical|off).
void setup_error_log(std::string_view level);

/// The access log for target: "stderr", "off" (null), or a file path (appended to).
/// Throws spdlog::spdlog_ex when the file cannot be opened.
std::shared_ptr<spdlog::logger> make_access_log(const std::string& target);

} // namespace turnout::log
