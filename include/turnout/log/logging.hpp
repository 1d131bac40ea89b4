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
/// stamped: each line starts with turnout's "[date time] " (the "turnout" format); the
/// combined and json formats carry their own time. Throws spdlog::spdlog_ex when the file
/// cannot be opened.
std::shared_ptr<spdlog::logger> make_access_log(const std::string& target, bool stamped = true);

/// SIGUSR1 (logrotate's postrotate): every access log file still in use is closed and opened
/// again by its path, so lines go to a new file once the old one was renamed. Returns how
/// many files were reopened; a file that cannot be opened again is logged as an error.
std::size_t reopen_log_files();

} // namespace turnout::log
