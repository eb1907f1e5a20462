// Human-readable figures for progress lines and status tables.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace promptsweep {

// "45s", "1m23s", "2h5m" ("?" when not finite or negative).
std::string FormatDuration(double seconds);

// Left-aligned columns two spaces apart, one line per row (the first row is
// usually the header); rows may be ragged only in having the same size.
std::string FormatTable(const std::vector<std::vector<std::string>>& rows);

// The shortest text that reads back as exactly `value` (std::to_chars without
// a precision): "0.3", "1e-05", "1e+05", "123456.7", "-0"; "nan" for every NaN
// (whatever its sign bit), "inf" and "-inf". The one formatter of doubles whose
// text is data: drawn sweep values and trainer defaults (both hashed into job
// ids) and metrics.csv values.
std::string FormatShortest(double value);

// The whole of `text` as a decimal integer ("42", "-7"), else nullopt (empty,
// trailing characters, out of range).
std::optional<int64_t> ParseInteger(const std::string& text);

// The whole of `text` as a finite number (strtod syntax: "3e-4", "0.5"), else
// nullopt (empty, trailing characters, inf, nan, out of range).
std::optional<double> ParseDouble(const std::string& text);

}  // namespace promptsweep
