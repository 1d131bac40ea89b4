#include "turnout/control/reloader.hpp"

#include "turnout/nginx/loader.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>

namespace turnout::control {
namespace {

bool same_listeners(const config::configuration& a, const config::configuration& b)
{
    return a.listeners.size() == b.listeners.size() &&
           std::equal(a.listeners.begin(), a.listeners.end(), b.listeners.begin(),
                      [](const auto& x, const auto& y) { return x.address == y.address; });
}

} // namespace

admin::result reloader::reload()
{
    spdlog::info("reloading {}", config_path_);
    service_.reloading();
    try {
        auto next = std::make_shared<const config::configuration>(nginx::load_configuration(config_path_));
        // New handshakes use the new certificates; established connections keep the context
        // they were made with (their SSL objects hold a reference to it). A bad file fails the
        // whole reload, so the running certificates stay.
        auto tls = net::build_tls_contexts(*next);
        if (!same_listeners(*next, publisher_.config()))
            spdlog::warn("reload: listener changes take effect at the next restart or upgrade");
        if (next->proxy.io_backend != publisher_.config().proxy.io_backend)
            spdlog::warn("reload: an io_backend change takes effect at the next restart or upgrade");
        publisher_.replace(next, std::move(tls));
        spdlog::set_level(spdlog::level::from_str(next->proxy.log_level));
        spdlog::info("reload done");
        service_.reloaded();
        return admin::result::ok({{"reloaded", true}});
    } catch (const std::exception& e) {
        service_.reloaded(e.what());
        return admin::result::fail(400, e.what());
    }
}

} // namespace turnout::control
