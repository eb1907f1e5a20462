// Process signals for the long-running commands (coordinator, worker, run,
// train, pretrain): handlers that turn signals into a flag the work loop
// polls, the one place promptsweep installs signal handlers.
#pragma once

#include <signal.h>

#include <atomic>

namespace promptsweep {

// SIGINT, SIGTERM and SIGUSR2 set the returned flag (first time); a second
// SIGINT exits at once (status 130). Idempotent.
const std::atomic<bool>& InstallShutdownSignals();

// While alive, SIGINT and SIGTERM set stop_requested() (every time; no second-
// SIGINT exit: `train` and `pretrain` stop between steps and write a
// checkpoint); the destructor restores the handlers there were before. The
// flag is cleared on construction. One at a time per process; not thread-safe.
class ScopedStopSignals {
 public:
  ScopedStopSignals();
  ~ScopedStopSignals();
  ScopedStopSignals(const ScopedStopSignals&) = delete;
  ScopedStopSignals& operator=(const ScopedStopSignals&) = delete;

  // The flag a signal sets; lives as long as the process.
  const std::atomic<bool>& stop_requested() const;

 private:
  struct sigaction previous_int_ {};
  struct sigaction previous_term_ {};
};

}  // namespace promptsweep
