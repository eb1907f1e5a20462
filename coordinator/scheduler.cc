#include "coordinator/scheduler.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <condition_variable>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <limits>
#include <map>
#include <mutex>
#include <set>
#include <unordered_map>
#include <unordered_set>
#include <utility>

#include <nlohmann/json.hpp>

#include "common/error.h"
#include "common/file_util.h"
#include "coordinator/results_csv.h"
#include "coordinator/sqlite_db.h"
#include "coordinator/sweep_spec.h"

namespace promptsweep {
namespace {

namespace fs = std::filesystem;

constexpr int64_t kSchemaVersion = 1;
constexpr char kDbFile[] = "promptsweep.db";
constexpr char kLockFile[] = "promptsweep.lock";

// Durability: WAL with synchronous=NORMAL commits without an fsync (the WAL
// is synced at checkpoints). A killed process loses nothing, since committed
// pages are in the OS page cache; only a power loss or kernel crash can take
// back the last commits, and then workers' reports are simply rejected or the
// jobs rerun. Full sync would cost an fsync per lease and per result.
constexpr char kSchema[] = R"sql(
CREATE TABLE IF NOT EXISTS sweeps(
  name TEXT PRIMARY KEY, seq INTEGER NOT NULL, sweep_file TEXT NOT NULL, yaml TEXT NOT NULL,
  metric_name TEXT NOT NULL, maximize INTEGER NOT NULL, output_dir TEXT NOT NULL,
  parameters TEXT NOT NULL, max_attempts INTEGER NOT NULL, created REAL NOT NULL);
CREATE TABLE IF NOT EXISTS jobs(
  sweep TEXT NOT NULL, job_id TEXT NOT NULL, seq INTEGER NOT NULL, seed INTEGER NOT NULL, kind TEXT NOT NULL,
  swept TEXT NOT NULL, settings TEXT NOT NULL, verbalizer TEXT NOT NULL, model_key TEXT NOT NULL,
  state TEXT NOT NULL, attempt INTEGER NOT NULL, failures INTEGER NOT NULL, worker TEXT NOT NULL,
  checkpoint_path TEXT NOT NULL, checkpoint_step INTEGER NOT NULL, message TEXT NOT NULL,
  has_outcome INTEGER NOT NULL, final_dev REAL, best_dev REAL, test REAL, best_step INTEGER, steps INTEGER,
  train_loss REAL, tokens_per_second REAL, wall_seconds REAL, adapter TEXT NOT NULL,
  finished_at REAL, finish_seq INTEGER,
  PRIMARY KEY(sweep, job_id));
CREATE TABLE IF NOT EXISTS workers(
  id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, host TEXT NOT NULL, device TEXT NOT NULL,
  ranks INTEGER NOT NULL, threads INTEGER NOT NULL, memory_bytes INTEGER NOT NULL, pid INTEGER NOT NULL,
  registered REAL NOT NULL);
CREATE TABLE IF NOT EXISTS metrics(
  sweep TEXT NOT NULL, job_id TEXT NOT NULL, step INTEGER NOT NULL, split TEXT NOT NULL, metric TEXT NOT NULL,
  value REAL);
CREATE INDEX IF NOT EXISTS metrics_by_job ON metrics(sweep, job_id);
)sql";

// Unix time, for the record (finished_at, created); ordering uses counters.
double WallTime() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

double SteadySeconds() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

// [A-Za-z0-9._-]: characters of sweep names, job ids and worker ids.
bool IsNameChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
         c == '-';
}

// Names that become directory and file names: no separators, no special entries.
bool IsPlainName(const std::string& name) {
  if (name.empty() || name == "." || name == "..") return false;
  return std::all_of(name.begin(), name.end(), IsNameChar);
}

// A result file name: one path component.
bool IsPlainFileName(const std::string& name) {
  return !name.empty() && name != "." && name != ".." && name.find('/') == std::string::npos &&
         name.find('\0') == std::string::npos;
}

std::string NormalizeDir(const std::string& dir) {
  fs::path path = fs::absolute(fs::path(dir)).lexically_normal();
  if (!path.has_filename() && path.has_parent_path() && path != path.root_path()) path = path.parent_path();
  return path.string();
}

std::string SettingsToJson(const SettingList& settings) {
  nlohmann::json json = nlohmann::json::array();
  for (const auto& [name, value] : settings) json.push_back({name, value});
  return json.dump();
}

SettingList SettingsFromJson(const std::string& text) {
  SettingList settings;
  for (const nlohmann::json& pair : nlohmann::json::parse(text)) {
    settings.emplace_back(pair.at(0).get<std::string>(), pair.at(1).get<std::string>());
  }
  return settings;
}

std::optional<double> NanToNull(std::optional<double> value) {
  if (value && std::isnan(*value)) return std::nullopt;
  return value;
}

std::string ReadWholeFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(StrCat(path, ": cannot open: ", ErrnoText(errno)));
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (in.bad()) throw Error(StrCat(path, ": read failed"));
  return bytes;
}

// Plain write, no fsync: result files become visible by renaming their
// directory, and they are as durable as the SQLite commit that follows
// (synchronous=NORMAL, see kSchema).
void WriteWholeFile(const fs::path& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  out.close();
  if (!out) throw Error(StrCat(path.string(), ": cannot write: ", ErrnoText(errno)));
}

void CreateDirectories(const fs::path& dir) {
  std::error_code error;
  fs::create_directories(dir, error);
  if (error) throw Error(StrCat(dir.string(), ": cannot create directory: ", error.message()));
}

// Job state as stored: everything that changes after submission. A state
// change builds the next value, writes it to SQLite, and only after the
// commit replaces the record's (so a failed write changes nothing).
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
  int64_t finish_seq = 0;  // order of finishing: results.csv order
};

struct SweepRecord;

struct JobRecord {
  SweepRecord* sweep = nullptr;
  std::string id;
  int64_t seq = 0;  // submission order (global)
  uint64_t seed = 0;
  std::string kind;
  SettingList swept, settings, verbalizer;
  std::string model_key;
  JobDurable durable;
  // In memory only: a restarted coordinator gives every lease a fresh deadline.
  double deadline = 0.0;
  double renewed_at = 0.0;
  std::optional<JobProgress> progress;
};

struct SweepRecord {
  std::string name;
  int64_t seq = 0;
  std::string sweep_file, yaml, metric_name;
  bool maximize = true;
  std::string output_dir;
  std::vector<std::string> parameters;
  int64_t max_attempts = 0;
  std::vector<std::unique_ptr<JobRecord>> jobs;  // submission order
  std::unordered_map<std::string, JobRecord*> by_id;
  std::optional<double> first_lease;  // this run, scheduler clock
  std::unique_ptr<ResultsCsv> csv;
};

struct WorkerRecord {
  WorkerInfo info;
  double last_seen = -std::numeric_limits<double>::infinity();
};

// Pending order: sweeps by submission, jobs by submission.
using QueueKey = std::pair<int64_t, int64_t>;
QueueKey KeyOf(const JobRecord& job) { return {job.sweep->seq, job.seq}; }

bool IsActive(JobState state) { return state == JobState::kLeased || state == JobState::kRunning; }

}  // namespace

class Scheduler::Impl {
 public:
  explicit Impl(SchedulerOptions options);
  ~Impl();

  SubmitResult Submit(const SweepSubmission& submission);
  std::string RegisterWorker(const WorkerInfo& info);
  bool KnownWorker(const std::string& worker_id) const;
  std::optional<JobSpec> Lease(const std::string& worker_id, const std::vector<std::string>& loaded_models);
  void WaitForWork(std::chrono::steady_clock::time_point deadline);
  std::vector<LeaseRef> Heartbeat(const std::string& worker_id, const std::vector<LeaseRef>& held);
  ReportAck Progress(const std::string& worker_id, const LeaseRef& lease, const JobProgress& progress);
  ReportAck ReportResult(const std::string& worker_id, const LeaseRef& lease, const JobOutcome& outcome);
  ReportAck ReportCheckpoint(const std::string& worker_id, const LeaseRef& lease, const std::string& checkpoint,
                             int64_t step);
  int64_t ExpireLeases();
  int64_t Cancel(const std::string& sweep, const std::vector<std::string>& job_ids);
  SweepStatus Status(const std::string& sweep, bool with_jobs) const;
  std::vector<std::string> SweepNames() const;
  void Shutdown();
  bool shut_down() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return shutdown_;
  }
  double lease_timeout_seconds() const { return options_.lease_timeout_seconds; }

 private:
  void LockStateDir();
  void OpenDatabase();
  void PrepareStatements();
  void Load();
  void RebuildCsv(const SweepRecord& sweep);

  double Now() const { return clock_(); }
  void Touch(const std::string& worker_id);
  SweepRecord& FindSweep(const std::string& name) const;  // Error naming the known ones
  // Empty when `worker_id` holds `lease`; else why not (the rejection reason).
  std::string CheckHolder(const std::string& worker_id, const LeaseRef& lease, JobRecord** job) const;
  void Renew(JobRecord& job);
  int64_t MaxAttempts(const JobRecord& job) const { return job.sweep->max_attempts; }
  // Fills the finishing fields of `next`.
  void MarkFinished(JobDurable& next, JobState state);

  // Writes `next` as the job's row; inside the caller's transaction.
  void WriteJob(const JobRecord& job, const JobDurable& next);
  void WriteMetrics(const JobRecord& job, const std::vector<MetricRow>& rows);
  // After the commit: the record and the in-memory indexes follow.
  void Apply(JobRecord& job, JobDurable next);
  // After Apply of finished jobs: their CSV rows, then their checkpoint files go.
  void AppendResults(SweepRecord& sweep, const std::vector<FinishedJobRows>& rows);

  ResultRow MakeResultRow(const JobRecord& job) const;
  std::string WriteAdapter(const JobRecord& job, const std::vector<std::pair<std::string, std::string>>& files);
  ReportAck StoreCheckpoint(JobRecord& job, const std::string& worker_id, const std::string& checkpoint,
                            int64_t step);
  void RemoveFile(const std::string& path);

  SchedulerOptions options_;
  std::function<double()> clock_;
  std::string state_dir_;
  std::string db_path_;
  int lock_fd_ = -1;

  mutable std::mutex mutex_;
  std::condition_variable work_;
  bool shutdown_ = false;

  // Declared before the statements: they must be finalized before it closes.
  std::unique_ptr<SqliteDb> db_;
  SqliteStatement insert_sweep_, insert_job_, update_job_, insert_metric_, insert_worker_;

  std::map<std::string, std::unique_ptr<SweepRecord>> sweeps_;
  std::vector<SweepRecord*> sweep_order_;
  std::unordered_map<std::string, SweepRecord*> sweep_by_output_;
  std::map<QueueKey, JobRecord*> pending_;
  std::unordered_map<std::string, std::map<QueueKey, JobRecord*>> pending_by_model_;
  std::unordered_set<JobRecord*> active_;  // leased or running
  std::unordered_map<std::string, WorkerRecord> workers_;

  int64_t next_sweep_seq_ = 1;
  int64_t next_job_seq_ = 1;
  int64_t next_finish_seq_ = 1;
  int64_t next_worker_ = 1;
};

// --- Opening ---

Scheduler::Impl::Impl(SchedulerOptions options) : options_(std::move(options)) {
  clock_ = options_.clock ? options_.clock : SteadySeconds;
  if (options_.state_dir.empty()) throw Error("scheduler: no state directory given");
  if (!(options_.lease_timeout_seconds > 0)) {
    throw Error(StrCat("scheduler: lease timeout must be > 0 seconds, got ", options_.lease_timeout_seconds));
  }
  if (options_.max_attempts < 1) {
    throw Error(StrCat("scheduler: max_attempts must be >= 1, got ", options_.max_attempts));
  }
  state_dir_ = NormalizeDir(options_.state_dir);
  CreateDirectories(state_dir_);
  db_path_ = (fs::path(state_dir_) / kDbFile).string();
  LockStateDir();
  try {
    OpenDatabase();
    PrepareStatements();
    try {
      Load();
    } catch (const nlohmann::json::exception& e) {
      throw Error(StrCat(db_path_, ": a stored row is not valid (", e.what(),
                         "); move the file away to start with an empty state"));
    }
    for (SweepRecord* sweep : sweep_order_) RebuildCsv(*sweep);
  } catch (...) {
    ::close(lock_fd_);
    throw;
  }
}

Scheduler::Impl::~Impl() {
  // Statements before the connection, the connection before the lock.
  insert_sweep_ = SqliteStatement();
  insert_job_ = SqliteStatement();
  update_job_ = SqliteStatement();
  insert_metric_ = SqliteStatement();
  insert_worker_ = SqliteStatement();
  db_.reset();
  if (lock_fd_ >= 0) ::close(lock_fd_);
}

void Scheduler::Impl::LockStateDir() {
  // The in-memory index assumes one scheduler per database; a second
  // coordinator on the same state would hand out the same jobs twice.
  const std::string path = (fs::path(state_dir_) / kLockFile).string();
  lock_fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (lock_fd_ < 0) throw Error(StrCat(path, ": cannot open the state lock: ", ErrnoText(errno)));
  if (::flock(lock_fd_, LOCK_EX | LOCK_NB) != 0) {
    const int error = errno;
    ::close(lock_fd_);
    lock_fd_ = -1;
    if (error == EWOULDBLOCK) {
      throw Error(StrCat(state_dir_, ": the state directory is in use by another coordinator (", path,
                         " is locked); stop it or choose another state directory"));
    }
    throw Error(StrCat(path, ": cannot lock: ", ErrnoText(error)));
  }
}

void Scheduler::Impl::OpenDatabase() {
  db_ = std::make_unique<SqliteDb>(db_path_);
  std::optional<int64_t> version;
  try {
    SqliteStatement journal = db_->Prepare("PRAGMA journal_mode=WAL");
    const std::string mode = journal.Step() ? journal.ColumnText(0) : "";
    journal.Reset();
    if (mode != "wal") throw Error(StrCat("journal mode is '", mode, "', not 'wal'"));
    db_->Exec("PRAGMA synchronous=NORMAL");
    db_->Exec("CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value INTEGER NOT NULL)");
    version = db_->QueryInt("SELECT value FROM meta WHERE key = 'schema_version'");
    const std::optional<int64_t> tables =
        db_->QueryInt("SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name <> 'meta'");
    if (!version && tables.value_or(0) > 0) {
      throw Error("it has tables but no schema_version: not a promptsweep state database");
    }
  } catch (const Error& e) {
    throw Error(StrCat(db_path_, ": cannot use it as the coordinator's state (", e.what(),
                       "); move the file away to start with an empty state, or choose another state directory"));
  }
  if (version && *version != kSchemaVersion) {
    throw Error(StrCat(db_path_, ": state schema version ", *version, ", but this promptsweep reads version ",
                       kSchemaVersion, "; use the promptsweep that wrote it, or move the file away"));
  }
  if (!version) {
    SqliteTransaction transaction(*db_);
    db_->Exec(kSchema);
    db_->Exec(StrCat("INSERT INTO meta(key, value) VALUES('schema_version', ", kSchemaVersion, ")"));
    transaction.Commit();
  }
}

void Scheduler::Impl::PrepareStatements() {
  insert_sweep_ = db_->Prepare(
      "INSERT INTO sweeps(name, seq, sweep_file, yaml, metric_name, maximize, output_dir, parameters, max_attempts, "
      "created) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)");
  insert_job_ = db_->Prepare(
      "INSERT INTO jobs(sweep, job_id, seq, seed, kind, swept, settings, verbalizer, model_key, state, attempt, "
      "failures, worker, checkpoint_path, checkpoint_step, message, has_outcome, adapter) "
      "VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, 'pending', 0, 0, '', '', 0, '', 0, '')");
  update_job_ = db_->Prepare(
      "UPDATE jobs SET state = ?1, attempt = ?2, failures = ?3, worker = ?4, checkpoint_path = ?5, "
      "checkpoint_step = ?6, message = ?7, has_outcome = ?8, final_dev = ?9, best_dev = ?10, test = ?11, "
      "best_step = ?12, steps = ?13, train_loss = ?14, tokens_per_second = ?15, wall_seconds = ?16, adapter = ?17, "
      "finished_at = ?18, finish_seq = ?19 WHERE sweep = ?20 AND job_id = ?21");
  insert_metric_ =
      db_->Prepare("INSERT INTO metrics(sweep, job_id, step, split, metric, value) VALUES(?1, ?2, ?3, ?4, ?5, ?6)");
  insert_worker_ = db_->Prepare(
      "INSERT INTO workers(id, name, host, device, ranks, threads, memory_bytes, pid, registered) "
      "VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)");
}

void Scheduler::Impl::Load() {
  const double now = Now();
  SqliteStatement sweeps = db_->Prepare(
      "SELECT name, seq, sweep_file, yaml, metric_name, maximize, output_dir, parameters, max_attempts "
      "FROM sweeps ORDER BY seq");
  while (sweeps.Step()) {
    auto sweep = std::make_unique<SweepRecord>();
    sweep->name = sweeps.ColumnText(0);
    sweep->seq = sweeps.ColumnInt(1);
    sweep->sweep_file = sweeps.ColumnText(2);
    sweep->yaml = sweeps.ColumnText(3);
    sweep->metric_name = sweeps.ColumnText(4);
    sweep->maximize = sweeps.ColumnInt(5) != 0;
    sweep->output_dir = sweeps.ColumnText(6);
    sweep->parameters = nlohmann::json::parse(sweeps.ColumnText(7)).get<std::vector<std::string>>();
    sweep->max_attempts = sweeps.ColumnInt(8);
    sweep->csv = std::make_unique<ResultsCsv>(sweep->output_dir, sweep->metric_name, sweep->parameters);
    next_sweep_seq_ = std::max(next_sweep_seq_, sweep->seq + 1);
    sweep_order_.push_back(sweep.get());
    sweep_by_output_[sweep->output_dir] = sweep.get();
    sweeps_[sweep->name] = std::move(sweep);
  }

  SqliteStatement jobs = db_->Prepare(
      "SELECT sweep, job_id, seq, seed, kind, swept, settings, verbalizer, model_key, state, attempt, failures, "
      "worker, checkpoint_path, checkpoint_step, message, has_outcome, final_dev, best_dev, test, best_step, steps, "
      "train_loss, tokens_per_second, wall_seconds, adapter, finished_at, finish_seq FROM jobs ORDER BY seq");
  while (jobs.Step()) {
    const std::string sweep_name = jobs.ColumnText(0);
    auto found = sweeps_.find(sweep_name);
    PS_CHECK(found != sweeps_.end(), db_path_, ": job ", jobs.ColumnText(1), " of unknown sweep ", sweep_name);
    SweepRecord& sweep = *found->second;
    auto job = std::make_unique<JobRecord>();
    job->sweep = &sweep;
    job->id = jobs.ColumnText(1);
    job->seq = jobs.ColumnInt(2);
    job->seed = static_cast<uint64_t>(jobs.ColumnInt(3));
    job->kind = jobs.ColumnText(4);
    job->swept = SettingsFromJson(jobs.ColumnText(5));
    job->settings = SettingsFromJson(jobs.ColumnText(6));
    job->verbalizer = SettingsFromJson(jobs.ColumnText(7));
    job->model_key = jobs.ColumnText(8);
    JobDurable& d = job->durable;
    try {
      d.state = ParseJobState(jobs.ColumnText(9));
    } catch (const Error& e) {
      throw Error(StrCat(db_path_, ": job ", job->id, " of sweep ", sweep.name, ": ", e.what()));
    }
    d.attempt = jobs.ColumnInt(10);
    d.failures = jobs.ColumnInt(11);
    d.worker = jobs.ColumnText(12);
    d.checkpoint_path = jobs.ColumnText(13);
    d.checkpoint_step = jobs.ColumnInt(14);
    d.message = jobs.ColumnText(15);
    d.has_outcome = jobs.ColumnInt(16) != 0;
    if (d.has_outcome) {
      // SQLite stores NaN as NULL: a diverged job's loss comes back as NULL.
      const double nan = std::numeric_limits<double>::quiet_NaN();
      d.final_dev = jobs.ColumnOptionalDouble(17);
      d.best_dev = jobs.ColumnOptionalDouble(18);
      d.test = jobs.ColumnOptionalDouble(19);
      d.best_step = jobs.ColumnInt(20);
      d.steps = jobs.ColumnInt(21);
      d.train_loss = jobs.ColumnOptionalDouble(22).value_or(nan);
      d.tokens_per_second = jobs.ColumnOptionalDouble(23).value_or(nan);
      d.wall_seconds = jobs.ColumnOptionalDouble(24).value_or(nan);
    }
    d.adapter = jobs.ColumnText(25);
    d.finished_at = jobs.ColumnDouble(26);
    d.finish_seq = jobs.ColumnInt(27);
    next_job_seq_ = std::max(next_job_seq_, job->seq + 1);
    next_finish_seq_ = std::max(next_finish_seq_, d.finish_seq + 1);
    JobRecord* record = job.get();
    sweep.by_id[record->id] = record;
    sweep.jobs.push_back(std::move(job));
    if (d.state == JobState::kPending) {
      pending_[KeyOf(*record)] = record;
      pending_by_model_[record->model_key][KeyOf(*record)] = record;
    } else if (IsActive(d.state)) {
      // The holder may still be alive: give it a full lease to report.
      record->renewed_at = now;
      record->deadline = now + options_.lease_timeout_seconds;
      active_.insert(record);
    }
  }

  SqliteStatement workers =
      db_->Prepare("SELECT id, name, host, device, ranks, threads, memory_bytes, pid FROM workers ORDER BY id");
  while (workers.Step()) {
    next_worker_ = std::max(next_worker_, workers.ColumnInt(0) + 1);
    WorkerRecord& worker = workers_[workers.ColumnText(1)];
    worker.info.host = workers.ColumnText(2);
    worker.info.device = workers.ColumnText(3);
    worker.info.ranks = workers.ColumnInt(4);
    worker.info.threads = workers.ColumnInt(5);
    worker.info.memory_bytes = workers.ColumnInt(6);
    worker.info.pid = workers.ColumnInt(7);
  }
}

void Scheduler::Impl::RebuildCsv(const SweepRecord& sweep) {
  std::vector<const JobRecord*> finished;
  for (const auto& job : sweep.jobs) {
    if (IsFinished(job->durable.state)) finished.push_back(job.get());
  }
  std::sort(finished.begin(), finished.end(), [](const JobRecord* a, const JobRecord* b) {
    return std::make_pair(a->durable.finish_seq, a->seq) < std::make_pair(b->durable.finish_seq, b->seq);
  });
  std::unordered_map<std::string, std::vector<MetricRow>> metrics;
  SqliteStatement query =
      db_->Prepare("SELECT job_id, step, split, metric, value FROM metrics WHERE sweep = ?1 ORDER BY rowid");
  query.Bind(1, sweep.name);
  while (query.Step()) {
    MetricRow row;
    row.step = query.ColumnInt(1);
    row.split = query.ColumnText(2);
    row.metric = query.ColumnText(3);
    row.value = query.ColumnOptionalDouble(4).value_or(std::numeric_limits<double>::quiet_NaN());
    metrics[query.ColumnText(0)].push_back(std::move(row));
  }
  std::vector<FinishedJobRows> rows;
  rows.reserve(finished.size());
  for (const JobRecord* job : finished) {
    FinishedJobRows& out = rows.emplace_back();
    out.result = MakeResultRow(*job);
    auto found = metrics.find(job->id);
    if (found != metrics.end()) out.metrics = std::move(found->second);
  }
  CreateDirectories(sweep.output_dir);
  sweep.csv->Rewrite(rows);
}

// --- Helpers ---

void Scheduler::Impl::Touch(const std::string& worker_id) {
  auto found = workers_.find(worker_id);
  if (found != workers_.end()) found->second.last_seen = Now();
}

SweepRecord& Scheduler::Impl::FindSweep(const std::string& name) const {
  auto found = sweeps_.find(name);
  if (found != sweeps_.end()) return *found->second;
  std::string known;
  for (const SweepRecord* sweep : sweep_order_) known += (known.empty() ? "" : ", ") + sweep->name;
  throw Error(StrCat("unknown sweep '", name, "' (", known.empty() ? "no sweeps submitted" : "known: " + known, ")"));
}

std::string Scheduler::Impl::CheckHolder(const std::string& worker_id, const LeaseRef& lease, JobRecord** job) const {
  auto sweep = sweeps_.find(lease.sweep);
  if (sweep == sweeps_.end()) return StrCat("unknown sweep '", lease.sweep, "'");
  auto found = sweep->second->by_id.find(lease.job_id);
  if (found == sweep->second->by_id.end()) return StrCat("unknown job ", lease.job_id, " in sweep ", lease.sweep);
  const JobRecord& record = *found->second;
  const JobDurable& d = record.durable;
  if (IsFinished(d.state)) return StrCat("job ", record.id, " is already ", JobStateName(d.state));
  if (lease.attempt != d.attempt) {
    return StrCat("job ", record.id, " attempt ", lease.attempt, " is stale: current attempt is ", d.attempt);
  }
  if (!IsActive(d.state)) {
    return StrCat("job ", record.id, " attempt ", lease.attempt, " is no longer leased (the job is ",
                  JobStateName(d.state), ")");
  }
  if (d.worker != worker_id) {
    return StrCat("job ", record.id, " attempt ", lease.attempt, " is leased to worker ", d.worker, ", not ",
                  worker_id);
  }
  *job = found->second;
  return "";
}

void Scheduler::Impl::Renew(JobRecord& job) {
  job.renewed_at = Now();
  job.deadline = job.renewed_at + options_.lease_timeout_seconds;
}

void Scheduler::Impl::MarkFinished(JobDurable& next, JobState state) {
  next.state = state;
  next.finished_at = WallTime();
  next.finish_seq = next_finish_seq_++;
  next.checkpoint_path.clear();  // the caller removes the file after the commit
  next.checkpoint_step = 0;
}

void Scheduler::Impl::WriteJob(const JobRecord& job, const JobDurable& next) {
  SqliteStatement& s = update_job_;
  s.Bind(1, JobStateName(next.state))
      .Bind(2, next.attempt)
      .Bind(3, next.failures)
      .Bind(4, next.worker)
      .Bind(5, next.checkpoint_path)
      .Bind(6, next.checkpoint_step)
      .Bind(7, next.message)
      .Bind(8, next.has_outcome ? 1 : 0);
  if (next.has_outcome) {
    s.Bind(9, next.final_dev)
        .Bind(10, next.best_dev)
        .Bind(11, next.test)
        .Bind(12, next.best_step)
        .Bind(13, next.steps)
        .Bind(14, next.train_loss)
        .Bind(15, next.tokens_per_second)
        .Bind(16, next.wall_seconds);
  } else {
    for (int i = 9; i <= 16; ++i) s.BindNull(i);
  }
  s.Bind(17, next.adapter);
  if (IsFinished(next.state)) {
    s.Bind(18, next.finished_at).Bind(19, next.finish_seq);
  } else {
    s.BindNull(18).BindNull(19);
  }
  s.Bind(20, job.sweep->name).Bind(21, job.id);
  s.Run();
}

void Scheduler::Impl::WriteMetrics(const JobRecord& job, const std::vector<MetricRow>& rows) {
  for (const MetricRow& row : rows) {
    insert_metric_.Bind(1, job.sweep->name)
        .Bind(2, job.id)
        .Bind(3, row.step)
        .Bind(4, row.split)
        .Bind(5, row.metric)
        .Bind(6, row.value)
        .Run();
  }
}

void Scheduler::Impl::Apply(JobRecord& job, JobDurable next) {
  const JobState before = job.durable.state;
  const JobState after = next.state;
  job.durable = std::move(next);
  if (before == JobState::kPending && after != JobState::kPending) {
    pending_.erase(KeyOf(job));
    auto model = pending_by_model_.find(job.model_key);
    if (model != pending_by_model_.end()) {
      model->second.erase(KeyOf(job));
      if (model->second.empty()) pending_by_model_.erase(model);
    }
  } else if (before != JobState::kPending && after == JobState::kPending) {
    pending_[KeyOf(job)] = &job;
    pending_by_model_[job.model_key][KeyOf(job)] = &job;
    job.progress.reset();
    work_.notify_all();
  }
  if (IsActive(before) && !IsActive(after)) active_.erase(&job);
  if (!IsActive(before) && IsActive(after)) active_.insert(&job);
}

ResultRow Scheduler::Impl::MakeResultRow(const JobRecord& job) const {
  const JobDurable& d = job.durable;
  ResultRow row;
  row.job_id = job.id;
  for (const std::string& parameter : job.sweep->parameters) row.swept.push_back(SettingValue(job.swept, parameter));
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
    row.tokens_per_second = d.tokens_per_second;
    row.wall_seconds = d.wall_seconds;
  }
  row.worker = d.worker;
  row.adapter = d.adapter;
  row.message = d.message;
  return row;
}

void Scheduler::Impl::AppendResults(SweepRecord& sweep, const std::vector<FinishedJobRows>& rows) {
  if (rows.empty()) return;
  // The state is committed: a failed append must not fail the report. Try
  // the whole rewrite once; the next start rebuilds the files anyway.
  try {
    CreateDirectories(sweep.output_dir);
    sweep.csv->Append(rows);
  } catch (const Error& append_error) {
    try {
      RebuildCsv(sweep);
    } catch (const Error& rebuild_error) {
      std::fprintf(stderr, "promptsweep: warning: %s; %s (rebuilt when the coordinator restarts)\n",
                   append_error.what(), rebuild_error.what());
    }
  }
}

void Scheduler::Impl::RemoveFile(const std::string& path) {
  if (path.empty()) return;
  std::error_code ignored;  // a leftover checkpoint only costs disk space
  fs::remove(path, ignored);
}

std::string Scheduler::Impl::WriteAdapter(const JobRecord& job,
                                          const std::vector<std::pair<std::string, std::string>>& files) {
  // Written beside the final directory and renamed into place, so the
  // directory either holds a complete result or does not exist.
  const fs::path adapters = fs::path(job.sweep->output_dir) / "adapters";
  const fs::path target = adapters / job.id;
  const fs::path temp = adapters / ("." + job.id + ".tmp");
  CreateDirectories(adapters);
  std::error_code error;
  fs::remove_all(temp, error);
  if (error) throw Error(StrCat(temp.string(), ": cannot remove: ", error.message()));
  CreateDirectories(temp);
  for (const auto& [name, bytes] : files) WriteWholeFile(temp / name, bytes);
  // Left over from a coordinator that died between this rename and its commit.
  fs::remove_all(target, error);
  if (error) throw Error(StrCat(target.string(), ": cannot remove: ", error.message()));
  fs::rename(temp, target, error);
  if (error) throw Error(StrCat(target.string(), ": cannot rename ", temp.string(), " into place: ", error.message()));
  return "adapters/" + job.id;
}

// --- Public operations ---

SubmitResult Scheduler::Impl::Submit(const SweepSubmission& submission) {
  if (!IsPlainName(submission.name)) {
    throw Error(StrCat("sweep name '", submission.name, "' is not valid: use letters, digits, '_', '.' and '-'"));
  }
  const std::string& name = submission.name;
  if (submission.metric_name.empty()) throw Error(StrCat("sweep ", name, ": no metric name"));
  if (submission.max_attempts < 0) {
    throw Error(StrCat("sweep ", name, ": max_attempts must be >= 0 (0: the default), got ", submission.max_attempts));
  }
  for (std::size_t i = 0; i < submission.parameters.size(); ++i) {
    if (submission.parameters[i].empty()) throw Error(StrCat("sweep ", name, ": empty parameter name"));
    for (std::size_t j = 0; j < i; ++j) {
      if (submission.parameters[i] == submission.parameters[j]) {
        throw Error(StrCat("sweep ", name, ": parameter '", submission.parameters[i], "' is listed twice"));
      }
    }
  }
  // Validate every job before anything is stored.
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

  std::lock_guard<std::mutex> lock(mutex_);
  SubmitResult result;
  result.sweep = name;
  auto existing = sweeps_.find(name);
  SweepRecord* sweep = existing != sweeps_.end() ? existing->second.get() : nullptr;
  std::unique_ptr<SweepRecord> created;
  if (sweep != nullptr) {
    if (submission.parameters != sweep->parameters) {
      throw Error(StrCat("sweep ", name, " exists with other swept parameters (",
                         nlohmann::json(sweep->parameters).dump(), " vs ", nlohmann::json(submission.parameters).dump(),
                         "); give the changed sweep another name"));
    }
    if (!submission.output_dir.empty() && NormalizeDir(submission.output_dir) != sweep->output_dir) {
      throw Error(StrCat("sweep ", name, " exists with output directory ", sweep->output_dir, ", not ",
                         NormalizeDir(submission.output_dir), "; leave it out or give the sweep another name"));
    }
    if (submission.metric_name != sweep->metric_name) {
      throw Error(StrCat("sweep ", name, " exists with metric ", sweep->metric_name, ", not ", submission.metric_name,
                         "; give the changed sweep another name"));
    }
  } else {
    created = std::make_unique<SweepRecord>();
    sweep = created.get();
    sweep->name = name;
    sweep->seq = next_sweep_seq_;
    sweep->sweep_file = submission.sweep_file;
    sweep->yaml = submission.yaml;
    sweep->metric_name = submission.metric_name;
    sweep->maximize = submission.maximize;
    sweep->output_dir = NormalizeDir(submission.output_dir.empty()
                                         ? (fs::path(state_dir_) / "sweeps" / name).string()
                                         : submission.output_dir);
    sweep->parameters = submission.parameters;
    sweep->max_attempts = submission.max_attempts > 0 ? submission.max_attempts : options_.max_attempts;
    sweep->csv = std::make_unique<ResultsCsv>(sweep->output_dir, sweep->metric_name, sweep->parameters);
    auto other = sweep_by_output_.find(sweep->output_dir);
    if (other != sweep_by_output_.end()) {
      throw Error(StrCat("sweep ", name, ": output directory ", sweep->output_dir, " belongs to sweep ",
                         other->second->name, "; choose another"));
    }
  }
  result.output_dir = sweep->output_dir;
  CreateDirectories(sweep->output_dir);

  std::vector<std::unique_ptr<JobRecord>> added;
  int64_t seq = next_job_seq_;
  for (const SweepSubmission::Job& job : submission.jobs) {
    if (sweep->by_id.count(job.id) != 0) {
      ++result.existing;
      continue;
    }
    auto record = std::make_unique<JobRecord>();
    record->sweep = sweep;
    record->id = job.id;
    record->seq = seq++;
    record->seed = job.seed;
    record->kind = job.kind;
    record->swept = job.swept;
    record->settings = job.settings;
    record->verbalizer = job.verbalizer;
    record->model_key = job.kind == kTrainJob ? ModelKey(job.settings) : "";
    added.push_back(std::move(record));
  }
  result.added = static_cast<int64_t>(added.size());

  {
    SqliteTransaction transaction(*db_);
    if (created) {
      insert_sweep_.Bind(1, sweep->name)
          .Bind(2, sweep->seq)
          .Bind(3, sweep->sweep_file)
          .Bind(4, sweep->yaml)
          .Bind(5, sweep->metric_name)
          .Bind(6, sweep->maximize ? 1 : 0)
          .Bind(7, sweep->output_dir)
          .Bind(8, nlohmann::json(sweep->parameters).dump())
          .Bind(9, sweep->max_attempts)
          .Bind(10, WallTime())
          .Run();
    }
    for (const auto& record : added) {
      std::string swept, settings, verbalizer;
      try {
        swept = SettingsToJson(record->swept);
        settings = SettingsToJson(record->settings);
        verbalizer = SettingsToJson(record->verbalizer);
      } catch (const nlohmann::json::exception& e) {
        throw Error(StrCat("sweep ", name, ": job ", record->id, ": values are not valid UTF-8 text (", e.what(), ")"));
      }
      insert_job_.Bind(1, sweep->name)
          .Bind(2, record->id)
          .Bind(3, record->seq)
          .Bind(4, static_cast<int64_t>(record->seed))
          .Bind(5, record->kind)
          .Bind(6, swept)
          .Bind(7, settings)
          .Bind(8, verbalizer)
          .Bind(9, record->model_key)
          .Run();
    }
    transaction.Commit();
  }

  // Committed: now memory.
  next_job_seq_ = seq;
  if (created) {
    ++next_sweep_seq_;
    sweep_order_.push_back(sweep);
    sweep_by_output_[sweep->output_dir] = sweep;
    sweeps_[name] = std::move(created);
    // An empty results.csv with its header from the start; it replaces
    // whatever an older state left in this directory.
    try {
      sweep->csv->Rewrite({});
    } catch (const Error& e) {
      std::fprintf(stderr, "promptsweep: warning: %s\n", e.what());
    }
  }
  for (auto& record : added) {
    JobRecord* job = record.get();
    sweep->by_id[job->id] = job;
    sweep->jobs.push_back(std::move(record));
    pending_[KeyOf(*job)] = job;
    pending_by_model_[job->model_key][KeyOf(*job)] = job;
  }
  if (result.added > 0) work_.notify_all();
  return result;
}

std::string Scheduler::Impl::RegisterWorker(const WorkerInfo& info) {
  // The id shows up in results.csv and logs: keep it one plain word.
  std::string host;
  for (const char c : info.host) host += IsNameChar(c) ? c : '_';
  std::lock_guard<std::mutex> lock(mutex_);
  const int64_t id = next_worker_;
  const std::string name = host.empty() ? StrCat("w", id) : StrCat("w", id, "-", host);
  {
    SqliteTransaction transaction(*db_);
    insert_worker_.Bind(1, id)
        .Bind(2, name)
        .Bind(3, info.host)
        .Bind(4, info.device)
        .Bind(5, info.ranks)
        .Bind(6, info.threads)
        .Bind(7, info.memory_bytes)
        .Bind(8, info.pid)
        .Bind(9, WallTime())
        .Run();
    transaction.Commit();
  }
  ++next_worker_;
  WorkerRecord& worker = workers_[name];
  worker.info = info;
  worker.last_seen = Now();
  return name;
}

bool Scheduler::Impl::KnownWorker(const std::string& worker_id) const {
  std::lock_guard<std::mutex> lock(mutex_);
  return workers_.count(worker_id) != 0;
}

std::optional<JobSpec> Scheduler::Impl::Lease(const std::string& worker_id,
                                              const std::vector<std::string>& loaded_models) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (workers_.count(worker_id) == 0) throw Error(StrCat("unknown worker '", worker_id, "': register first"));
  Touch(worker_id);
  if (pending_.empty()) return std::nullopt;
  // The oldest pending job of a loaded model saves a model load; else the oldest.
  JobRecord* job = nullptr;
  for (const std::string& model : loaded_models) {
    auto found = pending_by_model_.find(model);
    if (found == pending_by_model_.end() || model.empty()) continue;
    JobRecord* first = found->second.begin()->second;
    if (job == nullptr || KeyOf(*first) < KeyOf(*job)) job = first;
  }
  if (job == nullptr) job = pending_.begin()->second;

  JobSpec spec;
  JobDurable next = job->durable;
  if (!next.checkpoint_path.empty()) {
    try {
      spec.checkpoint = ReadWholeFile(next.checkpoint_path);
    } catch (const Error& e) {
      // A lost checkpoint must not wedge the job: it starts over.
      next.message = StrCat("checkpoint unreadable (", e.what(), "); started from scratch");
      next.checkpoint_path.clear();
      next.checkpoint_step = 0;
    }
  }
  next.state = JobState::kLeased;
  ++next.attempt;
  next.worker = worker_id;
  {
    SqliteTransaction transaction(*db_);
    WriteJob(*job, next);
    transaction.Commit();
  }
  Apply(*job, std::move(next));
  Renew(*job);
  if (!job->sweep->first_lease) job->sweep->first_lease = Now();

  spec.sweep = job->sweep->name;
  spec.job_id = job->id;
  spec.attempt = job->durable.attempt;
  spec.kind = job->kind;
  spec.settings = job->settings;
  spec.verbalizer = job->verbalizer;
  return spec;
}

void Scheduler::Impl::WaitForWork(std::chrono::steady_clock::time_point deadline) {
  std::unique_lock<std::mutex> lock(mutex_);
  work_.wait_until(lock, deadline, [&] { return shutdown_ || !pending_.empty(); });
}

std::vector<LeaseRef> Scheduler::Impl::Heartbeat(const std::string& worker_id, const std::vector<LeaseRef>& held) {
  std::lock_guard<std::mutex> lock(mutex_);
  Touch(worker_id);
  std::vector<LeaseRef> lost;
  for (const LeaseRef& lease : held) {
    JobRecord* job = nullptr;
    if (CheckHolder(worker_id, lease, &job).empty()) {
      Renew(*job);
    } else {
      lost.push_back(lease);
    }
  }
  return lost;
}

ReportAck Scheduler::Impl::Progress(const std::string& worker_id, const LeaseRef& lease,
                                    const JobProgress& progress) {
  std::lock_guard<std::mutex> lock(mutex_);
  Touch(worker_id);
  JobRecord* job = nullptr;
  std::string reason = CheckHolder(worker_id, lease, &job);
  if (!reason.empty()) return {false, reason};
  if (job->durable.state == JobState::kLeased) {
    JobDurable next = job->durable;
    next.state = JobState::kRunning;
    SqliteTransaction transaction(*db_);
    WriteJob(*job, next);
    transaction.Commit();
    Apply(*job, std::move(next));
  }
  Renew(*job);
  job->progress = progress;  // memory only: status shows it, a restart forgets it
  return {true, ""};
}

ReportAck Scheduler::Impl::ReportResult(const std::string& worker_id, const LeaseRef& lease,
                                        const JobOutcome& outcome) {
  std::lock_guard<std::mutex> lock(mutex_);
  Touch(worker_id);
  JobRecord* job = nullptr;
  std::string reason = CheckHolder(worker_id, lease, &job);
  if (!reason.empty()) return {false, reason};
  if (!IsFinished(outcome.state)) {
    return {false, StrCat("job ", job->id, ": a result must be succeeded, failed, diverged or cancelled, not ",
                          JobStateName(outcome.state))};
  }
  // A preempted job: cancelled with its trainer state, to resume elsewhere.
  if (outcome.state == JobState::kCancelled && !outcome.checkpoint.empty()) {
    return StoreCheckpoint(*job, worker_id, outcome.checkpoint, outcome.steps);
  }
  std::set<std::string> names;
  for (const auto& file : outcome.files) {
    if (!IsPlainFileName(file.first)) {
      return {false, StrCat("job ", job->id, ": result file name '", file.first,
                            "' is not a plain file name (no '/', '.' or '..')")};
    }
    if (!names.insert(file.first).second) {
      return {false, StrCat("job ", job->id, ": result file '", file.first, "' appears twice")};
    }
  }

  const std::string old_checkpoint = job->durable.checkpoint_path;
  JobDurable next = job->durable;
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
    if (next.failures >= MaxAttempts(*job)) {
      next.message = StrCat(outcome.message, " (attempt ", next.attempt, "; ", next.failures,
                            " failed attempts of max_attempts ", MaxAttempts(*job), ")");
      MarkFinished(next, JobState::kFailed);
    } else {
      next.state = JobState::kPending;
      next.message = StrCat(outcome.message, " (attempt ", next.attempt, "; will retry)");
    }
  } else {
    MarkFinished(next, outcome.state);
  }
  const bool finished = IsFinished(next.state);
  if (finished && next.state == JobState::kSucceeded && !outcome.files.empty()) {
    next.adapter = WriteAdapter(*job, outcome.files);
  }
  {
    SqliteTransaction transaction(*db_);
    WriteJob(*job, next);
    if (finished) WriteMetrics(*job, outcome.history);
    transaction.Commit();
  }
  Apply(*job, std::move(next));
  if (finished) {
    std::vector<FinishedJobRows> rows(1);
    rows[0].result = MakeResultRow(*job);
    rows[0].metrics = outcome.history;
    AppendResults(*job->sweep, rows);
    RemoveFile(old_checkpoint);
  }
  return {true, ""};
}

ReportAck Scheduler::Impl::ReportCheckpoint(const std::string& worker_id, const LeaseRef& lease,
                                            const std::string& checkpoint, int64_t step) {
  std::lock_guard<std::mutex> lock(mutex_);
  Touch(worker_id);
  JobRecord* job = nullptr;
  std::string reason = CheckHolder(worker_id, lease, &job);
  if (!reason.empty()) return {false, reason};
  return StoreCheckpoint(*job, worker_id, checkpoint, step);
}

ReportAck Scheduler::Impl::StoreCheckpoint(JobRecord& job, const std::string& worker_id,
                                           const std::string& checkpoint, int64_t step) {
  if (checkpoint.empty()) return {false, StrCat("job ", job.id, ": empty checkpoint")};
  const fs::path dir = fs::path(job.sweep->output_dir) / "checkpoints";
  CreateDirectories(dir);
  const std::string path = (dir / (job.id + ".state")).string();
  WriteFileAtomically(path, checkpoint);
  JobDurable next = job.durable;
  next.state = JobState::kPending;  // not a failure: `failures` stays
  next.checkpoint_path = path;
  next.checkpoint_step = step;
  next.message = StrCat("preempted on worker ", worker_id, " at step ", step, " (attempt ", next.attempt,
                        "); resumes from its checkpoint");
  {
    SqliteTransaction transaction(*db_);
    WriteJob(job, next);
    transaction.Commit();
  }
  Apply(job, std::move(next));
  return {true, ""};
}

int64_t Scheduler::Impl::ExpireLeases() {
  std::lock_guard<std::mutex> lock(mutex_);
  const double now = Now();
  std::vector<std::pair<JobRecord*, JobDurable>> changes;
  for (JobRecord* job : active_) {
    if (now <= job->deadline) continue;
    JobDurable next = job->durable;
    ++next.failures;
    next.message = StrCat("lease expired on worker ", next.worker, " (no heartbeat for ",
                          static_cast<int64_t>(std::floor(now - job->renewed_at)), "s), attempt ", next.attempt);
    if (next.failures >= MaxAttempts(*job)) {
      next.message += StrCat("; failed after ", next.failures, " failed attempts (max_attempts ", MaxAttempts(*job),
                             ")");
      next.has_outcome = false;
      MarkFinished(next, JobState::kFailed);
    } else {
      next.state = JobState::kPending;
    }
    changes.emplace_back(job, std::move(next));
  }
  if (changes.empty()) return 0;
  // Submission order, so finish order (and results.csv) does not depend on hashing.
  std::sort(changes.begin(), changes.end(),
            [](const auto& a, const auto& b) { return KeyOf(*a.first) < KeyOf(*b.first); });
  {
    SqliteTransaction transaction(*db_);
    for (const auto& [job, next] : changes) WriteJob(*job, next);
    transaction.Commit();
  }
  std::map<SweepRecord*, std::vector<FinishedJobRows>> finished;
  std::vector<std::string> checkpoints;
  for (auto& [job, next] : changes) {
    const std::string checkpoint = job->durable.checkpoint_path;
    Apply(*job, std::move(next));
    if (IsFinished(job->durable.state)) {
      finished[job->sweep].push_back({MakeResultRow(*job), {}});
      checkpoints.push_back(checkpoint);
    }
  }
  for (auto& [sweep, rows] : finished) AppendResults(*sweep, rows);
  for (const std::string& path : checkpoints) RemoveFile(path);
  return static_cast<int64_t>(changes.size());
}

int64_t Scheduler::Impl::Cancel(const std::string& sweep_name, const std::vector<std::string>& job_ids) {
  std::lock_guard<std::mutex> lock(mutex_);
  SweepRecord& sweep = FindSweep(sweep_name);
  std::vector<JobRecord*> targets;
  if (job_ids.empty()) {
    for (const auto& job : sweep.jobs) {
      if (!IsFinished(job->durable.state)) targets.push_back(job.get());
    }
  } else {
    std::set<JobRecord*> seen;
    for (const std::string& id : job_ids) {
      auto found = sweep.by_id.find(id);
      if (found == sweep.by_id.end()) throw Error(StrCat("unknown job id '", id, "' in sweep ", sweep.name));
      if (!IsFinished(found->second->durable.state) && seen.insert(found->second).second) {
        targets.push_back(found->second);
      }
    }
  }
  if (targets.empty()) return 0;
  std::vector<JobDurable> nexts;
  for (JobRecord* job : targets) {
    JobDurable next = job->durable;
    next.message = "cancelled by user";
    next.has_outcome = false;
    MarkFinished(next, JobState::kCancelled);
    nexts.push_back(std::move(next));
  }
  {
    SqliteTransaction transaction(*db_);
    for (std::size_t i = 0; i < targets.size(); ++i) WriteJob(*targets[i], nexts[i]);
    transaction.Commit();
  }
  std::vector<FinishedJobRows> rows;
  std::vector<std::string> checkpoints;
  for (std::size_t i = 0; i < targets.size(); ++i) {
    checkpoints.push_back(targets[i]->durable.checkpoint_path);
    Apply(*targets[i], std::move(nexts[i]));
    rows.push_back({MakeResultRow(*targets[i]), {}});
  }
  AppendResults(sweep, rows);
  for (const std::string& path : checkpoints) RemoveFile(path);
  return static_cast<int64_t>(targets.size());
}

SweepStatus Scheduler::Impl::Status(const std::string& sweep_name, bool with_jobs) const {
  std::lock_guard<std::mutex> lock(mutex_);
  const SweepRecord& sweep = FindSweep(sweep_name);
  const double now = Now();
  SweepStatus status;
  status.name = sweep.name;
  status.output_dir = sweep.output_dir;
  status.metric_name = sweep.metric_name;
  status.maximize = sweep.maximize;
  status.parameters = sweep.parameters;
  status.total = static_cast<int64_t>(sweep.jobs.size());
  if (with_jobs) status.jobs.reserve(sweep.jobs.size());
  double wall_sum = 0.0;
  double active_left = 0.0;     // seconds the running jobs still need (their estimates)
  int64_t active_unknown = 0;   // running jobs without an estimate yet
  int64_t wall_count = 0;
  for (const auto& job : sweep.jobs) {
    const JobDurable& d = job->durable;
    switch (d.state) {
      case JobState::kPending: ++status.pending; break;
      case JobState::kLeased: ++status.leased; break;
      case JobState::kRunning: ++status.running; break;
      case JobState::kSucceeded: ++status.succeeded; break;
      case JobState::kFailed: ++status.failed; break;
      case JobState::kDiverged: ++status.diverged; break;
      case JobState::kCancelled: ++status.cancelled; break;
    }
    if (IsFinished(d.state) && d.has_outcome && d.wall_seconds > 0) {
      wall_sum += d.wall_seconds;
      ++wall_count;
    }
    // Running jobs count with their worker's own estimate of what is left.
    if (IsActive(d.state)) {
      if (job->progress && job->progress->step > 0) {
        active_left += job->progress->eta_seconds;
      } else {
        ++active_unknown;
      }
    }
    if (d.state == JobState::kSucceeded && d.best_dev) {
      const bool better = !status.best_dev ||
                          (sweep.maximize ? *d.best_dev > *status.best_dev : *d.best_dev < *status.best_dev);
      if (better) {
        status.best_dev = d.best_dev;
        status.best_job = job->id;
      }
    }
    if (!with_jobs) continue;
    JobStatusRow& row = status.jobs.emplace_back();
    row.job_id = job->id;
    row.state = d.state;
    row.attempts = d.attempt;
    row.worker = d.worker;
    row.swept = job->swept;
    row.seed = job->seed;
    row.message = d.message;
    row.has_checkpoint = !d.checkpoint_path.empty();
    row.step = d.checkpoint_step;
    if (IsActive(d.state) && job->progress) {
      const JobProgress& p = *job->progress;
      row.step = p.step;
      row.max_steps = p.max_steps;
      row.train_loss = p.train_loss;
      row.eta_seconds = p.eta_seconds;
      row.best_dev = p.best_metric;
    } else if (IsFinished(d.state) && d.has_outcome) {
      row.step = d.steps;
      row.train_loss = d.train_loss;
      row.best_dev = d.best_dev;
      row.test = d.test;
    }
  }
  const int64_t remaining = status.pending + status.leased + status.running;
  status.done = remaining == 0;
  if (sweep.first_lease) status.elapsed_seconds = now - *sweep.first_lease;
  for (const auto& [id, worker] : workers_) {
    if (now - worker.last_seen <= options_.lease_timeout_seconds) ++status.live_workers;
  }
  // Work left = pending jobs at the mean wall time of finished ones, plus what
  // running jobs report they still need, shared by the live workers.
  if (wall_count > 0) {
    const double mean = wall_sum / static_cast<double>(wall_count);
    status.eta_seconds = (static_cast<double>(status.pending + active_unknown) * mean + active_left) /
                         static_cast<double>(std::max<int64_t>(1, status.live_workers));
  }
  return status;
}

std::vector<std::string> Scheduler::Impl::SweepNames() const {
  std::lock_guard<std::mutex> lock(mutex_);
  std::vector<std::string> names;
  for (const SweepRecord* sweep : sweep_order_) names.push_back(sweep->name);
  return names;
}

void Scheduler::Impl::Shutdown() {
  std::lock_guard<std::mutex> lock(mutex_);
  shutdown_ = true;
  work_.notify_all();
}

// --- Scheduler: forwards to Impl ---

Scheduler::Scheduler(SchedulerOptions options) : impl_(std::make_unique<Impl>(std::move(options))) {}
Scheduler::~Scheduler() = default;
SubmitResult Scheduler::Submit(const SweepSubmission& sweep) { return impl_->Submit(sweep); }
std::string Scheduler::RegisterWorker(const WorkerInfo& info) { return impl_->RegisterWorker(info); }
bool Scheduler::KnownWorker(const std::string& worker_id) const { return impl_->KnownWorker(worker_id); }
std::optional<JobSpec> Scheduler::Lease(const std::string& worker_id, const std::vector<std::string>& loaded_models) {
  return impl_->Lease(worker_id, loaded_models);
}
void Scheduler::WaitForWork(std::chrono::steady_clock::time_point deadline) { impl_->WaitForWork(deadline); }
std::vector<LeaseRef> Scheduler::Heartbeat(const std::string& worker_id, const std::vector<LeaseRef>& held) {
  return impl_->Heartbeat(worker_id, held);
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
