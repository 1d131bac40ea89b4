#pragma once
// SIGHUP and `turnoutctl reload`: read the configuration file again and make it the running
// one without dropping any connection, session or runtime change. A configuration that does
// not load (syntax, a certificate, a backend that does not resolve) changes nothing.

#include "turnout/admin/control.hpp"
#include "turnout/control/publisher.hpp"
#include "turnout/service/reporter.hpp"

#include <string>

namespace turnout::control {

class reloader {
public:
    reloader(std::string config_path, publisher& p, service::reporter& service)
        : config_path_(std::move(config_path)), publisher_(p), service_(service)
    {
    }

    const std::string& config_path() const noexcept { return config_path_; }

    /// 200 {"reloaded":true}, or 400 with why the running configuration stays.
    admin::result reload();

private:
    std::string config_path_;
    publisher& publisher_;
    service::reporter& service_;
};

} // namespace turnout::control
