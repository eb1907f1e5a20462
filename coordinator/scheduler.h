// The coordinator's logic: sweeps, jobs, leases and results, with every
// state change in SQLite (WAL) before it is acknowledged, so a coordinator
// killed at any point restarts where it was. No network here: the gRPC
// service (coordinator_service.h) converts messages and forwards to this
// class, and the tests drive it directly with a fake clock.
//
// Guarantees:
//   - A job id is unique within a sweep; submitting a sweep again adds only
//     the jobs it does not have (finished jobs are never rerun).
//   - Each job has at most one accepted result: a report is accepted only
//     from the worker holding the job's current attempt while the job is
//     leased or running; anything else (a lease that expired, a cancelled
//     job, a replayed report) is rejected with the reason.
//   - results.csv has exactly one row per finished job and metrics.csv the
//     job's metric rows, both appended after the SQLite commit, and rebuilt
//     from SQLite (atomically) when the scheduler opens, so a crash leaves
//     neither partial nor duplicate rows.
//
// Thread safety: every public method may be called from any thread (one
// internal mutex).
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/job.h"

namespace promptsweep {

struct SchedulerOptions {
  // Directory of the state database (promptsweep.db, created if missing).
  std::string state_dir;
  // A lease not renewed (heartbeat, progress) for this long returns its job to pending.
  double lease_timeout_seconds = 30.0;
  // Default attempts per job before it is failed (lease expiries and retryable failures count).
  int64_t max_attempts = 3;
  // Seconds on a monotonic clock; tests inject a fake one.
  std::function<double()> clock;  // default: std::chrono::steady_clock
};

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
  bool done = false;                 // every job finished
  std::optional<double> best_dev;    // best best_dev among succeeded jobs
  std::string best_job;
  double elapsed_seconds = 0.0;      // since the first lease (this coordinator run)
  double eta_seconds = 0.0;          // from finished-job wall times and live workers; 0 when unknown
  int64_t live_workers = 0;
  std::vector<JobStatusRow> jobs;    // submission order
};

class Scheduler {
 public:
  // Opens (or creates) the state in options.state_dir, returns leased and
  // running jobs to their holders with a fresh lease deadline, and rebuilds
  // every sweep's results.csv / metrics.csv from the database. Error when the
  // directory or database cannot be used (names the file and what to do).
  explicit Scheduler(SchedulerOptions options);
  ~Scheduler();
  Scheduler(const Scheduler&) = delete;
  Scheduler& operator=(const Scheduler&) = delete;

  // Adds a sweep or merges new jobs into the one with the same name. Error
  // (nothing stored) when a job id is not JobId(settings) for a train job, a
  // job id repeats, or the sweep exists with other swept parameters or
  // another output directory.
  SubmitResult Submit(const SweepSubmission& sweep);

  // A new worker id ("w3-hostname"), stored.
  std::string RegisterWorker(const WorkerInfo& info);
  bool KnownWorker(const std::string& worker_id) const;

  // Leases the next pending job to `worker_id`, or nothing. Prefers jobs whose
  // ModelKey is in `loaded_models`, then submission order (older sweeps
  // first). Increments the attempt; loads the job's checkpoint if it has one.
  // Error for a worker id RegisterWorker did not give (ids survive restarts).
  std::optional<JobSpec> Lease(const std::string& worker_id, const std::vector<std::string>& loaded_models);
  // Blocks until a job may be pending (a submit, an expiry, a requeue) or
  // `deadline` passes; for the long-poll of LeaseJob. Returns at once after Shutdown().
  void WaitForWork(std::chrono::steady_clock::time_point deadline);

  // Renews every lease in `held` that the worker still owns; returns those it
  // no longer owns (expired, cancelled, finished): the worker must stop them.
  std::vector<LeaseRef> Heartbeat(const std::string& worker_id, const std::vector<LeaseRef>& held);
  // Progress of a held lease: renews it, leased -> running, kept in memory
  // for status. Rejected when the worker does not hold the lease.
  ReportAck Progress(const std::string& worker_id, const LeaseRef& lease, const JobProgress& progress);
  // The attempt's end: succeeded / diverged / cancelled / failed (not
  // retryable) finish the job: files written to OUTPUT/adapters/<job id>/,
  // the row committed, then appended to results.csv and metrics.csv. A
  // retryable failure requeues it (failed for good after max_attempts).
  ReportAck ReportResult(const std::string& worker_id, const LeaseRef& lease, const JobOutcome& outcome);
  // Preemption: stores the checkpoint (OUTPUT/checkpoints/<job id>.state) and
  // returns the job to pending; the next lease carries it. Does not count
  // against max_attempts.
  ReportAck ReportCheckpoint(const std::string& worker_id, const LeaseRef& lease, const std::string& checkpoint,
                             int64_t step);

  // Returns jobs whose lease ran out to pending (or failed after
  // max_attempts, with the reason). Returns how many; the service calls it
  // about once a second.
  int64_t ExpireLeases();

  // Cancels the sweep's unfinished jobs (all, or those in `job_ids`):
  // finished as cancelled (with a results.csv row); holders learn it from
  // their next heartbeat. Returns how many were cancelled. Error for an
  // unknown sweep or job id.
  int64_t Cancel(const std::string& sweep, const std::vector<std::string>& job_ids);

  // Error for an unknown sweep (names the known ones).
  SweepStatus Status(const std::string& sweep) const;
  // The same without `jobs` (counts, best, eta only): for frequent polling,
  // as it costs O(jobs) time under the lock but no copies.
  SweepStatus Status(const std::string& sweep, bool with_jobs) const;
  std::vector<std::string> SweepNames() const;  // submission order

  // Wakes WaitForWork callers for good (server shutdown).
  void Shutdown();
  bool shut_down() const;  // Shutdown() was called

  double lease_timeout_seconds() const;  // SchedulerOptions::lease_timeout_seconds

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace promptsweep
