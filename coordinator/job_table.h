// The scheduler's state machine, in memory only (Ray's GcsNodeManager: the
// logic as a plain class; storage and files elsewhere). Every operation is a
// const Plan* that validates and says what the change is (Effects); the
// caller commits Effects::writes to its SchedulerStore and only then calls
// Apply(), so a failed commit leaves the table as it was. Nothing here reads
// or writes a file or a database.
//
//   pending -> leased -> running -> succeeded | stopped | failed | diverged | cancelled
//   A lease not renewed in time or a retryable failure: pending, attempt + 1
//   (failed for good after max_attempts). A checkpoint on preemption:
//   pending, not counted as a failure; the next lease carries it.
//   Early termination (sweeps with early_terminate): a progress report with a
//   dev evaluation at a rung records the job's value and, when the rule says
//   so (early_stopper.h), the decision to stop it; both are committed with
//   the report. The holder hears it from its next heartbeat (StopOrder) and
//   reports the job `stopped`; a later attempt gets it with its lease.
//
// Thread safety: none; the scheduler's mutex serialises every call.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

#include "client/sweep_types.h"
#include "common/job.h"
#include "coordinator/results_sink.h"
#include "coordinator/scheduler_store.h"

namespace promptsweep {

// Absolute, normalized, without a trailing '/': how directories are compared.
std::string NormalizeDir(const std::string& dir);

struct JobTableOptions {
  // A sweep submitted without an output directory writes to <this>/<sweep name>.
  std::string default_output_root;
  double lease_timeout_seconds = 30.0;
  int64_t max_attempts = 3;        // for sweeps that do not set theirs
  std::function<double()> clock;  // monotonic seconds; required
};

// What one operation changes, in the order it must happen: `writes` committed
// (before anyone is answered), then Apply(), then `results` to the sink
// outside the lock.
struct Effects {
  StoreWrites writes;
  std::vector<ResultsBatch> results;
  // Memory only (a restart forgets them): leases whose deadline restarts,
  // and the progress a worker reported.
  std::vector<LeaseRef> renew;
  std::optional<std::pair<LeaseRef, JobProgress>> progress;
};

// Files a report needs in place before its commit: written outside the lock,
// published right before the commit (results_sink.h).
struct FilesToStage {
  enum class Kind { kAdapter, kCheckpoint };
  Kind kind = Kind::kAdapter;
  std::string target;  // OUTPUT/adapters/<job id> or OUTPUT/checkpoints/<job id>.state

  bool operator==(const FilesToStage& other) const { return kind == other.kind && target == other.target; }
};

class JobTable {
 public:
  struct Submission {
    Effects effects;
    SubmitResult result;
    std::string new_output_dir;  // a new sweep's: create it before the commit
  };
  struct Registration {
    Effects effects;
    std::string worker_id;
  };
  struct LeaseGrant {
    Effects effects;
    std::optional<JobSpec> spec;  // without its checkpoint bytes
    std::string checkpoint_path;  // to read after the commit; empty: none
  };
  struct Report {
    Effects effects;
    ReportAck ack;
    std::optional<FilesToStage> stage;  // accepted reports only
  };
  struct Batch {
    Effects effects;
    int64_t count = 0;  // jobs changed
  };

  explicit JobTable(JobTableOptions options);
  ~JobTable();
  JobTable(const JobTable&) = delete;
  JobTable& operator=(const JobTable&) = delete;

  // Fills an empty table from the store; leased and running jobs get a full
  // lease from now, as their holders may still be alive.
  void Load(const StoredState& state);

  // The checks that need no state (names, ids, kinds): Error, before any lock.
  static void ValidateSubmission(const SweepSubmission& submission);
  // Error when the sweep exists with other parameters, output or metric.
  Submission PlanSubmit(const SweepSubmission& submission) const;
  Registration PlanRegisterWorker(const WorkerInfo& info) const;
  // Error for an unknown worker. No spec when nothing is pending. The oldest
  // pending job whose PackKey is in `running_packs`, else the oldest of a
  // model in `loaded_models` (ModelKeys), else the oldest.
  LeaseGrant PlanLease(const std::string& worker_id, const std::vector<std::string>& loaded_models,
                       const std::vector<std::string>& running_packs = {}) const;
  // The checkpoint of `lease` could not be read: the job starts over.
  // Nothing when the job has moved on since.
  Effects PlanCheckpointLost(const LeaseRef& lease, const std::string& path, const std::string& reason) const;
  Report PlanProgress(const std::string& worker_id, const LeaseRef& lease, const JobProgress& progress) const;
  Report PlanResult(const std::string& worker_id, const LeaseRef& lease, const JobOutcome& outcome) const;
  Report PlanCheckpoint(const std::string& worker_id, const LeaseRef& lease, const std::string& checkpoint,
                        int64_t step) const;
  Batch PlanExpiry() const;
  // Error for an unknown sweep or job id.
  Batch PlanCancel(const std::string& sweep, const std::vector<std::string>& job_ids) const;

  // After `effects.writes` is committed. Returns whether a job became pending.
  bool Apply(const Effects& effects);

  // Memory only.
  void Touch(const std::string& worker_id);
  // The leases of `held` the worker no longer owns; `stop` (when given)
  // receives the early-termination orders for the ones it does.
  std::vector<LeaseRef> Heartbeat(const std::string& worker_id, const std::vector<LeaseRef>& held,
                                  std::vector<StopOrder>* stop = nullptr);

  bool KnownWorker(const std::string& worker_id) const;
  bool HasPending() const { return !pending_.empty(); }
  SweepStatus Status(const std::string& sweep, bool with_jobs) const;  // Error for an unknown sweep
  std::vector<std::string> SweepNames() const;                         // submission order
  // Where the sweep's CSV rows go (a batch without rows).
  ResultsBatch CsvTarget(const std::string& sweep) const;
  // Every finished job's rows in finish order, with its rows of `metrics`.
  std::vector<FinishedJobRows> FinishedRows(const std::string& sweep, std::vector<StoredMetric> metrics) const;
  double lease_timeout_seconds() const { return options_.lease_timeout_seconds; }

  // A job as results.csv shows it, with `durable` as its state (the stored
  // one, or the next); `parameters` are its sweep's.
  static ResultRow ResultRowOf(const std::vector<std::string>& parameters, const StoredJob& job,
                               const JobDurable& durable);

 private:
  struct SweepRecord;
  struct JobRecord;
  struct WorkerRecord {
    WorkerInfo info;
    double last_seen;
  };
  // Pending order: sweeps by submission, jobs by submission.
  using QueueKey = std::pair<int64_t, int64_t>;
  static QueueKey KeyOf(const JobRecord& job);
  struct StatusTally;

  double Now() const { return options_.clock(); }
  SweepRecord& FindSweep(const std::string& name) const;  // Error naming the known ones
  JobRecord* FindJob(const std::string& sweep, const std::string& job_id) const;
  JobRecord& JobOf(const LeaseRef& lease) const;  // PS_CHECK: it exists
  // Empty when `worker_id` holds `lease`; else why not (the rejection reason).
  std::string CheckHolder(const std::string& worker_id, const LeaseRef& lease, const JobRecord** job) const;
  // The job when `worker_id` holds `lease`; else nullptr with the reason in `report`.
  const JobRecord* HolderOf(const std::string& worker_id, const LeaseRef& lease, Report& report) const;
  // Pending jobs by a key of theirs (ModelKey, PackKey), oldest first.
  using PendingIndex = std::unordered_map<std::string, std::map<QueueKey, JobRecord*>>;
  const JobRecord* NextPending(const std::vector<std::string>& loaded_models,
                               const std::vector<std::string>& running_packs) const;
  // The oldest job in `index` under one of `keys` (empty keys never match).
  static const JobRecord* OldestOf(const PendingIndex& index, const std::vector<std::string>& keys);
  void Renew(JobRecord& job);

  // Early termination: the rung value and decision of a dev evaluation in
  // `progress`, added to `next` and `effects`.
  void PlanRung(const JobRecord& job, const JobProgress& progress, JobDurable& next, Effects& effects) const;

  // Plan steps.
  void CheckMerge(const SweepRecord& sweep, const SweepSubmission& submission) const;
  StoredSweep NewSweep(const SweepSubmission& submission) const;
  JobDurable FinishedWith(const JobRecord& job, const JobOutcome& outcome, int64_t finish_seq) const;
  Report CheckpointReport(const JobRecord& job, const std::string& worker_id, const std::string& checkpoint,
                          int64_t step) const;
  static void MarkFinished(JobDurable& next, JobState state, int64_t finish_seq);
  // Stores `next` as the job's state; when it finishes the job, its CSV rows
  // (and `metrics`) too, and its checkpoint is no longer needed. A lease
  // granted or ended is recorded in the attempt log; `ended_as` names how it
  // ended (kAttemptPreempted, kAttemptExpired), else the finished state or a retry.
  static void AddChange(Effects& effects, const JobRecord& job, JobDurable next,
                        const std::vector<MetricRow>* metrics = nullptr, const char* ended_as = nullptr);
  static ResultRow MakeResultRow(const JobRecord& job, const JobDurable& durable);
  static ResultsBatch& BatchFor(Effects& effects, const SweepRecord& sweep);

  // Apply steps.
  void AddSweep(const StoredSweep& stored);
  bool AddJob(const StoredJob& stored);  // true when pending
  bool UpdateJob(JobRecord& job, const JobDurable& next);  // true when it became pending
  void AddWorker(const StoredWorker& stored, double last_seen);
  void IndexPending(JobRecord& job);
  void UnindexPending(JobRecord& job);

  // Status steps.
  static void Count(SweepStatus& status, JobState state);
  static JobStatusRow StatusRow(const JobRecord& job);
  void EstimateEta(SweepStatus& status, const StatusTally& tally) const;

  JobTableOptions options_;
  std::map<std::string, std::unique_ptr<SweepRecord>> sweeps_;
  std::vector<SweepRecord*> sweep_order_;
  std::unordered_map<std::string, SweepRecord*> sweep_by_output_;
  std::map<QueueKey, JobRecord*> pending_;
  PendingIndex pending_by_model_;  // by ModelKey
  PendingIndex pending_by_pack_;   // by PackKey (JobRecord::pack_key)
  std::unordered_set<JobRecord*> active_;  // leased or running
  std::unordered_map<std::string, WorkerRecord> workers_;

  int64_t next_sweep_seq_ = 1;
  int64_t next_job_seq_ = 1;
  int64_t next_finish_seq_ = 1;
  int64_t next_worker_ = 1;
};

}  // namespace promptsweep
