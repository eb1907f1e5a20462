// Human-readable figures for progress lines and status tables.
#pragma once

#include <string>

namespace promptsweep {

// "45s", "1m23s", "2h5m" ("?" when not finite or negative).
std::string FormatDuration(double seconds);

}  // namespace promptsweep
