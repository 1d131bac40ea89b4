#include "turnout/control/state_store.hpp"

#include "turnout/runtime/state_file.hpp"

#include <spdlog/spdlog.h>

#include <cstdio>

namespace turnout::control {
namespace {

class file_store final : public state_store {
public:
    explicit file_store(std::string path) : path_(std::move(path)) {}

    std::optional<runtime::runtime_state> load() override
    {
        if (path_.empty())
            return std::nullopt;
        try {
            auto saved = runtime::load_state(path_);
            if (saved)
                spdlog::info("runtime state loaded from {}", path_);
            return saved;
        } catch (const std::exception& e) {
            // Keep the damaged file for a human to look at, and start from the configuration.
            const auto kept = path_ + ".damaged";
            std::rename(path_.c_str(), kept.c_str());
            spdlog::error("{}; using the configuration's state (the damaged file is kept as {})", e.what(),
                          kept);
            return std::nullopt;
        }
    }

    void save(const runtime::runtime_state& state) override
    {
        if (!path_.empty())
            runtime::save_state(path_, state);
    }

private:
    std::string path_;
};

} // namespace

std::unique_ptr<state_store> make_file_store(std::string path)
{
    return std::make_unique<file_store>(std::move(path));
}

} // namespace turnout::control
