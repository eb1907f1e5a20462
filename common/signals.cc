#include "common/signals.h"

#include <unistd.h>

#include <csignal>

namespace promptsweep {
namespace {

std::atomic<bool> g_shutdown{false};
std::atomic<int> g_interrupts{0};

extern "C" void OnShutdownSignal(int signal) {
  if (signal == SIGINT && g_interrupts.fetch_add(1) >= 1) _exit(130);  // second Ctrl-C: now
  g_shutdown.store(true);
}

// ScopedStopSignals' flag. A lock-free atomic store is async-signal-safe.
std::atomic<bool> g_stop_requested{false};

extern "C" void OnStopSignal(int) { g_stop_requested.store(true); }

}  // namespace

const std::atomic<bool>& InstallShutdownSignals() {
  struct sigaction action = {};
  action.sa_handler = OnShutdownSignal;
  sigemptyset(&action.sa_mask);
  sigaction(SIGINT, &action, nullptr);
  sigaction(SIGTERM, &action, nullptr);
  sigaction(SIGUSR2, &action, nullptr);
  return g_shutdown;
}

ScopedStopSignals::ScopedStopSignals() {
  g_stop_requested.store(false);
  struct sigaction action = {};
  action.sa_handler = OnStopSignal;
  action.sa_flags = SA_RESTART;  // as std::signal on glibc, which train and pretrain used
  sigemptyset(&action.sa_mask);
  sigaction(SIGINT, &action, &previous_int_);
  sigaction(SIGTERM, &action, &previous_term_);
}

ScopedStopSignals::~ScopedStopSignals() {
  sigaction(SIGINT, &previous_int_, nullptr);
  sigaction(SIGTERM, &previous_term_, nullptr);
}

const std::atomic<bool>& ScopedStopSignals::stop_requested() const { return g_stop_requested; }

}  // namespace promptsweep
