// `promptsweep wait SWEEP`: until the sweep has finished; the exit code says how it went.
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

namespace promptsweep::cli {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

struct WaitArgs {
  CoordinatorFlags coordinator;
  std::string sweep;
  double timeout = 0.0;
  double interval = 5.0;
};

// Exit code 0 when every job succeeded (or was stopped early), 2 when the sweep finished with
// failed, diverged or cancelled jobs, 124 on --timeout.
void RunWait(WaitArgs& args) {
  CoordinatorClient client(args.coordinator.Options());
  client.Handshake();
  const auto start = Clock::now();
  std::string last;
  while (true) {
    const SweepStatus status = client.Status(args.sweep, false);
    const std::string line = ProgressLine(status);
    if (status.done) {
      std::cout << line << "\nresults: " << status.output_dir << "/results.csv\n";
      if (status.unsuccessful() > 0) throw CLI::RuntimeError(2);
      return;
    }
    if (line != last) std::cerr << line << std::endl;
    last = line;
    if (args.timeout > 0 && std::chrono::duration<double>(Clock::now() - start).count() >= args.timeout) {
      std::cerr << "promptsweep: wait: timed out after " << args.timeout << " s; the sweep goes on\n";
      throw CLI::RuntimeError(124);
    }
    std::this_thread::sleep_for(std::chrono::duration<double>(args.interval));
  }
}

}  // namespace

void AddWaitCommand(CLI::App& app) {
  auto args = std::make_shared<WaitArgs>();
  CLI::App* cmd = app.add_subcommand(
      "wait",
      "Wait until every job of a sweep has finished, printing progress on stderr. Exit code 0 when all "
      "succeeded or were stopped early, 2 when some failed, diverged or were cancelled, 124 after --timeout.");
  args->coordinator.Add(cmd);
  cmd->add_option("sweep", args->sweep, "sweep name")->required()->type_name("SWEEP");
  cmd->add_option("--timeout", args->timeout, "give up after this many seconds (default: never)");
  cmd->add_option("--interval", args->interval, "seconds between polls (default 5)");
  cmd->callback([args] { RunWait(*args); });
}

}  // namespace promptsweep::cli
