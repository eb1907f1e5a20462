#include "coordinator/sqlite_store.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <iterator>
#include <filesystem>
#include <limits>
#include <set>
#include <utility>

#include <nlohmann/json.hpp>

#include "common/error.h"
#include "common/file_util.h"

namespace promptsweep {
namespace {

namespace fs = std::filesystem;

// Version 2 added early termination (sweeps.early_terminate, the jobs' stop
// columns, rungs), version 3 the attempt log (attempts); an older state is
// migrated when opened.
constexpr int64_t kSchemaVersion = 3;

// Durability: WAL with synchronous=NORMAL commits without an fsync (the WAL
// is synced at checkpoints). A killed process loses nothing, since committed
// pages are in the OS page cache; only a power loss or kernel crash can take
// back the last commits, and then workers' reports are simply rejected or the
// jobs rerun. Full sync would cost an fsync per lease and per result.
constexpr char kSchema[] = R"sql(
CREATE TABLE IF NOT EXISTS sweeps(
  name TEXT PRIMARY KEY, seq INTEGER NOT NULL, sweep_file TEXT NOT NULL, yaml TEXT NOT NULL,
  metric_name TEXT NOT NULL, maximize INTEGER NOT NULL, output_dir TEXT NOT NULL,
  parameters TEXT NOT NULL, max_attempts INTEGER NOT NULL, created REAL NOT NULL,
  early_terminate TEXT NOT NULL DEFAULT '');
CREATE TABLE IF NOT EXISTS jobs(
  sweep TEXT NOT NULL, job_id TEXT NOT NULL, seq INTEGER NOT NULL, seed INTEGER NOT NULL, kind TEXT NOT NULL,
  swept TEXT NOT NULL, settings TEXT NOT NULL, verbalizer TEXT NOT NULL, model_key TEXT NOT NULL,
  state TEXT NOT NULL, attempt INTEGER NOT NULL, failures INTEGER NOT NULL, worker TEXT NOT NULL,
  checkpoint_path TEXT NOT NULL, checkpoint_step INTEGER NOT NULL, message TEXT NOT NULL,
  has_outcome INTEGER NOT NULL, final_dev REAL, best_dev REAL, test REAL, best_step INTEGER, steps INTEGER,
  train_loss REAL, tokens_per_second REAL, wall_seconds REAL, adapter TEXT NOT NULL,
  finished_at REAL, finish_seq INTEGER,
  stop_reason TEXT NOT NULL DEFAULT '', stop_step INTEGER NOT NULL DEFAULT 0, stop_attempt INTEGER NOT NULL DEFAULT 0,
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

// Early termination's rung values (version 2).
constexpr char kRungsTable[] = R"sql(
CREATE TABLE IF NOT EXISTS rungs(
  sweep TEXT NOT NULL, job_id TEXT NOT NULL, iteration INTEGER NOT NULL, step INTEGER NOT NULL, value REAL NOT NULL,
  PRIMARY KEY(sweep, job_id, iteration));
)sql";

// The attempt log (version 3): one row per lease of a job.
constexpr char kAttemptsTable[] = R"sql(
CREATE TABLE IF NOT EXISTS attempts(
  sweep TEXT NOT NULL, job_id TEXT NOT NULL, attempt INTEGER NOT NULL, worker TEXT NOT NULL,
  started REAL, start_step INTEGER NOT NULL, ended REAL, outcome TEXT NOT NULL, end_step INTEGER NOT NULL,
  PRIMARY KEY(sweep, job_id, attempt));
)sql";

// Version 1 -> 2: the columns and table above, defaults for every old row.
constexpr char kMigrateFrom1[] = R"sql(
ALTER TABLE sweeps ADD COLUMN early_terminate TEXT NOT NULL DEFAULT '';
ALTER TABLE jobs ADD COLUMN stop_reason TEXT NOT NULL DEFAULT '';
ALTER TABLE jobs ADD COLUMN stop_step INTEGER NOT NULL DEFAULT 0;
ALTER TABLE jobs ADD COLUMN stop_attempt INTEGER NOT NULL DEFAULT 0;
)sql";

// The durable columns of `jobs`, in JobDurable order: bound by BindDurable
// for both INSERT and UPDATE, read back by ReadDurable.
constexpr const char* kDurableColumns[] = {
    "state", "attempt", "failures", "worker", "checkpoint_path", "checkpoint_step", "message", "has_outcome",
    "final_dev", "best_dev", "test", "best_step", "steps", "train_loss", "tokens_per_second", "wall_seconds",
    "adapter", "finished_at", "finish_seq", "stop_reason", "stop_step", "stop_attempt"};
constexpr int kDurableCount = static_cast<int>(std::size(kDurableColumns));

// "state, attempt, ..." (suffix empty) or "state = ?1, attempt = ?2, ..." (suffix " = ?").
std::string DurableColumnList(const char* suffix = "") {
  std::string list;
  for (int i = 0; i < kDurableCount; ++i) {
    list += StrCat(i == 0 ? "" : ", ", kDurableColumns[i]);
    if (*suffix != '\0') list += StrCat(suffix, i + 1);
  }
  return list;
}

constexpr char kMoveAway[] = "move the file away to start with an empty state";

std::string SettingsToJson(const SettingList& settings) {
  nlohmann::json json = nlohmann::json::array();
  for (const auto& [name, value] : settings) json.push_back({name, value});
  return json.dump();
}

// Binds `d` to parameters first .. first + kDurableCount - 1.
void BindDurable(SqliteStatement& s, int first, const JobDurable& d) {
  s.Bind(first, JobStateName(d.state))
      .Bind(first + 1, d.attempt)
      .Bind(first + 2, d.failures)
      .Bind(first + 3, d.worker)
      .Bind(first + 4, d.checkpoint_path)
      .Bind(first + 5, d.checkpoint_step)
      .Bind(first + 6, d.message)
      .Bind(first + 7, d.has_outcome ? 1 : 0);
  if (d.has_outcome) {
    s.Bind(first + 8, d.final_dev)
        .Bind(first + 9, d.best_dev)
        .Bind(first + 10, d.test)
        .Bind(first + 11, d.best_step)
        .Bind(first + 12, d.steps)
        .Bind(first + 13, d.train_loss)  // NaN is stored as NULL
        .Bind(first + 14, d.tokens_per_second)
        .Bind(first + 15, d.wall_seconds);
  } else {
    for (int i = 8; i <= 15; ++i) s.BindNull(first + i);
  }
  s.Bind(first + 16, d.adapter);
  if (IsFinished(d.state)) {
    s.Bind(first + 17, d.finished_at).Bind(first + 18, d.finish_seq);
  } else {
    s.BindNull(first + 17).BindNull(first + 18);
  }
  s.Bind(first + 19, d.stop_reason).Bind(first + 20, d.stop_step).Bind(first + 21, d.stop_attempt);
}

// Reads one stored row, refusing what this promptsweep never writes: a
// damaged or foreign database is an Error naming the file, never a check.
class RowReader {
 public:
  RowReader(const SqliteStatement& row, const std::string& db_path, std::string what)
      : row_(row), db_path_(db_path), what_(std::move(what)) {}

  [[noreturn]] void Damaged(const std::string& detail) const {
    throw Error(StrCat(db_path_, ": ", what_, " has ", detail,
                       "; the database is damaged or from another version: ", kMoveAway));
  }
  void Rename(std::string what) { what_ = std::move(what); }

  std::string Text(int column, const char* name) const {
    CheckNotNull(column, name);
    return row_.ColumnText(column);
  }
  std::string NonEmptyText(int column, const char* name) const {
    std::string text = Text(column, name);
    if (text.empty()) Damaged(StrCat("an empty ", name));
    return text;
  }
  int64_t Int(int column, const char* name, int64_t min = std::numeric_limits<int64_t>::min(),
              int64_t max = std::numeric_limits<int64_t>::max()) const {
    CheckNotNull(column, name);
    const int64_t value = row_.ColumnInt(column);
    if (value < min || value > max) Damaged(StrCat(name, " ", value, " (out of range)"));
    return value;
  }
  bool Bool(int column, const char* name) const { return Int(column, name, 0, 1) != 0; }
  std::optional<double> OptionalDouble(int column) const { return row_.ColumnOptionalDouble(column); }
  double Double(int column, const char* name) const {
    CheckNotNull(column, name);
    return row_.ColumnDouble(column);
  }
  JobState State(int column) const {
    const std::string text = Text(column, "state");
    try {
      return ParseJobState(text);
    } catch (const Error&) {
      Damaged(StrCat("unknown state '", text, "'"));
    }
  }
  std::vector<std::string> Strings(int column, const char* name) const {
    try {
      return nlohmann::json::parse(Text(column, name)).get<std::vector<std::string>>();
    } catch (const nlohmann::json::exception& e) {
      Damaged(StrCat(name, " that are not a JSON list of strings (", e.what(), ")"));
    }
  }
  SettingList Settings(int column, const char* name) const {
    try {
      SettingList settings;
      for (const nlohmann::json& pair : nlohmann::json::parse(Text(column, name))) {
        if (pair.size() != 2) Damaged(StrCat(name, " with an entry that is not a [name, value] pair"));
        settings.emplace_back(pair.at(0).get<std::string>(), pair.at(1).get<std::string>());
      }
      return settings;
    } catch (const nlohmann::json::exception& e) {
      Damaged(StrCat(name, " that are not a JSON list of [name, value] pairs (", e.what(), ")"));
    }
  }

 private:
  void CheckNotNull(int column, const char* name) const {
    if (row_.ColumnIsNull(column)) Damaged(StrCat("no ", name, " (NULL)"));
  }

  const SqliteStatement& row_;
  const std::string& db_path_;
  std::string what_;
};

// Columns first .. first + kDurableCount - 1 of `row`, as BindDurable wrote them.
JobDurable ReadDurable(const RowReader& row, int first) {
  JobDurable d;
  d.state = row.State(first);
  d.attempt = row.Int(first + 1, "attempt", 0);
  d.failures = row.Int(first + 2, "failures", 0);
  d.worker = row.Text(first + 3, "worker");
  d.checkpoint_path = row.Text(first + 4, "checkpoint_path");
  d.checkpoint_step = row.Int(first + 5, "checkpoint_step", 0);
  d.message = row.Text(first + 6, "message");
  d.has_outcome = row.Bool(first + 7, "has_outcome");
  if (d.has_outcome) {
    // SQLite stores NaN as NULL: a diverged job's loss comes back as NULL.
    const double nan = std::numeric_limits<double>::quiet_NaN();
    d.final_dev = row.OptionalDouble(first + 8);
    d.best_dev = row.OptionalDouble(first + 9);
    d.test = row.OptionalDouble(first + 10);
    d.best_step = row.Int(first + 11, "best_step");
    d.steps = row.Int(first + 12, "steps");
    d.train_loss = row.OptionalDouble(first + 13).value_or(nan);
    d.tokens_per_second = row.OptionalDouble(first + 14).value_or(nan);
    d.wall_seconds = row.OptionalDouble(first + 15).value_or(nan);
  }
  d.adapter = row.Text(first + 16, "adapter");
  if (IsFinished(d.state)) {
    d.finished_at = row.Double(first + 17, "finished_at");
    d.finish_seq = row.Int(first + 18, "finish_seq", 1);
  }
  d.stop_reason = row.Text(first + 19, "stop_reason");
  d.stop_step = row.Int(first + 20, "stop_step", 0);
  d.stop_attempt = row.Int(first + 21, "stop_attempt", 0);
  if (IsActive(d.state) && (d.attempt < 1 || d.worker.empty())) row.Damaged("a lease without attempt or worker");
  return d;
}

}  // namespace

// --- The state directory lock ---

// The in-memory table assumes one scheduler per database; a second
// coordinator on the same state would hand out the same jobs twice.
class SqliteStore::StateDirLock {
 public:
  explicit StateDirLock(const std::string& state_dir) {
    const std::string path = (fs::path(state_dir) / kLockFile).string();
    fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd_ < 0) throw Error(StrCat(path, ": cannot open the state lock: ", ErrnoText(errno)));
    if (::flock(fd_, LOCK_EX | LOCK_NB) != 0) {
      const int error = errno;
      ::close(fd_);
      if (error == EWOULDBLOCK) {
        throw Error(StrCat(state_dir, ": the state directory is in use by another coordinator (", path,
                           " is locked); stop it or choose another state directory"));
      }
      throw Error(StrCat(path, ": cannot lock: ", ErrnoText(error)));
    }
  }
  ~StateDirLock() { ::close(fd_); }
  StateDirLock(const StateDirLock&) = delete;
  StateDirLock& operator=(const StateDirLock&) = delete;

 private:
  int fd_ = -1;
};

// --- Opening ---

SqliteStore::SqliteStore(const std::string& state_dir)
    : db_path_((fs::path(state_dir) / kDbFile).string()), lock_(std::make_unique<StateDirLock>(state_dir)) {
  OpenDatabase();
  PrepareStatements();
}

SqliteStore::~SqliteStore() = default;  // statements, then the connection, then the lock

SqliteStore::SqliteStore(ReadOnly, std::string db_path) : db_path_(std::move(db_path)) {
  if (!fs::is_regular_file(db_path_)) {
    throw Error(StrCat(db_path_, ": no such state database (a coordinator's or `run`'s ", kDbFile, ")"));
  }
  db_ = std::make_unique<SqliteDb>(db_path_, SqliteDb::Access::kReadOnly);
  std::optional<int64_t> version;
  try {
    version = db_->QueryInt("SELECT value FROM meta WHERE key = 'schema_version'");
  } catch (const Error& e) {
    throw Error(StrCat(db_path_, ": not a promptsweep state database (", e.what(), ")"));
  }
  if (!version || *version < 2 || *version > kSchemaVersion) {
    throw Error(StrCat(db_path_, ": state schema version ", version ? StrCat(*version) : std::string("(none)"),
                       "; this promptsweep reads versions 2 to ", kSchemaVersion,
                       " (open it once with this promptsweep's coordinator or `run` to migrate it)"));
  }
  has_attempts_ = *version >= 3;
}

std::unique_ptr<SqliteStore> SqliteStore::OpenForReading(const std::string& db_path) {
  return std::unique_ptr<SqliteStore>(new SqliteStore(ReadOnly{}, db_path));
}

void SqliteStore::OpenDatabase() {
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
    throw Error(StrCat(db_path_, ": cannot use it as the coordinator's state (", e.what(), "); ", kMoveAway,
                       ", or choose another state directory"));
  }
  if (version && *version < kSchemaVersion && *version >= 1) {
    Migrate(*version);
    version = kSchemaVersion;
  }
  if (version && *version != kSchemaVersion) {
    throw Error(StrCat(db_path_, ": state schema version ", *version, ", but this promptsweep reads version ",
                       kSchemaVersion, "; use the promptsweep that wrote it, or move the file away"));
  }
  if (!version) {
    SqliteTransaction transaction(*db_);
    db_->Exec(kSchema);
    db_->Exec(kRungsTable);
    db_->Exec(kAttemptsTable);
    db_->Exec(StrCat("INSERT INTO meta(key, value) VALUES('schema_version', ", kSchemaVersion, ")"));
    transaction.Commit();
  }
}

void SqliteStore::Migrate(int64_t from_version) {
  try {
    SqliteTransaction transaction(*db_);
    if (from_version < 2) {
      db_->Exec(kMigrateFrom1);
      db_->Exec(kRungsTable);
    }
    db_->Exec(kAttemptsTable);  // the attempts of older states were not recorded
    db_->Exec(StrCat("UPDATE meta SET value = ", kSchemaVersion, " WHERE key = 'schema_version'"));
    transaction.Commit();
  } catch (const Error& e) {
    throw Error(StrCat(db_path_, ": cannot bring the version-", from_version, " state to version ", kSchemaVersion,
                       " (", e.what(), "); the database is damaged or from another version: ", kMoveAway));
  }
}

SqliteStatement SqliteStore::PrepareQuery(const std::string& sql) const {
  try {
    return db_->Prepare(sql);
  } catch (const Error& e) {
    // Version 1 with other columns than ours: written by something else.
    throw Error(StrCat(e.what(), "; the database is damaged or from another version: ", kMoveAway));
  }
}

void SqliteStore::PrepareStatements() {
  try {
    insert_sweep_ = db_->Prepare(
        "INSERT INTO sweeps(name, seq, sweep_file, yaml, metric_name, maximize, output_dir, parameters, "
        "max_attempts, created, early_terminate) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)");
    std::string values = "?1";
    for (int i = 2; i <= 9 + kDurableCount; ++i) values += StrCat(", ?", i);
    insert_job_ = db_->Prepare(StrCat("INSERT INTO jobs(sweep, job_id, seq, seed, kind, swept, settings, verbalizer, "
                                      "model_key, ",
                                      DurableColumnList(), ") VALUES(", values, ")"));
    update_job_ = db_->Prepare(StrCat("UPDATE jobs SET ", DurableColumnList(" = ?"), " WHERE sweep = ?",
                                      kDurableCount + 1, " AND job_id = ?", kDurableCount + 2));
    insert_metric_ =
        db_->Prepare("INSERT INTO metrics(sweep, job_id, step, split, metric, value) VALUES(?1, ?2, ?3, ?4, ?5, ?6)");
    insert_worker_ = db_->Prepare(
        "INSERT INTO workers(id, name, host, device, ranks, threads, memory_bytes, pid, registered) "
        "VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)");
    insert_rung_ = db_->Prepare(
        "INSERT OR IGNORE INTO rungs(sweep, job_id, iteration, step, value) VALUES(?1, ?2, ?3, ?4, ?5)");
    start_attempt_ = db_->Prepare(
        "INSERT OR REPLACE INTO attempts(sweep, job_id, attempt, worker, started, start_step, ended, outcome, "
        "end_step) VALUES(?1, ?2, ?3, ?4, ?5, ?6, NULL, '', 0)");
    // The end of an attempt whose start was not recorded (leased before
    // version 3) is inserted without a start time.
    end_attempt_ = db_->Prepare(
        "INSERT INTO attempts(sweep, job_id, attempt, worker, started, start_step, ended, outcome, end_step) "
        "VALUES(?1, ?2, ?3, ?4, NULL, 0, ?5, ?6, ?7) ON CONFLICT(sweep, job_id, attempt) DO UPDATE SET "
        "ended = excluded.ended, outcome = excluded.outcome, end_step = excluded.end_step");
  } catch (const Error& e) {
    // Version 1 with other tables than ours: written by something else.
    throw Error(StrCat(e.what(), "; the database is damaged or from another version: ", kMoveAway));
  }
}

// --- Loading ---

StoredState SqliteStore::Load() {
  StoredState state;
  state.sweeps = LoadSweeps();
  state.jobs = LoadJobs(state.sweeps);
  state.workers = LoadWorkers();
  state.rungs = LoadRungs(state.jobs);
  return state;
}

std::vector<StoredSweep> SqliteStore::LoadSweeps() {
  std::vector<StoredSweep> sweeps;
  SqliteStatement query = PrepareQuery(
      "SELECT name, seq, sweep_file, yaml, metric_name, maximize, output_dir, parameters, max_attempts, created, "
      "early_terminate FROM sweeps ORDER BY seq");
  std::set<int64_t> seqs;
  std::set<std::string> outputs;
  while (query.Step()) {
    RowReader row(query, db_path_, "a sweep");
    StoredSweep& sweep = sweeps.emplace_back();
    sweep.name = row.NonEmptyText(0, "name");
    row.Rename(StrCat("sweep ", sweep.name));
    sweep.seq = row.Int(1, "seq", 1);
    sweep.sweep_file = row.Text(2, "sweep_file");
    sweep.yaml = row.Text(3, "yaml");
    sweep.metric_name = row.NonEmptyText(4, "metric_name");
    sweep.maximize = row.Bool(5, "maximize");
    sweep.output_dir = row.NonEmptyText(6, "output_dir");
    sweep.parameters = row.Strings(7, "parameters");
    sweep.max_attempts = row.Int(8, "max_attempts", 1);
    sweep.created = row.Double(9, "created");
    try {
      sweep.early_terminate = EarlyTerminationFromJson(row.Text(10, "early_terminate"));
    } catch (const Error& e) {
      row.Damaged(e.what());
    }
    if (!fs::path(sweep.output_dir).is_absolute()) row.Damaged(StrCat("a relative output_dir ", sweep.output_dir));
    if (!seqs.insert(sweep.seq).second) row.Damaged(StrCat("the seq ", sweep.seq, " of another sweep"));
    if (!outputs.insert(sweep.output_dir).second) row.Damaged("the output_dir of another sweep");
  }
  return sweeps;
}

std::vector<StoredJob> SqliteStore::LoadJobs(const std::vector<StoredSweep>& sweeps) {
  std::set<std::string> sweep_names;
  for (const StoredSweep& sweep : sweeps) sweep_names.insert(sweep.name);
  std::vector<StoredJob> jobs;
  SqliteStatement query = PrepareQuery(StrCat("SELECT sweep, job_id, seq, seed, kind, swept, settings, verbalizer, "
                                              "model_key, ",
                                              DurableColumnList(), " FROM jobs ORDER BY seq"));
  std::set<int64_t> seqs;
  while (query.Step()) {
    RowReader row(query, db_path_, "a job");
    StoredJob& job = jobs.emplace_back();
    job.id = row.NonEmptyText(1, "job_id");
    job.sweep = row.Text(0, "sweep");
    row.Rename(StrCat("job ", job.id, " of sweep ", job.sweep));
    if (sweep_names.count(job.sweep) == 0) row.Damaged("no such sweep in the sweeps table");
    job.seq = row.Int(2, "seq", 1);
    job.seed = static_cast<uint64_t>(row.Int(3, "seed"));
    job.kind = row.Text(4, "kind");
    if (job.kind != kTrainJob && job.kind != kSleepJob) row.Damaged(StrCat("unknown kind '", job.kind, "'"));
    job.swept = row.Settings(5, "swept values");
    job.settings = row.Settings(6, "settings");
    job.verbalizer = row.Settings(7, "verbalizer");
    job.model_key = row.Text(8, "model_key");
    job.durable = ReadDurable(row, 9);
    if (!seqs.insert(job.seq).second) row.Damaged(StrCat("the seq ", job.seq, " of another job"));
  }
  return jobs;
}

std::vector<StoredWorker> SqliteStore::LoadWorkers() {
  std::vector<StoredWorker> workers;
  SqliteStatement query = PrepareQuery(
      "SELECT id, name, host, device, ranks, threads, memory_bytes, pid, registered FROM workers ORDER BY id");
  while (query.Step()) {
    RowReader row(query, db_path_, "a worker");
    StoredWorker& worker = workers.emplace_back();
    worker.id = row.Int(0, "id", 1);
    worker.name = row.NonEmptyText(1, "name");
    row.Rename(StrCat("worker ", worker.name));
    worker.info.host = row.Text(2, "host");
    worker.info.device = row.Text(3, "device");
    worker.info.ranks = row.Int(4, "ranks");
    worker.info.threads = row.Int(5, "threads");
    worker.info.memory_bytes = row.Int(6, "memory_bytes");
    worker.info.pid = row.Int(7, "pid");
    worker.registered = row.Double(8, "registered");
  }
  return workers;
}

std::vector<StoredRung> SqliteStore::LoadRungs(const std::vector<StoredJob>& jobs) {
  std::set<std::pair<std::string, std::string>> known;
  for (const StoredJob& job : jobs) known.emplace(job.sweep, job.id);
  std::vector<StoredRung> rungs;
  SqliteStatement query =
      PrepareQuery("SELECT sweep, job_id, iteration, step, value FROM rungs ORDER BY sweep, iteration, rowid");
  while (query.Step()) {
    RowReader row(query, db_path_, "a rung");
    StoredRung& rung = rungs.emplace_back();
    rung.sweep = row.Text(0, "sweep");
    rung.job_id = row.Text(1, "job_id");
    row.Rename(StrCat("the rung of job ", rung.job_id, " of sweep ", rung.sweep));
    if (known.count({rung.sweep, rung.job_id}) == 0) row.Damaged("no such job in the jobs table");
    rung.iteration = row.Int(2, "iteration", 1);
    rung.step = row.Int(3, "step", 1);
    rung.value = row.Double(4, "value");
  }
  return rungs;
}

std::vector<StoredMetric> SqliteStore::LoadMetrics(const std::string& sweep) {
  std::vector<StoredMetric> metrics;
  SqliteStatement query =
      PrepareQuery("SELECT job_id, step, split, metric, value FROM metrics WHERE sweep = ?1 ORDER BY rowid");
  query.Bind(1, sweep);
  while (query.Step()) {
    RowReader row(query, db_path_, StrCat("a metric row of sweep ", sweep));
    MetricRow& metric = metrics.emplace_back(row.Text(0, "job_id"), MetricRow{}).second;
    metric.step = row.Int(1, "step");
    metric.split = row.Text(2, "split");
    metric.metric = row.Text(3, "metric");
    metric.value = row.OptionalDouble(4).value_or(std::numeric_limits<double>::quiet_NaN());
  }
  return metrics;
}

std::vector<StoredAttempt> SqliteStore::LoadAttempts(const std::string& sweep) {
  std::vector<StoredAttempt> attempts;
  if (!has_attempts_) return attempts;  // a version-2 state opened for reading
  SqliteStatement query = PrepareQuery(
      "SELECT job_id, attempt, worker, started, start_step, ended, outcome, end_step FROM attempts "
      "WHERE sweep = ?1 ORDER BY rowid");
  query.Bind(1, sweep);
  while (query.Step()) {
    RowReader row(query, db_path_, StrCat("an attempt of sweep ", sweep));
    StoredAttempt& attempt = attempts.emplace_back();
    attempt.sweep = sweep;
    attempt.job_id = row.NonEmptyText(0, "job_id");
    attempt.attempt = row.Int(1, "attempt", 1);
    attempt.worker = row.Text(2, "worker");
    attempt.started = row.OptionalDouble(3).value_or(std::numeric_limits<double>::quiet_NaN());
    attempt.start_step = row.Int(4, "start_step", 0);
    attempt.ended = row.OptionalDouble(5);
    attempt.outcome = row.Text(6, "outcome");
    attempt.end_step = row.Int(7, "end_step", 0);
  }
  return attempts;
}

// --- Writing ---

void SqliteStore::Commit(const StoreWrites& writes) {
  if (writes.empty()) return;
  PS_CHECK(lock_ != nullptr, db_path_, " was opened for reading only");
  SqliteTransaction transaction(*db_);
  for (const StoredSweep& sweep : writes.sweeps) WriteSweep(sweep);
  for (const StoredJob& job : writes.jobs) WriteJob(job);
  for (const JobUpdate& update : writes.updates) WriteUpdate(update);
  for (const JobMetrics& metrics : writes.metrics) WriteMetrics(metrics);
  for (const StoredWorker& worker : writes.workers) WriteWorker(worker);
  for (const StoredRung& rung : writes.rungs) WriteRung(rung);
  for (const StoredAttempt& attempt : writes.attempts) WriteAttempt(attempt);
  transaction.Commit();
}

void SqliteStore::WriteSweep(const StoredSweep& sweep) {
  insert_sweep_.Bind(1, sweep.name)
      .Bind(2, sweep.seq)
      .Bind(3, sweep.sweep_file)
      .Bind(4, sweep.yaml)
      .Bind(5, sweep.metric_name)
      .Bind(6, sweep.maximize ? 1 : 0)
      .Bind(7, sweep.output_dir)
      .Bind(8, nlohmann::json(sweep.parameters).dump())
      .Bind(9, sweep.max_attempts)
      .Bind(10, sweep.created)
      .Bind(11, EarlyTerminationToJson(sweep.early_terminate))
      .Run();
}

void SqliteStore::WriteJob(const StoredJob& job) {
  std::string swept, settings, verbalizer;
  try {
    swept = SettingsToJson(job.swept);
    settings = SettingsToJson(job.settings);
    verbalizer = SettingsToJson(job.verbalizer);
  } catch (const nlohmann::json::exception& e) {
    throw Error(StrCat("sweep ", job.sweep, ": job ", job.id, ": values are not valid UTF-8 text (", e.what(), ")"));
  }
  insert_job_.Bind(1, job.sweep)
      .Bind(2, job.id)
      .Bind(3, job.seq)
      .Bind(4, static_cast<int64_t>(job.seed))
      .Bind(5, job.kind)
      .Bind(6, swept)
      .Bind(7, settings)
      .Bind(8, verbalizer)
      .Bind(9, job.model_key);
  BindDurable(insert_job_, 10, job.durable);
  insert_job_.Run();
}

void SqliteStore::WriteUpdate(const JobUpdate& update) {
  BindDurable(update_job_, 1, update.durable);
  update_job_.Bind(kDurableCount + 1, update.sweep).Bind(kDurableCount + 2, update.job_id).Run();
}

void SqliteStore::WriteMetrics(const JobMetrics& metrics) {
  for (const MetricRow& row : metrics.rows) {
    insert_metric_.Bind(1, metrics.sweep)
        .Bind(2, metrics.job_id)
        .Bind(3, row.step)
        .Bind(4, row.split)
        .Bind(5, row.metric)
        .Bind(6, row.value)
        .Run();
  }
}

void SqliteStore::WriteWorker(const StoredWorker& worker) {
  insert_worker_.Bind(1, worker.id)
      .Bind(2, worker.name)
      .Bind(3, worker.info.host)
      .Bind(4, worker.info.device)
      .Bind(5, worker.info.ranks)
      .Bind(6, worker.info.threads)
      .Bind(7, worker.info.memory_bytes)
      .Bind(8, worker.info.pid)
      .Bind(9, worker.registered)
      .Run();
}

void SqliteStore::WriteRung(const StoredRung& rung) {
  insert_rung_.Bind(1, rung.sweep)
      .Bind(2, rung.job_id)
      .Bind(3, rung.iteration)
      .Bind(4, rung.step)
      .Bind(5, rung.value)
      .Run();
}

void SqliteStore::WriteAttempt(const StoredAttempt& attempt) {
  if (!attempt.ended) {
    start_attempt_.Bind(1, attempt.sweep)
        .Bind(2, attempt.job_id)
        .Bind(3, attempt.attempt)
        .Bind(4, attempt.worker)
        .Bind(5, attempt.started)
        .Bind(6, attempt.start_step)
        .Run();
    return;
  }
  end_attempt_.Bind(1, attempt.sweep)
      .Bind(2, attempt.job_id)
      .Bind(3, attempt.attempt)
      .Bind(4, attempt.worker)
      .Bind(5, *attempt.ended)
      .Bind(6, attempt.outcome)
      .Bind(7, attempt.end_step)
      .Run();
}

}  // namespace promptsweep
