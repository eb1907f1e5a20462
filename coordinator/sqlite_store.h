// The scheduler's state in SQLite (WAL): STATE_DIR/promptsweep.db, held by
// an exclusive flock on STATE_DIR/promptsweep.lock for as long as the store
// is open, so a second coordinator cannot hand out the same jobs.
//
// Thread safety: none (SchedulerStore); the scheduler's mutex serialises it.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "coordinator/scheduler_store.h"
#include "coordinator/sqlite_db.h"

namespace promptsweep {

class SqliteStore : public SchedulerStore {
 public:
  static constexpr char kDbFile[] = "promptsweep.db";
  static constexpr char kLockFile[] = "promptsweep.lock";

  // Locks `state_dir` (which must exist), then opens or creates the database
  // and its schema. Error naming the file and what to do when the directory
  // is in use, the file is not a promptsweep state or is of another version.
  explicit SqliteStore(const std::string& state_dir);
  ~SqliteStore() override;
  SqliteStore(const SqliteStore&) = delete;
  SqliteStore& operator=(const SqliteStore&) = delete;

  // Opens the state database `db_path` for reading only, beside a
  // coordinator that may be using it (reports): no lock, no schema change,
  // no writes. Reads versions 2 (no attempt log) and 3. Error naming the
  // file when it is not a promptsweep state of those versions.
  static std::unique_ptr<SqliteStore> OpenForReading(const std::string& db_path);

  StoredState Load() override;
  void Commit(const StoreWrites& writes) override;
  std::vector<StoredMetric> LoadMetrics(const std::string& sweep) override;
  std::vector<StoredAttempt> LoadAttempts(const std::string& sweep) override;

  const std::string& path() const { return db_path_; }

 private:
  class StateDirLock;
  struct ReadOnly {};
  SqliteStore(ReadOnly, std::string db_path);

  void OpenDatabase();
  void PrepareStatements();
  // Prepare, with what to do when the tables are not ours.
  SqliteStatement PrepareQuery(const std::string& sql) const;
  std::vector<StoredSweep> LoadSweeps();
  std::vector<StoredJob> LoadJobs(const std::vector<StoredSweep>& sweeps);
  std::vector<StoredWorker> LoadWorkers();
  std::vector<StoredRung> LoadRungs(const std::vector<StoredJob>& jobs);
  // Brings an older state (1: before early termination, 2: before the
  // attempt log) to this version.
  void Migrate(int64_t from_version);
  void WriteSweep(const StoredSweep& sweep);
  void WriteJob(const StoredJob& job);
  void WriteUpdate(const JobUpdate& update);
  void WriteMetrics(const JobMetrics& metrics);
  void WriteWorker(const StoredWorker& worker);
  void WriteRung(const StoredRung& rung);
  void WriteAttempt(const StoredAttempt& attempt);

  std::string db_path_;
  std::unique_ptr<StateDirLock> lock_;  // first in, last out
  // Declared before the statements: they must be finalized before it closes.
  std::unique_ptr<SqliteDb> db_;
  SqliteStatement insert_sweep_, insert_job_, update_job_, insert_metric_, insert_worker_, insert_rung_,
      start_attempt_, end_attempt_;
  bool has_attempts_ = true;  // false: a version-2 state opened for reading
};

}  // namespace promptsweep
