#include "coordinator/results_sink.h"

#include <algorithm>
#include <cerrno>
#include <filesystem>
#include <fstream>
#include <system_error>

#include "common/error.h"
#include "common/file_util.h"
#include "common/log.h"

namespace promptsweep {
namespace {

namespace fs = std::filesystem;

constexpr char kStagingMark[] = ".staging";

// Plain write, no fsync: adapter files become visible by renaming their
// directory, and they are as durable as the SQLite commit that follows
// (synchronous=NORMAL, see sqlite_store.cc).
void WriteWholeFile(const fs::path& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  out.close();
  if (!out) throw Error(StrCat(path.string(), ": cannot write: ", ErrnoText(errno)));
}

void RemoveAll(const fs::path& path) {
  std::error_code error;
  fs::remove_all(path, error);
  if (error) throw Error(StrCat(path.string(), ": cannot remove: ", error.message()));
}

ResultsCsv CsvOf(const ResultsBatch& batch) {
  return ResultsCsv(batch.output_dir, batch.metric_name, batch.parameters);
}

}  // namespace

// --- StagedFiles ---

StagedFiles::~StagedFiles() {
  if (temp_.empty()) return;
  std::error_code ignored;  // best effort: a leftover is removed at the next start
  fs::remove_all(temp_, ignored);
}

StagedFiles& StagedFiles::operator=(StagedFiles&& other) noexcept {
  if (this != &other) {
    if (!temp_.empty()) {
      std::error_code ignored;
      fs::remove_all(temp_, ignored);
    }
    temp_ = std::exchange(other.temp_, "");
    target_ = std::exchange(other.target_, "");
  }
  return *this;
}

void StagedFiles::Publish() {
  PS_CHECK(!temp_.empty(), "Publish() without staged files for ", target_);
  std::error_code error;
  fs::rename(temp_, target_, error);  // a file replaces a file atomically
  if (error) {
    // A directory is left over from a coordinator that died between its
    // rename and its commit: that report was never acknowledged.
    RemoveAll(target_);
    fs::rename(temp_, target_, error);
  }
  if (error) throw Error(StrCat(target_, ": cannot rename ", temp_, " into place: ", error.message()));
  temp_.clear();
}

// --- Staging ---

std::string ResultsSink::StagingName(const std::string& target) {
  const fs::path path(target);
  return (path.parent_path() / StrCat(".", path.filename().string(), kStagingMark, next_staging_++)).string();
}

StagedFiles ResultsSink::StageDirectory(const std::string& target_dir,
                                        const std::vector<std::pair<std::string, std::string>>& files) {
  CreateDirectories(fs::path(target_dir).parent_path().string());
  const fs::path temp(StagingName(target_dir));
  StagedFiles staged(temp.string(), target_dir);  // removed again if a write below fails
  RemoveAll(temp);
  CreateDirectories(temp.string());
  for (const auto& [name, bytes] : files) WriteWholeFile(temp / name, bytes);
  return staged;
}

StagedFiles ResultsSink::StageFile(const std::string& target_file, const std::string& bytes) {
  CreateDirectories(fs::path(target_file).parent_path().string());
  const std::string temp = StagingName(target_file);
  StagedFiles staged(temp, target_file);
  WriteFileAtomically(temp, bytes);
  return staged;
}

void ResultsSink::RemoveStaleStaging(const std::string& output_dir) {
  for (const char* sub : {"adapters", "checkpoints"}) {
    std::error_code error;
    fs::directory_iterator entries(fs::path(output_dir) / sub, error);
    if (error) continue;  // none yet
    for (const fs::directory_entry& entry : entries) {
      const std::string name = entry.path().filename().string();
      if (name.size() > 1 && name[0] == '.' && name.find(kStagingMark) != std::string::npos) {
        std::error_code ignored;  // only costs disk space
        fs::remove_all(entry.path(), ignored);
      }
    }
  }
}

void ResultsSink::CreateDirectories(const std::string& dir) {
  std::error_code error;
  fs::create_directories(dir, error);
  if (error) throw Error(StrCat(dir, ": cannot create directory: ", error.message()));
}

// --- CSV rows ---

void ResultsSink::Enqueue(std::vector<ResultsBatch> batches) {
  if (batches.empty()) return;
  std::lock_guard<std::mutex> lock(queue_mutex_);
  for (ResultsBatch& batch : batches) queue_.push_back(std::move(batch));
}

void ResultsSink::DropQueued(const std::string& sweep) {
  std::lock_guard<std::mutex> lock(queue_mutex_);
  queue_.erase(std::remove_if(queue_.begin(), queue_.end(),
                              [&](const ResultsBatch& batch) { return batch.sweep == sweep; }),
               queue_.end());
}

void ResultsSink::Flush(const Snapshot& snapshot) {
  std::lock_guard<std::mutex> write_lock(write_mutex_);
  std::deque<ResultsBatch> batches;
  {
    std::lock_guard<std::mutex> lock(queue_mutex_);
    batches.swap(queue_);
  }
  // Sweeps rewritten from a snapshot in this flush: their later batches are in it.
  std::vector<std::string> rewritten;
  for (const ResultsBatch& batch : batches) Write(batch, snapshot, rewritten);
}

void ResultsSink::Write(const ResultsBatch& batch, const Snapshot& snapshot, std::vector<std::string>& rewritten) {
  if (std::find(rewritten.begin(), rewritten.end(), batch.sweep) == rewritten.end()) {
    try {
      const ResultsCsv csv = CsvOf(batch);
      CreateDirectories(batch.output_dir);
      if (batch.new_sweep) csv.Rewrite({});  // replaces whatever an older state left here
      if (!batch.rows.empty()) csv.Append(batch.rows);
    } catch (const Error& append_error) {
      // The state is committed: a failed append must not fail the report.
      // Rewrite the whole files once; the next start rebuilds them anyway.
      rewritten.push_back(batch.sweep);
      try {
        Rewrite(batch, snapshot(batch.sweep));
      } catch (const Error& rebuild_error) {
        Logger("coordinator").warn("{}; {} (rebuilt when the coordinator restarts)", append_error.what(),
                                   rebuild_error.what());
      }
    }
  }
  for (const std::string& path : batch.obsolete_files) {
    std::error_code ignored;  // a leftover checkpoint only costs disk space
    fs::remove(path, ignored);
  }
}

void ResultsSink::Rewrite(const ResultsBatch& sweep, const std::vector<FinishedJobRows>& rows) {
  CreateDirectories(sweep.output_dir);
  CsvOf(sweep).Rewrite(rows);
}

}  // namespace promptsweep
