// `promptsweep submit SWEEP.yaml`: read and validate a sweep, hand its jobs to the coordinator.
#include <chrono>
#include <filesystem>
#include <iostream>
#include <memory>
#include <thread>

#include <CLI/CLI.hpp>

#include "cli/commands.h"
#include "client/coordinator_client.h"
#include "client/coordinator_flags.h"
#include "client/submission.h"
#include "engine/job_settings.h"

namespace promptsweep::cli {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

struct SubmitArgs {
  CoordinatorFlags coordinator;
  std::string sweep_path;
  std::string output;
  int64_t max_attempts = 0;
};

void RunSubmit(SubmitArgs& args) {
  const Sweep sweep = ReadTrainSweep(args.sweep_path);  // invalid: nothing is sent
  const std::string output = args.output.empty() ? "" : fs::absolute(args.output).lexically_normal().string();
  SweepSubmission submission = MakeSubmission(sweep, output);
  submission.max_attempts = args.max_attempts;
  CoordinatorClient client(args.coordinator.Options());
  client.Handshake();
  const SubmitResult result = client.Submit(submission);
  std::cout << "sweep " << result.sweep << ": " << SweepSummary(sweep) << "; " << result.added << " new, "
            << result.existing << " already known\nresults: " << result.output_dir << "/results.csv\n";
  for (const std::string& warning : sweep.warnings) std::cerr << "promptsweep: warning: " << warning << "\n";
}

}  // namespace

void AddSubmitCommand(CLI::App& app) {
  auto args = std::make_shared<SubmitArgs>();
  CLI::App* cmd = app.add_subcommand(
      "submit",
      "Read and validate a sweep YAML (nothing is sent if it is invalid) and submit its jobs to the coordinator. "
      "Submitting the same sweep again adds only the jobs the coordinator does not have: job ids are a hash of "
      "every setting.");
  args->coordinator.Add(cmd);
  cmd->add_option("sweep", args->sweep_path, "sweep YAML file")->required()->type_name("SWEEP.yaml");
  cmd->add_option("--output", args->output,
                  "output directory for adapters/, results.csv and metrics.csv, as a path on the coordinator's "
                  "machine (default: the coordinator's STATE_DIR/sweeps/<name>)")
      ->type_name("DIR");
  cmd->add_option("--max-attempts", args->max_attempts, "attempts per job (default: the coordinator's)");
  cmd->callback([args] { RunSubmit(*args); });
}

}  // namespace promptsweep::cli
