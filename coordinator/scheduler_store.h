// The scheduler's durable state as plain rows, and the interface of the store
// that keeps them (Ray's GcsTableStorage seam): the job table (job_table.h)
// says what to write, the scheduler commits it here before it answers, and
// tests stand an in-memory fake in for SQLite (sqlite_store.h).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "client/sweep_types.h"
#include "common/early_termination.h"
#include "common/job.h"

namespace promptsweep {

// A sweep as stored: fixed at submission.
struct StoredSweep {
  std::string name;
  int64_t seq = 0;  // submission order, from 1
  std::string sweep_file, yaml, metric_name;
  bool maximize = true;
  std::string output_dir;  // absolute, normalized
  std::vector<std::string> parameters;
  int64_t max_attempts = 0;  // >= 1
  double created = 0.0;      // unix time, for the record
  EarlyTermination early_terminate;
};

// Job state that changes after submission. A state change builds the next
// value, commits it, and only then replaces the table's (so a failed write
// changes nothing).
struct JobDurable {
  JobState state = JobState::kPending;
  int64_t attempt = 0;   // leases so far
  int64_t failures = 0;  // expired leases and retryable failures: counted against max_attempts
  std::string worker;    // current or last holder
  std::string checkpoint_path;
  int64_t checkpoint_step = 0;
  std::string message;
  // The reported outcome (finished jobs, and a failed attempt's).
  bool has_outcome = false;
  std::optional<double> final_dev, best_dev, test;
  int64_t best_step = 0, steps = 0;
  double train_loss = 0.0, tokens_per_second = 0.0, wall_seconds = 0.0;
  std::string adapter;  // relative to the output dir
  double finished_at = 0.0;
  int64_t finish_seq = 0;  // order of finishing (results.csv order); finished jobs only
  // Early termination: the coordinator's decision to stop the job at a rung,
  // committed before any worker hears of it. Empty reason: none. The holder
  // of attempt `stop_attempt` hears it with its next heartbeat; a later
  // attempt (the lease was lost first) gets stop_step with its lease.
  std::string stop_reason;
  int64_t stop_step = 0;
  int64_t stop_attempt = 0;
};

// A lease is held: the job is leased or running.
inline bool IsActive(JobState state) { return state == JobState::kLeased || state == JobState::kRunning; }

// A job as stored.
struct StoredJob {
  std::string sweep;
  std::string id;
  int64_t seq = 0;  // submission order (global), from 1
  uint64_t seed = 0;
  std::string kind;
  SettingList swept, settings, verbalizer;
  std::string model_key;
  JobDurable durable;
};

struct StoredWorker {
  int64_t id = 0;    // from 1
  std::string name;  // "w<id>-<host>"
  WorkerInfo info;
  double registered = 0.0;  // unix time
};

struct JobUpdate {
  std::string sweep;
  std::string job_id;
  JobDurable durable;
};

// A job's value at an early-termination rung (common/early_termination.h):
// what later jobs at the same rung are compared with. One per (job, rung),
// the first report wins (a rerun attempt does not change it).
struct StoredRung {
  std::string sweep;
  std::string job_id;
  int64_t iteration = 0;  // the dev evaluation's number, from 1
  int64_t step = 0;
  double value = 0.0;     // the sweep's metric (at the rung, or best so far: ComparesBestSoFar)
};

// One lease of a job (an attempt), for the record: the report's timeline
// (which worker ran which job when). Written when the lease is granted and
// again when it ends; the scheduler never reads it back.
struct StoredAttempt {
  std::string sweep;
  std::string job_id;
  int64_t attempt = 0;
  std::string worker;
  double started = 0.0;  // unix time of the lease
  int64_t start_step = 0;  // the checkpoint it resumed from (0: from scratch)
  // The end (absent while the lease is held): unix time, how it ended
  // (AttemptOutcome) and the step it reached (0: unknown).
  std::optional<double> ended;
  std::string outcome;
  int64_t end_step = 0;
};

// How an attempt ended: a finished job's state name (succeeded, stopped,
// failed, diverged, cancelled), or one of these (the job went back to pending).
inline constexpr char kAttemptPreempted[] = "preempted";  // handed back with a checkpoint
inline constexpr char kAttemptExpired[] = "expired";      // lease not renewed in time
inline constexpr char kAttemptRetry[] = "retry";          // a retryable failure

// A finished job's metric log, stored once when it finishes.
struct JobMetrics {
  std::string sweep;
  std::string job_id;
  std::vector<MetricRow> rows;
};

// The writes of one state change: committed together or not at all.
struct StoreWrites {
  std::vector<StoredSweep> sweeps;
  std::vector<StoredJob> jobs;
  std::vector<JobUpdate> updates;
  std::vector<JobMetrics> metrics;
  std::vector<StoredWorker> workers;
  std::vector<StoredRung> rungs;
  std::vector<StoredAttempt> attempts;  // a start (no `ended`) inserts, an end updates

  bool empty() const {
    return sweeps.empty() && jobs.empty() && updates.empty() && metrics.empty() && workers.empty() &&
           rungs.empty() && attempts.empty();
  }
};

// Everything Load() returns, validated: sweeps by seq, jobs by seq (each of a
// listed sweep), workers by id.
struct StoredState {
  std::vector<StoredSweep> sweeps;
  std::vector<StoredJob> jobs;
  std::vector<StoredWorker> workers;
  std::vector<StoredRung> rungs;  // each of a listed job
};

// A metric row with the job it belongs to.
using StoredMetric = std::pair<std::string, MetricRow>;

// Thread safety: none; the scheduler calls it under its mutex.
class SchedulerStore {
 public:
  virtual ~SchedulerStore() = default;

  // The whole state. Error naming the store and what to do when a stored
  // value is damaged or from another version.
  virtual StoredState Load() = 0;
  // Stores `writes` atomically; Error (nothing stored) on failure.
  virtual void Commit(const StoreWrites& writes) = 0;
  // The sweep's metric rows in the order they were stored.
  virtual std::vector<StoredMetric> LoadMetrics(const std::string& sweep) = 0;
  // The sweep's attempts in the order they were leased (for the record: reports).
  virtual std::vector<StoredAttempt> LoadAttempts(const std::string& sweep) = 0;
};

}  // namespace promptsweep
