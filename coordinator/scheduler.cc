// The scheduler is the composition of three parts (Ray's GcsNodeManager over
// GcsTableStorage):
//
//   JobTable     (job_table.h)     the state machine, in memory, as Plan/Apply
//   SqliteStore  (sqlite_store.h)  the state in SQLite, and the state-dir flock
//   ResultsSink  (results_sink.h)  adapters, checkpoints, results/metrics.csv
//
// Every change runs: lock -> plan -> commit -> apply -> enqueue CSV rows ->
// unlock -> flush CSV rows. The commit comes before the answer (a crash
// after it loses nothing); rows are enqueued under the lock, so they are
// written in commit order, each once. Files a report brings (adapter,
// checkpoint) are staged outside the lock and published under it right
// before the commit, only if the report is still accepted then.
//
// Lock order: ResultsSink's write lock, then mutex_ (a rewrite's snapshot);
// nothing waits for the sink's write lock while holding mutex_.
#include "coordinator/scheduler.h"

#include <condition_variable>
#include <filesystem>
#include <functional>
#include <mutex>
#include <optional>
#include <utility>

#include "common/error.h"
#include "common/file_util.h"
#include "common/log.h"
#include "coordinator/job_table.h"
#include "coordinator/results_sink.h"
#include "coordinator/sqlite_store.h"

namespace promptsweep {
namespace {

double SteadySeconds() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

SchedulerOptions Validated(SchedulerOptions options) {
  if (options.state_dir.empty()) throw Error("scheduler: no state directory given");
  if (!(options.lease_timeout_seconds > 0)) {
    throw Error(StrCat("scheduler: lease timeout must be > 0 seconds, got ", options.lease_timeout_seconds));
  }
  if (options.max_attempts < 1) {
    throw Error(StrCat("scheduler: max_attempts must be >= 1, got ", options.max_attempts));
  }
  options.state_dir = NormalizeDir(options.state_dir);
  if (!options.clock) options.clock = SteadySeconds;
  return options;
}

JobTableOptions TableOptions(const SchedulerOptions& options) {
  JobTableOptions table;
  table.default_output_root = (std::filesystem::path(options.state_dir) / "sweeps").string();
  table.lease_timeout_seconds = options.lease_timeout_seconds;
  table.max_attempts = options.max_attempts;
  table.clock = options.clock;
  return table;
}

}  // namespace

class Scheduler::Impl {
 public:
  explicit Impl(SchedulerOptions options);

  SubmitResult Submit(const SweepSubmission& submission);
  std::string RegisterWorker(const WorkerInfo& info);
  bool KnownWorker(const std::string& worker_id) const;
  std::optional<JobSpec> Lease(const std::string& worker_id, const std::vector<std::string>& loaded_models,
                               const std::vector<std::string>& running_packs);
  void WaitForWork(std::chrono::steady_clock::time_point deadline);
  std::vector<LeaseRef> Heartbeat(const std::string& worker_id, const std::vector<LeaseRef>& held,
                                  std::vector<StopOrder>* stop);
  ReportAck Progress(const std::string& worker_id, const LeaseRef& lease, const JobProgress& progress);
  ReportAck ReportResult(const std::string& worker_id, const LeaseRef& lease, const JobOutcome& outcome);
  ReportAck ReportCheckpoint(const std::string& worker_id, const LeaseRef& lease, const std::string& checkpoint,
                             int64_t step);
  int64_t ExpireLeases();
  int64_t Cancel(const std::string& sweep, const std::vector<std::string>& job_ids);
  SweepStatus Status(const std::string& sweep, bool with_jobs) const;
  std::vector<std::string> SweepNames() const;
  void Shutdown();
  bool shut_down() const;
  double lease_timeout_seconds() const { return options_.lease_timeout_seconds; }

 private:
  using ReportPlanner = std::function<JobTable::Report()>;
  using Stager = std::function<StagedFiles(const FilesToStage&)>;

  // Opening: results.csv / metrics.csv rebuilt from the store, atomically.
  void RebuildResults();

  // Under mutex_: the store first, then memory, then the rows in commit order.
  void CommitLocked(Effects effects);
  // Without mutex_: writes the rows CommitLocked queued.
  void FlushResults();
  // Takes mutex_: every finished job's rows, for rewriting a sweep's files.
  std::vector<FinishedJobRows> SnapshotForRewrite(const std::string& sweep);

  // After a lease is committed, outside the lock: the checkpoint's bytes, or
  // (unreadable) the job starts over.
  void ReadCheckpoint(JobSpec& spec, const std::string& path);
  // A report that may bring files: plan; stage the files outside the lock;
  // plan again and, still accepted, publish them and commit.
  ReportAck CommitReport(const std::string& worker_id, const ReportPlanner& plan, const Stager& stage);
  StagedFiles Stage(const FilesToStage& files, const std::vector<std::pair<std::string, std::string>>& adapter,
                    const std::string& checkpoint);

  const SchedulerOptions options_;
  mutable std::mutex mutex_;  // guards everything below but sink_ (thread-safe itself)
  std::condition_variable work_;
  bool shutdown_ = false;
  std::unique_ptr<SqliteStore> store_;  // holds the state-dir lock while open
  JobTable table_;
  ResultsSink sink_;
};

// --- Opening ---

Scheduler::Impl::Impl(SchedulerOptions options)
    : options_(Validated(std::move(options))), table_(TableOptions(options_)) {
  ResultsSink::CreateDirectories(options_.state_dir);
  store_ = std::make_unique<SqliteStore>(options_.state_dir);
  table_.Load(store_->Load());
  RebuildResults();
}

void Scheduler::Impl::RebuildResults() {
  for (const std::string& sweep : table_.SweepNames()) {
    const ResultsBatch target = table_.CsvTarget(sweep);
    ResultsSink::RemoveStaleStaging(target.output_dir);
    ResultsSink::Rewrite(target, table_.FinishedRows(sweep, store_->LoadMetrics(sweep)));
  }
}

// --- Commit and results ---

void Scheduler::Impl::CommitLocked(Effects effects) {
  store_->Commit(effects.writes);  // Error: nothing changed, nobody answered yet
  if (table_.Apply(effects)) work_.notify_all();
  sink_.Enqueue(std::move(effects.results));
}

void Scheduler::Impl::FlushResults() {
  sink_.Flush([this](const std::string& sweep) { return SnapshotForRewrite(sweep); });
}

std::vector<FinishedJobRows> Scheduler::Impl::SnapshotForRewrite(const std::string& sweep) {
  std::lock_guard<std::mutex> lock(mutex_);
  sink_.DropQueued(sweep);  // committed before this snapshot, so in it
  return table_.FinishedRows(sweep, store_->LoadMetrics(sweep));
}

// --- Sweeps and workers ---

SubmitResult Scheduler::Impl::Submit(const SweepSubmission& submission) {
  JobTable::ValidateSubmission(submission);
  SubmitResult result;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    JobTable::Submission plan = table_.PlanSubmit(submission);
    // mkdir only, before the commit: an output directory that cannot be
    // made fails the submit with nothing stored.
    if (!plan.new_output_dir.empty()) ResultsSink::CreateDirectories(plan.new_output_dir);
    result = plan.result;
    CommitLocked(std::move(plan.effects));
  }
  FlushResults();  // a new sweep's empty results.csv
  return result;
}

std::string Scheduler::Impl::RegisterWorker(const WorkerInfo& info) {
  std::lock_guard<std::mutex> lock(mutex_);
  JobTable::Registration plan = table_.PlanRegisterWorker(info);
  CommitLocked(std::move(plan.effects));
  return plan.worker_id;
}

bool Scheduler::Impl::KnownWorker(const std::string& worker_id) const {
  std::lock_guard<std::mutex> lock(mutex_);
  return table_.KnownWorker(worker_id);
}

// --- Leases ---

std::optional<JobSpec> Scheduler::Impl::Lease(const std::string& worker_id,
                                              const std::vector<std::string>& loaded_models,
                                              const std::vector<std::string>& running_packs) {
  JobTable::LeaseGrant grant;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    table_.Touch(worker_id);
    grant = table_.PlanLease(worker_id, loaded_models, running_packs);
    if (!grant.spec) return std::nullopt;
    CommitLocked(std::move(grant.effects));
  }
  if (!grant.checkpoint_path.empty()) ReadCheckpoint(*grant.spec, grant.checkpoint_path);
  return std::move(grant.spec);
}

void Scheduler::Impl::ReadCheckpoint(JobSpec& spec, const std::string& path) {
  // Only this lease's holder (who has not got it yet) may replace the file,
  // and a job finished meanwhile makes the fallback below a no-op.
  std::string reason;
  try {
    spec.checkpoint = ReadFile(path, "the checkpoint");
    return;
  } catch (const Error& e) {
    reason = e.what();
  }
  try {
    std::lock_guard<std::mutex> lock(mutex_);
    CommitLocked(table_.PlanCheckpointLost({spec.sweep, spec.job_id, spec.attempt}, path, reason));
  } catch (const Error& e) {
    // The lease is committed: hand it out; the next lease tries the file again.
    Logger("coordinator").warn("{}; {}", reason, e.what());
  }
}

void Scheduler::Impl::WaitForWork(std::chrono::steady_clock::time_point deadline) {
  std::unique_lock<std::mutex> lock(mutex_);
  work_.wait_until(lock, deadline, [&] { return shutdown_ || table_.HasPending(); });
}

std::vector<LeaseRef> Scheduler::Impl::Heartbeat(const std::string& worker_id, const std::vector<LeaseRef>& held,
                                                  std::vector<StopOrder>* stop) {
  std::lock_guard<std::mutex> lock(mutex_);
  return table_.Heartbeat(worker_id, held, stop);
}

ReportAck Scheduler::Impl::Progress(const std::string& worker_id, const LeaseRef& lease,
                                    const JobProgress& progress) {
  std::lock_guard<std::mutex> lock(mutex_);
  table_.Touch(worker_id);
  JobTable::Report report = table_.PlanProgress(worker_id, lease, progress);
  if (report.ack.accepted) CommitLocked(std::move(report.effects));
  return report.ack;
}

int64_t Scheduler::Impl::ExpireLeases() {
  int64_t count = 0;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    JobTable::Batch batch = table_.PlanExpiry();
    count = batch.count;
    if (count > 0) CommitLocked(std::move(batch.effects));
  }
  FlushResults();
  return count;
}

// --- Reports ---

ReportAck Scheduler::Impl::ReportResult(const std::string& worker_id, const LeaseRef& lease,
                                        const JobOutcome& outcome) {
  return CommitReport(
      worker_id, [&] { return table_.PlanResult(worker_id, lease, outcome); },
      [&](const FilesToStage& files) { return Stage(files, outcome.files, outcome.checkpoint); });
}

ReportAck Scheduler::Impl::ReportCheckpoint(const std::string& worker_id, const LeaseRef& lease,
                                            const std::string& checkpoint, int64_t step) {
  return CommitReport(
      worker_id, [&] { return table_.PlanCheckpoint(worker_id, lease, checkpoint, step); },
      [&](const FilesToStage& files) { return Stage(files, {}, checkpoint); });
}

ReportAck Scheduler::Impl::CommitReport(const std::string& worker_id, const ReportPlanner& plan,
                                        const Stager& stage) {
  StagedFiles staged;  // removed, unless published, once the lock is released
  ReportAck ack;
  for (;;) {
    std::optional<FilesToStage> wanted;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      table_.Touch(worker_id);
      JobTable::Report report = plan();
      const bool ready = !report.ack.accepted || !report.stage || staged.target() == report.stage->target;
      if (ready) {
        if (report.ack.accepted) {
          if (report.stage) staged.Publish();  // the files exist before the row that names them
          CommitLocked(std::move(report.effects));
        }
        ack = report.ack;
        break;
      }
      wanted = report.stage;
    }
    staged = stage(*wanted);  // the bytes may be large: never under the lock
  }
  FlushResults();
  return ack;
}

StagedFiles Scheduler::Impl::Stage(const FilesToStage& files,
                                   const std::vector<std::pair<std::string, std::string>>& adapter,
                                   const std::string& checkpoint) {
  if (files.kind == FilesToStage::Kind::kAdapter) return sink_.StageDirectory(files.target, adapter);
  return sink_.StageFile(files.target, checkpoint);
}

// --- Cancel and status ---

int64_t Scheduler::Impl::Cancel(const std::string& sweep, const std::vector<std::string>& job_ids) {
  int64_t count = 0;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    JobTable::Batch batch = table_.PlanCancel(sweep, job_ids);
    count = batch.count;
    if (count > 0) CommitLocked(std::move(batch.effects));
  }
  FlushResults();
  return count;
}

SweepStatus Scheduler::Impl::Status(const std::string& sweep, bool with_jobs) const {
  std::lock_guard<std::mutex> lock(mutex_);
  return table_.Status(sweep, with_jobs);
}

std::vector<std::string> Scheduler::Impl::SweepNames() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return table_.SweepNames();
}

void Scheduler::Impl::Shutdown() {
  std::lock_guard<std::mutex> lock(mutex_);
  shutdown_ = true;
  work_.notify_all();
}

bool Scheduler::Impl::shut_down() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return shutdown_;
}

// --- Scheduler: forwards to Impl ---

Scheduler::Scheduler(SchedulerOptions options) : impl_(std::make_unique<Impl>(std::move(options))) {}
Scheduler::~Scheduler() = default;
SubmitResult Scheduler::Submit(const SweepSubmission& sweep) { return impl_->Submit(sweep); }
std::string Scheduler::RegisterWorker(const WorkerInfo& info) { return impl_->RegisterWorker(info); }
bool Scheduler::KnownWorker(const std::string& worker_id) const { return impl_->KnownWorker(worker_id); }
std::optional<JobSpec> Scheduler::Lease(const std::string& worker_id, const std::vector<std::string>& loaded_models,
                                        const std::vector<std::string>& running_packs) {
  return impl_->Lease(worker_id, loaded_models, running_packs);
}
void Scheduler::WaitForWork(std::chrono::steady_clock::time_point deadline) { impl_->WaitForWork(deadline); }
std::vector<LeaseRef> Scheduler::Heartbeat(const std::string& worker_id, const std::vector<LeaseRef>& held,
                                           std::vector<StopOrder>* stop) {
  return impl_->Heartbeat(worker_id, held, stop);
}
ReportAck Scheduler::Progress(const std::string& worker_id, const LeaseRef& lease, const JobProgress& progress) {
  return impl_->Progress(worker_id, lease, progress);
}
ReportAck Scheduler::ReportResult(const std::string& worker_id, const LeaseRef& lease, const JobOutcome& outcome) {
  return impl_->ReportResult(worker_id, lease, outcome);
}
ReportAck Scheduler::ReportCheckpoint(const std::string& worker_id, const LeaseRef& lease,
                                      const std::string& checkpoint, int64_t step) {
  return impl_->ReportCheckpoint(worker_id, lease, checkpoint, step);
}
int64_t Scheduler::ExpireLeases() { return impl_->ExpireLeases(); }
int64_t Scheduler::Cancel(const std::string& sweep, const std::vector<std::string>& job_ids) {
  return impl_->Cancel(sweep, job_ids);
}
SweepStatus Scheduler::Status(const std::string& sweep) const { return impl_->Status(sweep, /*with_jobs=*/true); }
SweepStatus Scheduler::Status(const std::string& sweep, bool with_jobs) const {
  return impl_->Status(sweep, with_jobs);
}
std::vector<std::string> Scheduler::SweepNames() const { return impl_->SweepNames(); }
void Scheduler::Shutdown() { impl_->Shutdown(); }
bool Scheduler::shut_down() const { return impl_->shut_down(); }
double Scheduler::lease_timeout_seconds() const { return impl_->lease_timeout_seconds(); }

}  // namespace promptsweep
