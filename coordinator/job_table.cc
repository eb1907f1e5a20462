#include "coordinator/job_table.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <limits>
#include <set>
#include <string_view>

#include <nlohmann/json.hpp>

#include "common/error.h"
#include "common/job.h"
#include "common/format.h"
#include "coordinator/early_stopper.h"
#include "coordinator/sweep_spec.h"

namespace promptsweep {
namespace {

namespace fs = std::filesystem;

// Unix time, for the record (finished_at, created); ordering uses counters.
double WallTime() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

// A result file name: one path component.
bool IsPlainFileName(const std::string& name) {
  return !name.empty() && name != "." && name != ".." && name.find('/') == std::string::npos &&
         name.find('\0') == std::string::npos;
}

std::optional<double> NanToNull(std::optional<double> value) {
  if (value && std::isnan(*value)) return std::nullopt;
  return value;
}

LeaseRef RefOf(const std::string& sweep, const std::string& job_id, int64_t attempt) {
  return {sweep, job_id, attempt};
}

}  // namespace

std::string NormalizeDir(const std::string& dir) {
  fs::path path = fs::absolute(fs::path(dir)).lexically_normal();
  if (!path.has_filename() && path.has_parent_path() && path != path.root_path()) path = path.parent_path();
  return path.string();
}

struct JobTable::SweepRecord {
  StoredSweep stored;
  std::vector<std::unique_ptr<JobRecord>> jobs;  // submission order
  std::unordered_map<std::string, JobRecord*> by_id;
  std::optional<double> first_lease;  // this run, scheduler clock
  // Early termination: rung iteration -> job id -> value (as stored).
  std::map<int64_t, std::map<std::string, double>> rungs;
};

struct JobTable::JobRecord {
  SweepRecord* sweep = nullptr;
  StoredJob stored;  // stored.durable: as committed
  std::string pack_key;  // PackKey of a train job, derived from stored (not stored itself)
  // From the settings of a train job (0 for other kinds): what rungs are in steps.
  int64_t max_steps = 0;
  int64_t eval_every = 0;
  int64_t bracket = 0;  // asha's bracket (BracketOf)
  // In memory only: a restarted coordinator gives every lease a fresh deadline.
  double deadline = 0.0;
  double renewed_at = 0.0;
  std::optional<JobProgress> progress;

  const std::string& id() const { return stored.id; }
  const JobDurable& durable() const { return stored.durable; }
  int64_t max_attempts() const { return sweep->stored.max_attempts; }
};

JobTable::QueueKey JobTable::KeyOf(const JobRecord& job) { return {job.sweep->stored.seq, job.stored.seq}; }

JobTable::JobTable(JobTableOptions options) : options_(std::move(options)) {
  PS_CHECK(static_cast<bool>(options_.clock), "JobTable needs a clock");
}

JobTable::~JobTable() = default;

void JobTable::Load(const StoredState& state) {
  PS_CHECK(sweeps_.empty() && workers_.empty(), "Load() into a table in use");
  const double now = Now();
  for (const StoredSweep& sweep : state.sweeps) AddSweep(sweep);
  for (const StoredJob& stored : state.jobs) {
    AddJob(stored);
    JobRecord& job = *FindJob(stored.sweep, stored.id);
    if (IsActive(job.durable().state)) {
      // The holder may still be alive: give it a full lease to report.
      job.renewed_at = now;
      job.deadline = now + options_.lease_timeout_seconds;
    }
  }
  for (const StoredWorker& worker : state.workers) AddWorker(worker, -std::numeric_limits<double>::infinity());
  for (const StoredRung& rung : state.rungs) FindSweep(rung.sweep).rungs[rung.iteration][rung.job_id] = rung.value;
}

// --- Lookups ---

JobTable::SweepRecord& JobTable::FindSweep(const std::string& name) const {
  auto found = sweeps_.find(name);
  if (found != sweeps_.end()) return *found->second;
  std::string known;
  for (const SweepRecord* sweep : sweep_order_) known += (known.empty() ? "" : ", ") + sweep->stored.name;
  throw Error(StrCat("unknown sweep '", name, "' (", known.empty() ? "no sweeps submitted" : "known: " + known, ")"));
}

JobTable::JobRecord* JobTable::FindJob(const std::string& sweep, const std::string& job_id) const {
  auto found_sweep = sweeps_.find(sweep);
  if (found_sweep == sweeps_.end()) return nullptr;
  auto found = found_sweep->second->by_id.find(job_id);
  return found == found_sweep->second->by_id.end() ? nullptr : found->second;
}

JobTable::JobRecord& JobTable::JobOf(const LeaseRef& lease) const {
  JobRecord* job = FindJob(lease.sweep, lease.job_id);
  PS_CHECK(job != nullptr, "effects name an unknown job ", lease.sweep, "/", lease.job_id);
  return *job;
}

std::string JobTable::CheckHolder(const std::string& worker_id, const LeaseRef& lease, const JobRecord** job) const {
  if (sweeps_.count(lease.sweep) == 0) return StrCat("unknown sweep '", lease.sweep, "'");
  const JobRecord* record = FindJob(lease.sweep, lease.job_id);
  if (record == nullptr) return StrCat("unknown job ", lease.job_id, " in sweep ", lease.sweep);
  const JobDurable& d = record->durable();
  if (IsFinished(d.state)) return StrCat("job ", record->id(), " is already ", JobStateName(d.state));
  if (lease.attempt != d.attempt) {
    return StrCat("job ", record->id(), " attempt ", lease.attempt, " is stale: current attempt is ", d.attempt);
  }
  if (!IsActive(d.state)) {
    return StrCat("job ", record->id(), " attempt ", lease.attempt, " is no longer leased (the job is ",
                  JobStateName(d.state), ")");
  }
  if (d.worker != worker_id) {
    return StrCat("job ", record->id(), " attempt ", lease.attempt, " is leased to worker ", d.worker, ", not ",
                  worker_id);
  }
  *job = record;
  return "";
}

const JobTable::JobRecord* JobTable::HolderOf(const std::string& worker_id, const LeaseRef& lease,
                                              Report& report) const {
  const JobRecord* job = nullptr;
  report.ack.reason = CheckHolder(worker_id, lease, &job);
  return job;
}

bool JobTable::KnownWorker(const std::string& worker_id) const { return workers_.count(worker_id) != 0; }

std::vector<std::string> JobTable::SweepNames() const {
  std::vector<std::string> names;
  for (const SweepRecord* sweep : sweep_order_) names.push_back(sweep->stored.name);
  return names;
}

// --- Submit ---

void JobTable::ValidateSubmission(const SweepSubmission& submission) {
  const std::string& name = submission.name;
  if (!IsPlainName(name)) {
    throw Error(StrCat("sweep name '", name, "' is not valid: use letters, digits, '_', '.' and '-'"));
  }
  if (submission.metric_name.empty()) throw Error(StrCat("sweep ", name, ": no metric name"));
  try {
    ValidateEarlyTermination(submission.early_terminate);
  } catch (const Error& e) {
    throw Error(StrCat("sweep ", name, ": ", e.what()));
  }
  if (submission.max_attempts < 0) {
    throw Error(StrCat("sweep ", name, ": max_attempts must be >= 0 (0: the default), got ", submission.max_attempts));
  }
  std::set<std::string> parameters;
  for (const std::string& parameter : submission.parameters) {
    if (parameter.empty()) throw Error(StrCat("sweep ", name, ": empty parameter name"));
    if (!parameters.insert(parameter).second) {
      throw Error(StrCat("sweep ", name, ": parameter '", parameter, "' is listed twice"));
    }
  }
  std::set<std::string> ids;
  for (const SweepSubmission::Job& job : submission.jobs) {
    if (!IsPlainName(job.id) || job.id[0] == '.') {
      throw Error(StrCat("sweep ", name, ": job id '", job.id,
                         "' is not valid: use letters, digits, '_', '.' and '-' (not first)"));
    }
    if (!ids.insert(job.id).second) throw Error(StrCat("sweep ", name, ": job id ", job.id, " appears twice"));
    if (job.kind == kTrainJob) {
      std::string expected;
      try {
        expected = JobId(JobSettings{job.settings, job.verbalizer});
      } catch (const nlohmann::json::exception& e) {
        throw Error(StrCat("sweep ", name, ": job ", job.id, ": settings are not valid UTF-8 text (", e.what(), ")"));
      }
      if (expected != job.id) {
        throw Error(StrCat("sweep ", name, ": job id ", job.id, " does not match its settings (their id is ",
                           expected, "); expand the sweep again with this promptsweep"));
      }
    } else if (job.kind != kSleepJob) {
      throw Error(StrCat("sweep ", name, ": job ", job.id, " has unknown kind '", job.kind, "' (train or sleep)"));
    }
  }
}

void JobTable::CheckMerge(const SweepRecord& sweep, const SweepSubmission& submission) const {
  const StoredSweep& stored = sweep.stored;
  const std::string& name = stored.name;
  if (submission.parameters != stored.parameters) {
    throw Error(StrCat("sweep ", name, " exists with other swept parameters (", nlohmann::json(stored.parameters).dump(),
                       " vs ", nlohmann::json(submission.parameters).dump(), "); give the changed sweep another name"));
  }
  if (!submission.output_dir.empty() && NormalizeDir(submission.output_dir) != stored.output_dir) {
    throw Error(StrCat("sweep ", name, " exists with output directory ", stored.output_dir, ", not ",
                       NormalizeDir(submission.output_dir), "; leave it out or give the sweep another name"));
  }
  if (submission.early_terminate != stored.early_terminate) {
    throw Error(StrCat("sweep ", name, " exists with early_terminate ", DescribeEarlyTermination(stored.early_terminate),
                       ", not ", DescribeEarlyTermination(submission.early_terminate),
                       "; give the changed sweep another name"));
  }
  if (submission.metric_name != stored.metric_name) {
    throw Error(StrCat("sweep ", name, " exists with metric ", stored.metric_name, ", not ", submission.metric_name,
                       "; give the changed sweep another name"));
  }
}

StoredSweep JobTable::NewSweep(const SweepSubmission& submission) const {
  StoredSweep sweep;
  sweep.name = submission.name;
  sweep.seq = next_sweep_seq_;
  sweep.sweep_file = submission.sweep_file;
  sweep.yaml = submission.yaml;
  sweep.metric_name = submission.metric_name;
  sweep.maximize = submission.maximize;
  sweep.output_dir = NormalizeDir(submission.output_dir.empty()
                                      ? (fs::path(options_.default_output_root) / submission.name).string()
                                      : submission.output_dir);
  sweep.parameters = submission.parameters;
  sweep.max_attempts = submission.max_attempts > 0 ? submission.max_attempts : options_.max_attempts;
  sweep.early_terminate = submission.early_terminate;
  sweep.created = WallTime();
  auto other = sweep_by_output_.find(sweep.output_dir);
  if (other != sweep_by_output_.end()) {
    throw Error(StrCat("sweep ", sweep.name, ": output directory ", sweep.output_dir, " belongs to sweep ",
                       other->second->stored.name, "; choose another"));
  }
  return sweep;
}

JobTable::Submission JobTable::PlanSubmit(const SweepSubmission& submission) const {
  Submission plan;
  plan.result.sweep = submission.name;
  auto existing = sweeps_.find(submission.name);
  const SweepRecord* sweep = existing != sweeps_.end() ? existing->second.get() : nullptr;
  if (sweep != nullptr) {
    CheckMerge(*sweep, submission);
    plan.result.output_dir = sweep->stored.output_dir;
  } else {
    StoredSweep created = NewSweep(submission);
    plan.result.output_dir = plan.new_output_dir = created.output_dir;
    // An empty results.csv with its header from the start; it replaces
    // whatever an older state left in this directory.
    ResultsBatch& fresh = plan.effects.results.emplace_back();
    fresh.sweep = created.name;
    fresh.output_dir = created.output_dir;
    fresh.metric_name = created.metric_name;
    fresh.parameters = created.parameters;
    fresh.new_sweep = true;
    plan.effects.writes.sweeps.push_back(std::move(created));
  }
  int64_t seq = next_job_seq_;
  for (const SweepSubmission::Job& job : submission.jobs) {
    if (sweep != nullptr && sweep->by_id.count(job.id) != 0) {
      ++plan.result.existing;
      continue;
    }
    StoredJob& stored = plan.effects.writes.jobs.emplace_back();
    stored.sweep = submission.name;
    stored.id = job.id;
    stored.seq = seq++;
    stored.seed = job.seed;
    stored.kind = job.kind;
    stored.swept = job.swept;
    stored.settings = job.settings;
    stored.verbalizer = job.verbalizer;
    stored.model_key = job.kind == kTrainJob ? ModelKey(job.settings) : "";
  }
  plan.result.added = static_cast<int64_t>(plan.effects.writes.jobs.size());
  return plan;
}

// --- Workers and leases ---

JobTable::Registration JobTable::PlanRegisterWorker(const WorkerInfo& info) const {
  // The id shows up in results.csv and logs: keep it one plain word.
  std::string host;
  for (const char c : info.host) host += IsNameChar(c) ? c : '_';
  Registration plan;
  StoredWorker& worker = plan.effects.writes.workers.emplace_back();
  worker.id = next_worker_;
  worker.name = host.empty() ? StrCat("w", worker.id) : StrCat("w", worker.id, "-", host);
  worker.info = info;
  worker.registered = WallTime();
  plan.worker_id = worker.name;
  return plan;
}

void JobTable::Touch(const std::string& worker_id) {
  auto found = workers_.find(worker_id);
  if (found != workers_.end()) found->second.last_seen = Now();
}

void JobTable::Renew(JobRecord& job) {
  job.renewed_at = Now();
  job.deadline = job.renewed_at + options_.lease_timeout_seconds;
}

const JobTable::JobRecord* JobTable::OldestOf(const PendingIndex& index, const std::vector<std::string>& keys) {
  const JobRecord* job = nullptr;
  for (const std::string& key : keys) {
    auto found = index.find(key);
    if (found == index.end() || key.empty()) continue;
    const JobRecord* first = found->second.begin()->second;
    if (job == nullptr || KeyOf(*first) < KeyOf(*job)) job = first;
  }
  return job;
}

const JobTable::JobRecord* JobTable::NextPending(const std::vector<std::string>& loaded_models,
                                                 const std::vector<std::string>& running_packs) const {
  // A job that joins a running pack shares its forward/backward; one of a
  // loaded model saves a model load; else the oldest.
  const JobRecord* job = OldestOf(pending_by_pack_, running_packs);
  if (job == nullptr) job = OldestOf(pending_by_model_, loaded_models);
  if (job == nullptr && !pending_.empty()) job = pending_.begin()->second;
  return job;
}

JobTable::LeaseGrant JobTable::PlanLease(const std::string& worker_id, const std::vector<std::string>& loaded_models,
                                         const std::vector<std::string>& running_packs) const {
  if (workers_.count(worker_id) == 0) throw Error(StrCat("unknown worker '", worker_id, "': register first"));
  LeaseGrant grant;
  const JobRecord* job = NextPending(loaded_models, running_packs);
  if (job == nullptr) return grant;
  JobDurable next = job->durable();
  next.state = JobState::kLeased;
  ++next.attempt;
  next.worker = worker_id;
  grant.checkpoint_path = next.checkpoint_path;
  JobSpec& spec = grant.spec.emplace();
  spec.sweep = job->sweep->stored.name;
  spec.job_id = job->id();
  spec.attempt = next.attempt;
  spec.kind = job->stored.kind;
  spec.settings = job->stored.settings;
  spec.verbalizer = job->stored.verbalizer;
  if (!next.stop_reason.empty()) {  // decided in an earlier attempt whose holder never heard it
    spec.stop_at_step = next.stop_step;
    spec.stop_reason = next.stop_reason;
  }
  grant.effects.renew.push_back(RefOf(spec.sweep, spec.job_id, spec.attempt));
  AddChange(grant.effects, *job, std::move(next));
  return grant;
}

Effects JobTable::PlanCheckpointLost(const LeaseRef& lease, const std::string& path, const std::string& reason) const {
  Effects effects;
  const JobRecord* job = FindJob(lease.sweep, lease.job_id);
  if (job == nullptr || job->durable().attempt != lease.attempt || job->durable().checkpoint_path != path) {
    return effects;
  }
  // A lost checkpoint must not wedge the job: it starts over.
  JobDurable next = job->durable();
  next.message = StrCat("checkpoint unreadable (", reason, "); started from scratch");
  next.checkpoint_path.clear();
  next.checkpoint_step = 0;
  AddChange(effects, *job, std::move(next));
  return effects;
}

std::vector<LeaseRef> JobTable::Heartbeat(const std::string& worker_id, const std::vector<LeaseRef>& held,
                                          std::vector<StopOrder>* stop) {
  Touch(worker_id);
  std::vector<LeaseRef> lost;
  for (const LeaseRef& lease : held) {
    const JobRecord* job = nullptr;
    if (CheckHolder(worker_id, lease, &job).empty()) {
      Renew(*FindJob(lease.sweep, lease.job_id));
      const JobDurable& d = job->durable();
      // A later attempt got the decision with its lease (stop_at_step).
      if (stop != nullptr && !d.stop_reason.empty() && d.stop_attempt == lease.attempt) {
        stop->push_back(StopOrder{lease, d.stop_reason});
      }
    } else {
      lost.push_back(lease);
    }
  }
  return lost;
}

JobTable::Report JobTable::PlanProgress(const std::string& worker_id, const LeaseRef& lease,
                                        const JobProgress& progress) const {
  Report report;
  const JobRecord* job = HolderOf(worker_id, lease, report);
  if (job == nullptr) return report;
  report.ack.accepted = true;
  JobDurable next = job->durable();
  next.state = JobState::kRunning;
  PlanRung(*job, progress, next, report.effects);
  if (job->durable().state == JobState::kLeased || next.stop_reason != job->durable().stop_reason) {
    AddChange(report.effects, *job, std::move(next));
  }
  report.effects.renew.push_back(lease);
  report.effects.progress.emplace(lease, progress);  // memory only: status shows it, a restart forgets it
  return report;
}

void JobTable::PlanRung(const JobRecord& job, const JobProgress& progress, JobDurable& next,
                        Effects& effects) const {
  const SweepRecord& sweep = *job.sweep;
  const EarlyTermination& config = sweep.stored.early_terminate;
  if (!config.enabled() || !progress.dev_metric || job.eval_every <= 0 || progress.step <= 0 ||
      progress.step % job.eval_every != 0) {
    return;
  }
  RungReport report;
  report.iteration = progress.step / job.eval_every;
  report.step = progress.step;
  report.evaluations = job.max_steps / job.eval_every;
  report.value = RungValue(config, *progress.dev_metric, progress.best_metric.value_or(*progress.dev_metric));
  if (!std::isfinite(report.value)) return;  // a diverging job ends itself; NaN never enters a cutoff
  // A rerun attempt (its lease was lost) meets its rungs again: the first
  // report's value and decision stand.
  const auto at_rung = sweep.rungs.find(report.iteration);
  if (at_rung != sweep.rungs.end() && at_rung->second.count(job.id()) != 0) return;
  std::vector<double> others;
  if (at_rung != sweep.rungs.end()) {
    for (const auto& [id, value] : at_rung->second) {
      const auto other = sweep.by_id.find(id);
      if (other != sweep.by_id.end() && other->second->bracket == job.bracket) others.push_back(value);
    }
  }
  const RungDecision decision =
      DecideAtRung(config, sweep.stored.metric_name, sweep.stored.maximize, report, others, job.bracket);
  if (decision.rung) {
    effects.writes.rungs.push_back(
        StoredRung{sweep.stored.name, job.id(), report.iteration, report.step, report.value});
  }
  if (decision.stop && next.stop_reason.empty()) {
    next.stop_reason = decision.reason;
    next.stop_step = report.step;
    next.stop_attempt = next.attempt;
  }
}

// --- Reports ---

void JobTable::MarkFinished(JobDurable& next, JobState state, int64_t finish_seq) {
  next.state = state;
  next.finished_at = WallTime();
  next.finish_seq = finish_seq;
  next.checkpoint_path.clear();  // removed by the sink after the job's rows
  next.checkpoint_step = 0;
}

JobDurable JobTable::FinishedWith(const JobRecord& job, const JobOutcome& outcome, int64_t finish_seq) const {
  JobDurable next = job.durable();
  next.has_outcome = true;
  next.final_dev = NanToNull(outcome.final_dev);
  next.best_dev = NanToNull(outcome.best_dev);
  next.test = NanToNull(outcome.test);
  next.best_step = outcome.best_step;
  next.steps = outcome.steps;
  next.train_loss = outcome.train_loss;
  next.tokens_per_second = outcome.tokens_per_second;
  next.wall_seconds = outcome.wall_seconds;
  next.message = outcome.message;
  if (outcome.state == JobState::kFailed && outcome.retryable) {
    ++next.failures;
    if (next.failures >= job.max_attempts()) {
      next.message = StrCat(outcome.message, " (attempt ", next.attempt, "; ", next.failures,
                            " failed attempts of max_attempts ", job.max_attempts(), ")");
      MarkFinished(next, JobState::kFailed, finish_seq);
    } else {
      next.state = JobState::kPending;
      next.message = StrCat(outcome.message, " (attempt ", next.attempt, "; will retry)");
    }
  } else {
    MarkFinished(next, outcome.state, finish_seq);
    // The coordinator's reason, committed with its decision, is the record.
    if (outcome.state == JobState::kStopped && !next.stop_reason.empty()) {
      next.message = StrCat(next.stop_reason, "; stopped at step ", outcome.steps);
    }
  }
  if (IsSuccess(next.state) && !outcome.files.empty()) next.adapter = "adapters/" + job.id();
  return next;
}

JobTable::Report JobTable::PlanResult(const std::string& worker_id, const LeaseRef& lease,
                                      const JobOutcome& outcome) const {
  Report report;
  const JobRecord* job = HolderOf(worker_id, lease, report);
  if (job == nullptr) return report;
  if (!IsFinished(outcome.state)) {
    report.ack.reason = StrCat("job ", job->id(),
                               ": a result must be succeeded, stopped, failed, diverged or cancelled, not ",
                               JobStateName(outcome.state));
    return report;
  }
  // A preempted job: cancelled with its trainer state, to resume elsewhere.
  if (outcome.state == JobState::kCancelled && !outcome.checkpoint.empty()) {
    return CheckpointReport(*job, worker_id, outcome.checkpoint, outcome.steps);
  }
  std::set<std::string> names;
  for (const auto& file : outcome.files) {
    if (!IsPlainFileName(file.first)) {
      report.ack.reason = StrCat("job ", job->id(), ": result file name '", file.first,
                                 "' is not a plain file name (no '/', '.' or '..')");
      return report;
    }
    if (!names.insert(file.first).second) {
      report.ack.reason = StrCat("job ", job->id(), ": result file '", file.first, "' appears twice");
      return report;
    }
  }
  report.ack.accepted = true;
  JobDurable next = FinishedWith(*job, outcome, next_finish_seq_);
  if (!next.adapter.empty()) {  // succeeded with files
    report.stage = FilesToStage{FilesToStage::Kind::kAdapter,
                                (fs::path(job->sweep->stored.output_dir) / next.adapter).string()};
  }
  AddChange(report.effects, *job, std::move(next), &outcome.history);
  return report;
}

JobTable::Report JobTable::PlanCheckpoint(const std::string& worker_id, const LeaseRef& lease,
                                          const std::string& checkpoint, int64_t step) const {
  Report report;
  const JobRecord* job = HolderOf(worker_id, lease, report);
  if (job == nullptr) return report;
  return CheckpointReport(*job, worker_id, checkpoint, step);
}

JobTable::Report JobTable::CheckpointReport(const JobRecord& job, const std::string& worker_id,
                                            const std::string& checkpoint, int64_t step) const {
  Report report;
  if (checkpoint.empty()) {
    report.ack.reason = StrCat("job ", job.id(), ": empty checkpoint");
    return report;
  }
  report.ack.accepted = true;
  const std::string path =
      (fs::path(job.sweep->stored.output_dir) / "checkpoints" / (job.id() + ".state")).string();
  report.stage = FilesToStage{FilesToStage::Kind::kCheckpoint, path};
  JobDurable next = job.durable();
  next.state = JobState::kPending;  // not a failure: `failures` stays
  next.checkpoint_path = path;
  next.checkpoint_step = step;
  next.message = StrCat("preempted on worker ", worker_id, " at step ", step, " (attempt ", next.attempt,
                        "); resumes from its checkpoint");
  AddChange(report.effects, job, std::move(next), nullptr, kAttemptPreempted);
  return report;
}

JobTable::Batch JobTable::PlanExpiry() const {
  const double now = Now();
  std::vector<const JobRecord*> expired;
  for (const JobRecord* job : active_) {
    if (now > job->deadline) expired.push_back(job);
  }
  // Submission order, so finish order (and results.csv) does not depend on hashing.
  std::sort(expired.begin(), expired.end(),
            [](const JobRecord* a, const JobRecord* b) { return KeyOf(*a) < KeyOf(*b); });
  Batch batch;
  int64_t finish_seq = next_finish_seq_;
  for (const JobRecord* job : expired) {
    JobDurable next = job->durable();
    ++next.failures;
    next.message = StrCat("lease expired on worker ", next.worker, " (no heartbeat for ",
                          static_cast<int64_t>(std::floor(now - job->renewed_at)), "s), attempt ", next.attempt);
    if (next.failures >= job->max_attempts()) {
      next.message += StrCat("; failed after ", next.failures, " failed attempts (max_attempts ",
                             job->max_attempts(), ")");
      next.has_outcome = false;
      MarkFinished(next, JobState::kFailed, finish_seq++);
    } else {
      next.state = JobState::kPending;
    }
    AddChange(batch.effects, *job, std::move(next), nullptr, kAttemptExpired);
  }
  batch.count = static_cast<int64_t>(expired.size());
  return batch;
}

JobTable::Batch JobTable::PlanCancel(const std::string& sweep_name, const std::vector<std::string>& job_ids) const {
  const SweepRecord& sweep = FindSweep(sweep_name);
  std::vector<const JobRecord*> targets;
  if (job_ids.empty()) {
    for (const auto& job : sweep.jobs) {
      if (!IsFinished(job->durable().state)) targets.push_back(job.get());
    }
  } else {
    std::set<const JobRecord*> seen;
    for (const std::string& id : job_ids) {
      auto found = sweep.by_id.find(id);
      if (found == sweep.by_id.end()) throw Error(StrCat("unknown job id '", id, "' in sweep ", sweep_name));
      if (!IsFinished(found->second->durable().state) && seen.insert(found->second).second) {
        targets.push_back(found->second);
      }
    }
  }
  Batch batch;
  int64_t finish_seq = next_finish_seq_;
  for (const JobRecord* job : targets) {
    JobDurable next = job->durable();
    next.message = "cancelled by user";
    next.has_outcome = false;
    MarkFinished(next, JobState::kCancelled, finish_seq++);
    AddChange(batch.effects, *job, std::move(next));
  }
  batch.count = static_cast<int64_t>(targets.size());
  return batch;
}

// --- Effects ---

ResultsBatch& JobTable::BatchFor(Effects& effects, const SweepRecord& sweep) {
  for (ResultsBatch& batch : effects.results) {
    if (batch.sweep == sweep.stored.name) return batch;
  }
  ResultsBatch& batch = effects.results.emplace_back();
  batch.sweep = sweep.stored.name;
  batch.output_dir = sweep.stored.output_dir;
  batch.metric_name = sweep.stored.metric_name;
  batch.parameters = sweep.stored.parameters;
  return batch;
}

void JobTable::AddChange(Effects& effects, const JobRecord& job, JobDurable next,
                         const std::vector<MetricRow>* metrics, const char* ended_as) {
  const JobDurable& before = job.durable();
  const bool starts = next.attempt > before.attempt && IsActive(next.state);  // a lease
  const bool ends = !starts && IsActive(before.state) && !IsActive(next.state);
  if (starts || ends) {
    StoredAttempt& attempt = effects.writes.attempts.emplace_back();
    attempt.sweep = job.sweep->stored.name;
    attempt.job_id = job.id();
    attempt.attempt = starts ? next.attempt : before.attempt;
    attempt.worker = starts ? next.worker : before.worker;
    if (starts) {
      attempt.started = WallTime();
      attempt.start_step = next.checkpoint_step;
    } else {
      attempt.ended = WallTime();
      attempt.outcome = ended_as != nullptr        ? ended_as
                        : IsFinished(next.state)   ? std::string(JobStateName(next.state))
                                                   : std::string(kAttemptRetry);
      if (ended_as != nullptr && std::string_view(ended_as) == kAttemptPreempted) {
        attempt.end_step = next.checkpoint_step;
      } else if (next.has_outcome && IsFinished(next.state)) {
        attempt.end_step = next.steps;
      } else if (job.progress) {
        attempt.end_step = job.progress->step;
      }
    }
  }
  if (IsFinished(next.state)) {
    ResultsBatch& batch = BatchFor(effects, *job.sweep);
    FinishedJobRows& rows = batch.rows.emplace_back();
    rows.result = MakeResultRow(job, next);
    if (metrics != nullptr) {
      rows.metrics = *metrics;
      effects.writes.metrics.push_back({job.sweep->stored.name, job.id(), *metrics});
    }
    if (!job.durable().checkpoint_path.empty()) batch.obsolete_files.push_back(job.durable().checkpoint_path);
  }
  effects.writes.updates.push_back({job.sweep->stored.name, job.id(), std::move(next)});
}

ResultRow JobTable::MakeResultRow(const JobRecord& job, const JobDurable& d) {
  return ResultRowOf(job.sweep->stored.parameters, job.stored, d);
}

ResultRow JobTable::ResultRowOf(const std::vector<std::string>& parameters, const StoredJob& job,
                                const JobDurable& d) {
  ResultRow row;
  row.job_id = job.id;
  for (const std::string& parameter : parameters) row.swept.push_back(SettingValue(job.swept, parameter));
  row.seed = job.seed;
  row.status = std::string(JobStateName(d.state));
  row.attempts = d.attempt;
  if (d.has_outcome) {
    row.final_dev = d.final_dev;
    row.best_dev = d.best_dev;
    row.best_step = d.best_step;
    row.test = d.test;
    row.train_loss = d.train_loss;
    row.steps = d.steps;
    if (d.state == JobState::kStopped) row.stopped_at_step = d.steps;
    row.tokens_per_second = d.tokens_per_second;
    row.wall_seconds = d.wall_seconds;
  }
  row.worker = d.worker;
  row.adapter = d.adapter;
  row.message = d.message;
  return row;
}

bool JobTable::Apply(const Effects& effects) {
  bool now_pending = false;
  for (const StoredSweep& sweep : effects.writes.sweeps) AddSweep(sweep);
  for (const StoredJob& job : effects.writes.jobs) now_pending |= AddJob(job);
  for (const JobUpdate& update : effects.writes.updates) {
    now_pending |= UpdateJob(JobOf({update.sweep, update.job_id, 0}), update.durable);
  }
  for (const StoredWorker& worker : effects.writes.workers) AddWorker(worker, Now());
  for (const StoredRung& rung : effects.writes.rungs) {
    FindSweep(rung.sweep).rungs[rung.iteration].emplace(rung.job_id, rung.value);
  }
  for (const LeaseRef& lease : effects.renew) Renew(JobOf(lease));
  if (effects.progress) JobOf(effects.progress->first).progress = effects.progress->second;
  return now_pending;
}

void JobTable::AddSweep(const StoredSweep& stored) {
  PS_CHECK(sweeps_.count(stored.name) == 0, "sweep ", stored.name, " added twice");
  auto sweep = std::make_unique<SweepRecord>();
  sweep->stored = stored;
  next_sweep_seq_ = std::max(next_sweep_seq_, stored.seq + 1);
  sweep_order_.push_back(sweep.get());
  sweep_by_output_[stored.output_dir] = sweep.get();
  sweeps_[stored.name] = std::move(sweep);
}

bool JobTable::AddJob(const StoredJob& stored) {
  SweepRecord& sweep = FindSweep(stored.sweep);
  PS_CHECK(sweep.by_id.count(stored.id) == 0, "job ", stored.id, " added twice");
  auto job = std::make_unique<JobRecord>();
  job->sweep = &sweep;
  job->stored = stored;
  if (stored.kind == kTrainJob) {
    job->pack_key = PackKey(stored.settings, stored.verbalizer);
    job->max_steps = ParseInteger(SettingValue(stored.settings, "max_steps")).value_or(0);
    job->eval_every = ParseInteger(SettingValue(stored.settings, "eval_every")).value_or(0);
    job->bracket = BracketOf(sweep.stored.early_terminate, stored.id);
  }
  JobRecord* record = job.get();
  sweep.by_id[stored.id] = record;
  sweep.jobs.push_back(std::move(job));
  next_job_seq_ = std::max(next_job_seq_, stored.seq + 1);
  next_finish_seq_ = std::max(next_finish_seq_, stored.durable.finish_seq + 1);
  if (stored.durable.state == JobState::kPending) IndexPending(*record);
  if (IsActive(stored.durable.state)) active_.insert(record);
  return stored.durable.state == JobState::kPending;
}

bool JobTable::UpdateJob(JobRecord& job, const JobDurable& next) {
  const JobState before = job.durable().state;
  const JobState after = next.state;
  job.stored.durable = next;
  next_finish_seq_ = std::max(next_finish_seq_, next.finish_seq + 1);
  if (before == JobState::kPending && after != JobState::kPending) UnindexPending(job);
  if (IsActive(before) && !IsActive(after)) active_.erase(&job);
  if (!IsActive(before) && IsActive(after)) active_.insert(&job);
  if (after == JobState::kLeased && before == JobState::kPending && !job.sweep->first_lease) {
    job.sweep->first_lease = Now();
  }
  if (before != JobState::kPending && after == JobState::kPending) {
    IndexPending(job);
    job.progress.reset();
    return true;
  }
  return false;
}

namespace {

// Drops `queue_key` from `index[key]`, and the key when nothing is left under it.
template <typename Index, typename QueueKey>
void RemoveFromIndex(Index& index, const std::string& key, const QueueKey& queue_key) {
  auto found = index.find(key);
  if (found == index.end()) return;
  found->second.erase(queue_key);
  if (found->second.empty()) index.erase(found);
}

}  // namespace

void JobTable::IndexPending(JobRecord& job) {
  pending_[KeyOf(job)] = &job;
  pending_by_model_[job.stored.model_key][KeyOf(job)] = &job;
  pending_by_pack_[job.pack_key][KeyOf(job)] = &job;
}

void JobTable::UnindexPending(JobRecord& job) {
  pending_.erase(KeyOf(job));
  RemoveFromIndex(pending_by_model_, job.stored.model_key, KeyOf(job));
  RemoveFromIndex(pending_by_pack_, job.pack_key, KeyOf(job));
}

void JobTable::AddWorker(const StoredWorker& stored, double last_seen) {
  next_worker_ = std::max(next_worker_, stored.id + 1);
  workers_[stored.name] = WorkerRecord{stored.info, last_seen};
}

// --- Output for the sink ---

ResultsBatch JobTable::CsvTarget(const std::string& sweep) const {
  Effects scratch;
  return BatchFor(scratch, FindSweep(sweep));
}

std::vector<FinishedJobRows> JobTable::FinishedRows(const std::string& sweep_name,
                                                    std::vector<StoredMetric> metrics) const {
  const SweepRecord& sweep = FindSweep(sweep_name);
  std::vector<const JobRecord*> finished;
  for (const auto& job : sweep.jobs) {
    if (IsFinished(job->durable().state)) finished.push_back(job.get());
  }
  std::sort(finished.begin(), finished.end(), [](const JobRecord* a, const JobRecord* b) {
    return std::make_pair(a->durable().finish_seq, a->stored.seq) <
           std::make_pair(b->durable().finish_seq, b->stored.seq);
  });
  std::unordered_map<std::string, std::vector<MetricRow>> by_job;
  for (StoredMetric& metric : metrics) by_job[metric.first].push_back(std::move(metric.second));
  std::vector<FinishedJobRows> rows;
  rows.reserve(finished.size());
  for (const JobRecord* job : finished) {
    FinishedJobRows& out = rows.emplace_back();
    out.result = MakeResultRow(*job, job->durable());
    auto found = by_job.find(job->id());
    if (found != by_job.end()) out.metrics = std::move(found->second);
  }
  return rows;
}

// --- Status ---

// What the ETA needs from one pass over the jobs.
struct JobTable::StatusTally {
  double wall_sum = 0.0;       // wall seconds of finished jobs with an outcome
  int64_t wall_count = 0;
  double active_left = 0.0;    // seconds the running jobs still need (their estimates)
  int64_t active_unknown = 0;  // running jobs without an estimate yet
};

void JobTable::Count(SweepStatus& status, JobState state) {
  switch (state) {
    case JobState::kPending: ++status.pending; break;
    case JobState::kLeased: ++status.leased; break;
    case JobState::kRunning: ++status.running; break;
    case JobState::kSucceeded: ++status.succeeded; break;
    case JobState::kFailed: ++status.failed; break;
    case JobState::kDiverged: ++status.diverged; break;
    case JobState::kCancelled: ++status.cancelled; break;
    case JobState::kStopped: ++status.stopped; break;
  }
}

JobStatusRow JobTable::StatusRow(const JobRecord& job) {
  const JobDurable& d = job.durable();
  JobStatusRow row;
  row.job_id = job.id();
  row.state = d.state;
  row.attempts = d.attempt;
  row.worker = d.worker;
  row.swept = job.stored.swept;
  row.seed = job.stored.seed;
  row.message = d.message;
  row.has_checkpoint = !d.checkpoint_path.empty();
  row.step = d.checkpoint_step;
  if (IsActive(d.state) && job.progress) {
    const JobProgress& p = *job.progress;
    row.step = p.step;
    row.max_steps = p.max_steps;
    row.train_loss = p.train_loss;
    row.eta_seconds = p.eta_seconds;
    row.best_dev = p.best_metric;
  } else if (IsFinished(d.state) && d.has_outcome) {
    row.max_steps = job.max_steps;
    row.step = d.steps;
    row.train_loss = d.train_loss;
    row.best_dev = d.best_dev;
    row.test = d.test;
  }
  return row;
}

void JobTable::EstimateEta(SweepStatus& status, const StatusTally& tally) const {
  const double now = Now();
  for (const auto& [id, worker] : workers_) {
    if (now - worker.last_seen <= options_.lease_timeout_seconds) ++status.live_workers;
  }
  // Work left = pending jobs at the mean wall time of finished ones, plus what
  // running jobs report they still need, shared by the live workers.
  if (tally.wall_count == 0) return;
  const double mean = tally.wall_sum / static_cast<double>(tally.wall_count);
  status.eta_seconds = (static_cast<double>(status.pending + tally.active_unknown) * mean + tally.active_left) /
                       static_cast<double>(std::max<int64_t>(1, status.live_workers));
}

SweepStatus JobTable::Status(const std::string& sweep_name, bool with_jobs) const {
  const SweepRecord& sweep = FindSweep(sweep_name);
  const StoredSweep& stored = sweep.stored;
  SweepStatus status;
  status.name = stored.name;
  status.output_dir = stored.output_dir;
  status.metric_name = stored.metric_name;
  status.maximize = stored.maximize;
  status.parameters = stored.parameters;
  status.total = static_cast<int64_t>(sweep.jobs.size());
  if (with_jobs) status.jobs.reserve(sweep.jobs.size());
  StatusTally tally;
  for (const auto& job : sweep.jobs) {
    const JobDurable& d = job->durable();
    Count(status, d.state);
    if (IsFinished(d.state) && d.has_outcome && d.wall_seconds > 0) {
      tally.wall_sum += d.wall_seconds;
      ++tally.wall_count;
    }
    // Running jobs count with their worker's own estimate of what is left.
    if (IsActive(d.state)) {
      if (job->progress && job->progress->step > 0) {
        tally.active_left += job->progress->eta_seconds;
      } else {
        ++tally.active_unknown;
      }
    }
    status.steps_planned += job->max_steps;
    if (d.state == JobState::kStopped && d.has_outcome) {
      status.steps_saved += std::max<int64_t>(0, job->max_steps - d.steps);
    }
    if (IsSuccess(d.state) && d.best_dev) {
      const bool better = !status.best_dev ||
                          (stored.maximize ? *d.best_dev > *status.best_dev : *d.best_dev < *status.best_dev);
      if (better) {
        status.best_dev = d.best_dev;
        status.best_job = job->id();
      }
    }
    if (with_jobs) status.jobs.push_back(StatusRow(*job));
  }
  status.done = status.pending + status.leased + status.running == 0;
  if (sweep.first_lease) status.elapsed_seconds = Now() - *sweep.first_lease;
  EstimateEta(status, tally);
  return status;
}

}  // namespace promptsweep
