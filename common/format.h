// Human-readable figures for progress lines and status tables.
#pragma once

#include <string>
#include <vector>

namespace promptsweep {

// "45s", "1m23s", "2h5m" ("?" when not finite or negative).
std::string FormatDuration(double seconds);

// Left-aligned columns two spaces apart, one line per row (the first row is
// usually the header); rows may be ragged only in having the same size.
std::string FormatTable(const std::vector<std::vector<std::string>>& rows);

}  // namespace promptsweep
