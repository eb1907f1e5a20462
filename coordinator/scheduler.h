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
// internal mutex; adapter, checkpoint and CSV bytes are written outside it).
//
// Inside (scheduler.cc): JobTable (state machine, memory), SqliteStore (the
// database and the state-directory lock), ResultsSink (the files).
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "client/sweep_types.h"
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
  // PackKey is in `running_packs` (they join a pack the worker trains now),
  // then jobs whose ModelKey is in `loaded_models`, then submission order
  // (older sweeps first); the oldest within each. Increments the attempt;
  // loads the job's checkpoint if it has one.
  // Error for a worker id RegisterWorker did not give (ids survive restarts).
  std::optional<JobSpec> Lease(const std::string& worker_id, const std::vector<std::string>& loaded_models,
                               const std::vector<std::string>& running_packs = {});
  // Blocks until a job may be pending (a submit, an expiry, a requeue) or
  // `deadline` passes; for the long-poll of LeaseJob. Returns at once after Shutdown().
  void WaitForWork(std::chrono::steady_clock::time_point deadline);

  // Renews every lease in `held` that the worker still owns; returns those it
  // no longer owns (expired, cancelled, finished): the worker must stop them.
  // `stop` (when given) receives the early-termination orders of the leases
  // it still owns: the worker ends those jobs as stopped.
  std::vector<LeaseRef> Heartbeat(const std::string& worker_id, const std::vector<LeaseRef>& held,
                                  std::vector<StopOrder>* stop = nullptr);
  // Progress of a held lease: renews it, leased -> running, kept in memory
  // for status. Rejected when the worker does not hold the lease. With early
  // termination, a dev evaluation at a rung records the job's value and, when
  // the rule says so, the decision to stop it (committed before the ack).
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
