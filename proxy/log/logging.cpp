#include "turnout/log/logging.hpp"

#include <spdlog/sinks/basic_file_sink.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

namespace turnout::log {

void setup_error_log(std::string_view level)
{
    auto logger = spdlog::stderr_logger_mt("turnout");
    spdlog::set_default_logger(logger);
    spdlog::set_pattern("[%Y-%m-%d %H:%M:%S.%e] [%l] %v");
    spdlog::set_level(spdlog::level::from_str(std::string(level)));
    spdlog::flush_on(spdlog::level::info);
}

std::shared_ptr<spdlog::logger> make_access_log(const std::string& target)
{
    if (target == "off")
        return nullptr;
    std::shared_ptr<spdlog::sinks::sink> sink;
    if (target == "stderr")
        sink = std::make_shared<spdlog::sinks::stderr_sink_mt>();
    else
        sink = std::make_shared<spdlog::sinks::basic_file_sink_mt>(target);
    auto logger = std::make_shared<spdlog::logger>("access", std::move(sink));
    logger->set_pattern("[%Y-%m-%d %H:%M:%S.%e] %v");
    logger->set_level(spdlog::level::info);
    logger->flush_on(spdlog::level::info);
    return logger;
}

} // namespace turnout::log
