// The worker side of a sweep: registers with the coordinator, leases jobs
// one after another, runs each through an executor while a heartbeat thread
// keeps the lease and watches for shutdown, streams progress and reports the
// outcome. On shutdown (SIGTERM / SIGUSR2 in the CLI) the running job is
// preempted: its checkpoint goes to the coordinator, which hands it to the
// next worker. No LibTorch here: executors are injected (the train executor
// lives with the CLI; the sleep executor below exercises the orchestrator).
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "common/job.h"
#include "client/coordinator_client.h"

namespace promptsweep {

struct SweepWorkerOptions {
  ClientOptions client;
  WorkerInfo info;             // host, device, ranks, threads, memory
  int64_t max_jobs = 0;        // exit after this many jobs (0: no limit)
  double idle_exit_seconds = 0.0;  // exit when no job came for this long (0: never)
  int64_t lease_wait_ms = 2000;    // one long-poll; shutdown is noticed between polls
  // Progress goes out at most this often (plus every evaluation and the last step).
  double progress_interval_seconds = 0.5;
  // Test hook: receives each log line (no prefix) instead of the log
  // (common/log.h, component "worker <id>").
  std::function<void(const std::string&)> log;
};

// How the worker's Run ended.
struct SweepWorkerSummary {
  int64_t jobs = 0;         // attempts run to an outcome
  int64_t preempted = 0;    // handed back with a checkpoint
  std::string exit_reason;  // "shutdown", "max jobs", "idle"
};

// Thread safety: one Run at a time.
class SweepWorker {
 public:
  // `train` runs "train" jobs; `loaded_models` lists the ModelKeys it holds
  // (sent with every lease so the coordinator can prefer them).
  SweepWorker(SweepWorkerOptions options, JobExecutor train, std::function<std::vector<std::string>()> loaded_models);

  // Runs until `shutdown` becomes true or a limit is reached. Error when the
  // coordinator cannot be reached for reconnect_timeout or refuses the worker.
  SweepWorkerSummary Run(const std::atomic<bool>& shutdown);

 private:
  void Register();
  // Runs one leased job to its report.
  void RunJob(const JobSpec& job, const std::atomic<bool>& shutdown, SweepWorkerSummary& summary);
  enum class Level { kInfo, kWarn };
  void Log(Level level, const std::string& line) const;

  SweepWorkerOptions options_;
  JobExecutor train_;
  std::function<std::vector<std::string>()> loaded_models_;
  CoordinatorClient client_;
  std::string worker_id_;
  int64_t heartbeat_interval_ms_ = 10000;
};

// The "sleep" job kind: sleeps the job's `seconds` setting (default 1),
// stopping early when asked, and succeeds with nothing but its wall time.
JobOutcome RunSleepJob(const JobSpec& job, const JobContext& context);

}  // namespace promptsweep
