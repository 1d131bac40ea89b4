#include "turnout/log/logging.hpp"

#include <spdlog/details/file_helper.h>
#include <spdlog/sinks/base_sink.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <mutex>
#include <vector>

namespace turnout::log {

namespace {

// spdlog's basic_file_sink, plus reopen(): logrotate renames the file and signals; lines
// written after that go to a fresh file of the same name.
class reopenable_file_sink final : public spdlog::sinks::base_sink<std::mutex> {
public:
    explicit reopenable_file_sink(const std::string& path) { file_.open(path, false); }

    void reopen()
    {
        std::lock_guard<std::mutex> lock(mutex_);
        file_.reopen(false);
    }

    const std::string& path() const { return file_.filename(); }

protected:
    void sink_it_(const spdlog::details::log_msg& msg) override
    {
        spdlog::memory_buf_t formatted;
        formatter_->format(msg, formatted);
        file_.write(formatted);
    }
    void flush_() override { file_.flush(); }

private:
    spdlog::details::file_helper file_;
};

// The file sinks in use (a snapshot holds its logger, hence its sink, while any exchange of
// it lives): weak, so a sink goes when its last snapshot does.
std::mutex registry_mutex;
std::vector<std::weak_ptr<reopenable_file_sink>> registry;

void remember(const std::shared_ptr<reopenable_file_sink>& sink)
{
    std::lock_guard<std::mutex> lock(registry_mutex);
    std::erase_if(registry, [](const auto& w) { return w.expired(); });
    registry.push_back(sink);
}

} // namespace

void setup_error_log(std::string_view level)
{
    auto logger = spdlog::stderr_logger_mt("turnout");
    spdlog::set_default_logger(logger);
    spdlog::set_pattern("[%Y-%m-%d %H:%M:%S.%e] [%l] %v");
    spdlog::set_level(spdlog::level::from_str(std::string(level)));
    spdlog::flush_on(spdlog::level::info);
}

std::shared_ptr<spdlog::logger> make_access_log(const std::string& target, bool stamped)
{
    if (target == "off")
        return nullptr;
    std::shared_ptr<spdlog::sinks::sink> sink;
    if (target == "stderr") {
        sink = std::make_shared<spdlog::sinks::stderr_sink_mt>();
    } else {
        auto file = std::make_shared<reopenable_file_sink>(target);
        remember(file);
        sink = std::move(file);
    }
    auto logger = std::make_shared<spdlog::logger>("access", std::move(sink));
    logger->set_pattern(stamped ? "[%Y-%m-%d %H:%M:%S.%e] %v" : "%v");
    logger->set_level(spdlog::level::info);
    logger->flush_on(spdlog::level::info);
    return logger;
}

std::size_t reopen_log_files()
{
    std::vector<std::shared_ptr<reopenable_file_sink>> live;
    {
        std::lock_guard<std::mutex> lock(registry_mutex);
        for (const auto& w : registry)
            if (auto s = w.lock())
                live.push_back(std::move(s));
    }
    std::size_t reopened = 0;
    for (const auto& sink : live) {
        try {
            sink->reopen();
            ++reopened;
        } catch (const std::exception& e) {
            spdlog::error("reopening the access log {}: {}", sink->path(), e.what());
        }
    }
    return reopened;
}

} // namespace turnout::log
