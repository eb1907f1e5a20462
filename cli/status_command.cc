// `promptsweep status [SWEEP] [--watch]`: a sweep's jobs and progress bar.
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <iostream>
#include <memory>
#include <thread>

#include <CLI/CLI.hpp>

#include "cli/commands.h"
#include "client/coordinator_client.h"
#include "client/coordinator_flags.h"
#include "client/status_text.h"
#include "common/signals.h"

namespace promptsweep::cli {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

struct StatusArgs {
  CoordinatorFlags coordinator;
  std::string sweep;
  bool watch = false;
  double interval = 2.0;
};

void RunStatus(StatusArgs& args) {
  CoordinatorClient client(args.coordinator.Options());
  client.Handshake();
  if (args.sweep.empty()) {
    const std::vector<std::string> names = client.SweepNames();
    if (names.empty()) std::cout << "no sweeps (submit one with promptsweep submit SWEEP.yaml)\n";
    for (const std::string& name : names) std::cout << name << "  " << ProgressLine(client.Status(name, false)) << "\n";
    return;
  }
  if (!args.watch) {
    PrintStatusTable(client.Status(args.sweep, /*with_jobs=*/true), std::cout);
    return;
  }
  const std::atomic<bool>& shutdown = InstallShutdownSignals();
  const bool tty = isatty(STDOUT_FILENO) != 0;
  while (!shutdown.load()) {
    const SweepStatus status = client.Status(args.sweep, false);
    std::cout << (tty ? "\r\033[K" : "") << ProgressLine(status) << (tty ? "" : "\n") << std::flush;
    if (status.done) break;
    std::this_thread::sleep_for(std::chrono::duration<double>(args.interval));
  }
  if (tty) std::cout << "\n";
}

}  // namespace

void AddStatusCommand(CLI::App& app) {
  auto args = std::make_shared<StatusArgs>();
  CLI::App* cmd = app.add_subcommand(
      "status",
      "Show a sweep: one line per job (state, attempt, step, loss, best dev metric, swept values, worker) and a "
      "progress bar with the best metric so far and an ETA. Without a sweep name: every sweep's progress bar.");
  args->coordinator.Add(cmd);
  cmd->add_option("sweep", args->sweep, "sweep name")->type_name("SWEEP");
  cmd->add_flag("-w,--watch", args->watch, "redraw the progress bar until the sweep is done");
  cmd->add_option("--interval", args->interval, "seconds between redraws (default 2)");
  cmd->callback([args] { RunStatus(*args); });
}

}  // namespace promptsweep::cli
