// `promptsweep cancel SWEEP [--job ID ...]`.
#include <chrono>
#include <filesystem>
#include <iostream>
#include <memory>
#include <thread>

#include <CLI/CLI.hpp>

#include "cli/commands.h"
#include "client/coordinator_client.h"
#include "client/coordinator_flags.h"

namespace promptsweep::cli {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

struct CancelArgs {
  CoordinatorFlags coordinator;
  std::string sweep;
  std::vector<std::string> jobs;
};

void RunCancel(CancelArgs& args) {
  CoordinatorClient client(args.coordinator.Options());
  client.Handshake();
  const int64_t n = client.Cancel(args.sweep, args.jobs);
  std::cout << "cancelled " << n << " job" << (n == 1 ? "" : "s") << " of sweep " << args.sweep << "\n";
}

}  // namespace

void AddCancelCommand(CLI::App& app) {
  auto args = std::make_shared<CancelArgs>();
  CLI::App* cmd = app.add_subcommand(
      "cancel", "Cancel a sweep's unfinished jobs (or only --job ID ...). Running jobs stop at their next heartbeat.");
  args->coordinator.Add(cmd);
  cmd->add_option("sweep", args->sweep, "sweep name")->required()->type_name("SWEEP");
  cmd->add_option("--job", args->jobs, "job id to cancel (repeatable)")->type_name("ID");
  cmd->callback([args] { RunCancel(*args); });
}

}  // namespace promptsweep::cli
