// The one logging facility of the coordinator, the workers and `run`: spdlog
// loggers per component, all on one stderr sink, lines like
//   [2026-12-02 19:30:01.123] [info] [worker w1] job ab12cd34 attempt 1 (train)
// User-facing CLI output (tables, progress bars, JSON, error messages) does
// not go through here: it stays on stdout/stderr as each command prints it.
#pragma once

#include <string>
#include <string_view>

#include <spdlog/spdlog.h>

namespace promptsweep {

// The logger of `component` ("coordinator", "worker w1", "run"), made on first
// use and kept for the process's lifetime. Thread safety: safe from any thread.
spdlog::logger& Logger(std::string_view component);

// Sets the level of every logger: trace, debug, info, warn, error or off.
// Error naming `where` (e.g. "--log-level") and the valid names otherwise.
void SetLogLevel(std::string_view name, std::string_view where = "--log-level");

// The level from --log-level when given, else $PROMPTSWEEP_LOG_LEVEL, else info.
void ConfigureLogging(const std::string& flag_value);

// The current level's name (for the command line of child processes).
std::string LogLevelName();

}  // namespace promptsweep
