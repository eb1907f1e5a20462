// What the orchestration subcommands (coordinator, worker, submit, status,
// cancel, wait, run) share: the coordinator flags, turning a read sweep into
// a submission, and the status display.
#pragma once

#include <atomic>
#include <ostream>
#include <string>

#include "coordinator/coordinator_client.h"
#include "coordinator/scheduler.h"
#include "coordinator/sweep_spec.h"

namespace CLI {
class App;
}  // namespace CLI

namespace promptsweep::cli {

// --coordinator (PROMPTSWEEP_COORDINATOR, default 127.0.0.1:7878), --token
// (PROMPTSWEEP_TOKEN), --tls-ca, --reconnect-timeout.
struct CoordinatorFlags {
  std::string address;
  std::string token;
  std::string tls_ca;
  double reconnect_timeout_seconds = 60.0;

  void Add(CLI::App* command);
  ClientOptions Options() const;
};

// The default coordinator address.
inline constexpr const char* kDefaultCoordinator = "127.0.0.1:7878";

// Reads and validates the sweep file (the train command's schema).
Sweep ReadTrainSweep(const std::string& path);

// The submission of a read sweep; `output_dir` as given (may be empty).
SweepSubmission MakeSubmission(const Sweep& sweep, const std::string& output_dir);

// "[#######.......] 21/48 done (20 ok, 1 failed) | 2 running | best accuracy 0.7123 | 3m10s, ETA 5m2s"
std::string ProgressLine(const SweepStatus& status);

// A table of the sweep's jobs (one line each) and the progress line.
void PrintStatusTable(const SweepStatus& status, std::ostream& out);

// SIGINT, SIGTERM and SIGUSR2 set the returned flag (first time), for the
// long-running commands; a second SIGINT exits at once.
const std::atomic<bool>& InstallShutdownSignals();

}  // namespace promptsweep::cli
