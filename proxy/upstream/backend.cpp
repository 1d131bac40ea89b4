#include "turnout/upstream/backend.hpp"

// backend is header-only today; this unit keeps the header compiling on its own.
