#pragma once

#include <string_view>

namespace turnout {

/// The version of this build ("0.1.0"), reported by --version, status and metrics.
std::string_view version() noexcept;

} // namespace turnout
