#include "turnout/version.hpp"

namespace turnout {

std::string_view version() noexcept { return TURNOUT_VERSION; }

} // namespace turnout
