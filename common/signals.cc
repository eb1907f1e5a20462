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

}  // namespace promptsweep
