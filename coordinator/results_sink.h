// The scheduler's file output: a finished job's adapter files
// (OUTPUT/adapters/<job id>/), checkpoints (OUTPUT/checkpoints/<job id>.state)
// and the rows of results.csv / metrics.csv (through results_csv.h). The
// scheduler never holds its mutex while this class writes:
//
//   - Adapter files and checkpoints must exist before their job's row is
//     committed, so they are staged (written under a temporary name) outside
//     the lock and published (one rename) under it, right before the commit
//     and only if the report is still accepted then; a rejected report's
//     staging is removed and never replaces a published file.
//   - CSV rows are enqueued under the scheduler's mutex, so the queue is in
//     commit order, and written by Flush() after it is released. One Flush at
//     a time takes what is queued; each batch is written exactly once, in
//     order, and a batch enqueued before a Flush returns is on disk (or
//     reported) when it does.
#pragma once

#include <atomic>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "coordinator/results_csv.h"

namespace promptsweep {

// Rows of one sweep for results.csv / metrics.csv, from one commit.
struct ResultsBatch {
  std::string sweep;
  std::string output_dir;
  std::string metric_name;
  std::vector<std::string> parameters;
  bool new_sweep = false;  // write both files afresh (headers only) before `rows`
  std::vector<FinishedJobRows> rows;
  std::vector<std::string> obsolete_files;  // checkpoints of the finished jobs: removed after the rows
};

// Files written under a temporary name, waiting for Publish(); removed on
// destruction unless published. Move-only.
class StagedFiles {
 public:
  StagedFiles() = default;
  StagedFiles(std::string temp, std::string target) : temp_(std::move(temp)), target_(std::move(target)) {}
  ~StagedFiles();
  StagedFiles(StagedFiles&& other) noexcept { *this = std::move(other); }
  StagedFiles& operator=(StagedFiles&& other) noexcept;
  StagedFiles(const StagedFiles&) = delete;
  StagedFiles& operator=(const StagedFiles&) = delete;

  bool staged() const { return !temp_.empty(); }
  const std::string& target() const { return target_; }
  // Replaces `target` (file or directory) by the staged one: a rename, so
  // cheap enough for the scheduler's lock. Error naming the paths.
  void Publish();

 private:
  std::string temp_;
  std::string target_;
};

// Thread safety: every method may be called from any thread.
class ResultsSink {
 public:
  // The rows of every finished job of a sweep, for a rewrite after a failed
  // append; the implementation drops the sweep's queued batches (DropQueued)
  // in the same critical section that reads the rows, so none is written twice.
  using Snapshot = std::function<std::vector<FinishedJobRows>(const std::string& sweep)>;

  // `files` (name -> bytes) into a staging directory beside `target_dir`.
  StagedFiles StageDirectory(const std::string& target_dir,
                             const std::vector<std::pair<std::string, std::string>>& files);
  // `bytes` into a staging file beside `target_file`, synced.
  StagedFiles StageFile(const std::string& target_file, const std::string& bytes);
  // Removes staging left by a coordinator that died (".*.staging*" in OUTPUT/adapters, OUTPUT/checkpoints).
  static void RemoveStaleStaging(const std::string& output_dir);
  static void CreateDirectories(const std::string& dir);  // Error naming it

  // Under the scheduler's mutex: the order of calls is the order of writes.
  void Enqueue(std::vector<ResultsBatch> batches);
  // Drops the queued batches of `sweep` (a snapshot that covers them is being taken).
  void DropQueued(const std::string& sweep);
  // Without the scheduler's mutex: writes what is queued. Never throws for a
  // failed write (the state is committed): rewrites the sweep's files from
  // `snapshot` once, else warns (the next start rebuilds them).
  void Flush(const Snapshot& snapshot);

  // Replaces the sweep's two files by exactly `rows` (the rebuild on open).
  static void Rewrite(const ResultsBatch& sweep, const std::vector<FinishedJobRows>& rows);

 private:
  std::string StagingName(const std::string& target);
  void Write(const ResultsBatch& batch, const Snapshot& snapshot, std::vector<std::string>& rewritten);

  std::mutex write_mutex_;  // one Flush at a time: appends never interleave
  std::mutex queue_mutex_;  // guards queue_ (held only to push or pop)
  std::deque<ResultsBatch> queue_;
  std::atomic<int64_t> next_staging_{1};  // staging names: unique within the process
};

}  // namespace promptsweep
