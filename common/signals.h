// Process signals for the long-running commands (coordinator, worker, run,
// train, pretrain): one handler that turns SIGINT, SIGTERM and SIGUSR2 into a
// flag the work loop polls.
#pragma once

#include <atomic>

namespace promptsweep {

// SIGINT, SIGTERM and SIGUSR2 set the returned flag (first time); a second
// SIGINT exits at once (status 130). Idempotent.
const std::atomic<bool>& InstallShutdownSignals();

}  // namespace promptsweep
