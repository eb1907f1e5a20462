// The coordinator's API in plain structs: a sweep as submitted, workers,
// leases, report acknowledgements and a sweep's status. What workers and the
// CLI (client/coordinator_client.h) send and get, what the coordinator
// (coordinator/scheduler.h) takes and returns, what client/proto_convert.h
// turns into messages. No transport, no storage here.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "common/early_termination.h"
#include "common/job.h"

namespace promptsweep {

// A sweep as submitted: metadata and its expanded jobs (sweep_spec.h).
struct SweepSubmission {
  std::string name;        // identifies the sweep; resubmitting a name merges
  std::string sweep_file;  // for the record
  std::string yaml;        // the sweep file's text, kept in the state for the record
  std::string metric_name; // accuracy | exact_match | loss (results.csv columns)
  bool maximize = true;
  // Where adapters, results.csv and metrics.csv go (absolute, on the
  // coordinator's machine). Empty: STATE_DIR/sweeps/<name>.
  std::string output_dir;
  std::vector<std::string> parameters;  // swept parameter names, in order (results.csv columns)
  int64_t max_attempts = 0;             // 0: SchedulerOptions::max_attempts
  EarlyTermination early_terminate;     // the coordinator's stop decisions (none: every job runs to the end)
  struct Job {
    std::string id;
    uint64_t seed = 0;
    std::string kind = std::string(kTrainJob);
    SettingList swept;       // parameter -> value text or label
    SettingList settings;
    SettingList verbalizer;
  };
  std::vector<Job> jobs;
};

struct SubmitResult {
  std::string sweep;
  std::string output_dir;
  int64_t added = 0;     // new jobs
  int64_t existing = 0;  // jobs the sweep already had (any state)
};

struct WorkerInfo {
  std::string host;
  std::string device;      // cpu, cuda:0
  int64_t ranks = 1;       // MPI ranks in the worker group
  int64_t threads = 0;
  int64_t memory_bytes = 0;
  int64_t pid = 0;
};

// Identifies one attempt of one job.
struct LeaseRef {
  std::string sweep;
  std::string job_id;
  int64_t attempt = 0;
};

// The coordinator's early termination of a running job (heartbeat replies).
struct StopOrder {
  LeaseRef lease;
  std::string reason;  // "rung 2 (150 steps): dev accuracy 0.61 not in top 1/3 of 9 (cutoff 0.68)"
};

struct ReportAck {
  bool accepted = false;
  std::string reason;  // why not
};

// One job as `promptsweep status` shows it.
struct JobStatusRow {
  std::string job_id;
  JobState state = JobState::kPending;
  int64_t attempts = 0;     // leases so far
  std::string worker;       // current or last
  SettingList swept;
  uint64_t seed = 0;
  int64_t step = 0;         // last progress (running) or final steps (finished)
  int64_t max_steps = 0;
  double train_loss = 0.0;
  double eta_seconds = 0.0; // running: the worker's estimate
  std::optional<double> best_dev;  // running: best so far; finished: best dev metric
  std::optional<double> test;
  std::string message;      // failed / diverged / cancelled: why
  bool has_checkpoint = false;
};

struct SweepStatus {
  std::string name;
  std::string output_dir;
  std::string metric_name;
  bool maximize = true;
  std::vector<std::string> parameters;
  int64_t total = 0;
  int64_t pending = 0, leased = 0, running = 0, succeeded = 0, failed = 0, diverged = 0, cancelled = 0;
  int64_t stopped = 0;               // ended early by early termination
  // Compute: the optimizer steps every job plans (max_steps) and those the
  // stopped jobs did not run.
  int64_t steps_planned = 0, steps_saved = 0;
  bool done = false;                 // every job finished
  std::optional<double> best_dev;    // best best_dev among succeeded and stopped jobs
  std::string best_job;
  double elapsed_seconds = 0.0;      // since the first lease (this coordinator run)
  double eta_seconds = 0.0;          // from finished-job wall times and live workers; 0 when unknown
  int64_t live_workers = 0;
  std::vector<JobStatusRow> jobs;    // submission order

  int64_t finished() const { return succeeded + stopped + failed + diverged + cancelled; }
  // Jobs that ended without a usable result: `wait` and `run` exit with 2.
  int64_t unsuccessful() const { return failed + diverged + cancelled; }
};

}  // namespace promptsweep
