// What a worker keeps loaded between jobs: frozen models with their
// tokenizers (ModelCache) and tokenized task files (TaskDataCache). A sweep
// runs many short jobs on one model and one task, so loading the model or
// tokenizing a 3,000-example train file once per job would dominate them.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <list>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "common/task_data.h"
#include "common/tokenizer.h"
#include "engine/causal_lm.h"
#include "engine/model_loader.h"

namespace promptsweep {

// The memory budget a worker gives its ModelCache by default: 75% of the
// machine's memory (or of the cgroup's limit, under SLURM or a container,
// when smaller). The rest is for the running job's activations, its data and
// the process. A GPU worker should pass its device memory instead.
int64_t DefaultModelMemoryBudget();

// A loaded model's identity in the cache: ModelKey(settings) and the device.
struct ModelCacheKey {
  std::string model_key;
  std::string device;
  bool operator<(const ModelCacheKey& other) const {
    return std::tie(model_key, device) < std::tie(other.model_key, other.device);
  }
  bool operator==(const ModelCacheKey& other) const {
    return model_key == other.model_key && device == other.device;
  }
};
ModelCacheKey ModelCacheKeyOf(const ModelSpec& spec);

// Loaded frozen models by (ModelKey, device), shared read-only with the jobs
// that run on them. With a memory budget, a load that would exceed it first
// evicts least-recently-used models that no running job holds; when that is
// not enough the model is loaded anyway with a warning, because a job must not
// fail for the cache's sake. The budget counts the weights' bytes (the
// estimate from the checkpoint's headers before a load, the real size after).
//
// Thread safety: every method may be called from several threads. Two
// threads asking for the same model share one load; different models load in
// parallel (loading happens outside the lock).
class ModelCache {
 public:
  struct Options {
    int64_t memory_budget_bytes = 0;  // 0: unlimited
    // Where the over-budget warning goes; default: the log (common/log.h), level warn.
    std::function<void(const std::string& message)> warn;
  };
  explicit ModelCache(Options options);
  ModelCache(const ModelCache&) = delete;
  ModelCache& operator=(const ModelCache&) = delete;

  // The model of `spec`, loaded now unless cached. Error as LoadModel (nothing is cached then).
  std::shared_ptr<const LoadedModel> Get(const ModelSpec& spec);

  // The loaded models, most recently used first.
  std::vector<ModelCacheKey> LoadedKeys() const;
  // Bytes of the loaded models (and the estimates of those being loaded).
  int64_t bytes() const;
  // How many models Get loaded (cache misses), for tests and worker statistics.
  int64_t loads() const;

 private:
  struct Entry {
    std::shared_ptr<const LoadedModel> model;  // null while a thread loads it
    int64_t bytes = 0;                         // estimate while loading
    uint64_t last_used = 0;
  };
  // Evicts least-recently-used models no job holds until `extra` more bytes
  // fit the budget, or nothing more can go. Needs mutex_.
  void MakeRoom(int64_t extra);

  const Options options_;
  mutable std::mutex mutex_;
  std::condition_variable loaded_;  // a load finished (or failed)
  std::map<ModelCacheKey, Entry> entries_;
  int64_t bytes_ = 0;
  uint64_t clock_ = 0;  // use counter for LRU order
  int64_t loads_ = 0;
};

// Tokenized task files, keyed by the file (path, size, modification time),
// the TaskSpec and the tokenizer (`tokenizer_key`, e.g. the ModelKey), so
// consecutive jobs of a sweep tokenize their train/dev/test files once. Keeps
// the `capacity` most recently used files (a few tasks' splits).
//
// Thread safety: every method may be called from several threads; files load
// outside the lock (two threads may then tokenize the same file once each).
class TaskDataCache {
 public:
  explicit TaskDataCache(std::size_t capacity = 6) : capacity_(capacity) {}

  // LoadTaskData(path, spec, tokenizer), or the cached result. Errors as LoadTaskData.
  std::shared_ptr<const TaskData> Get(const std::string& path, const TaskSpec& spec,
                                      const std::string& tokenizer_key, const Tokenizer& tokenizer);
  // How many files Get tokenized (cache misses).
  int64_t loads() const;

 private:
  const std::size_t capacity_;
  mutable std::mutex mutex_;
  // Most recently used first.
  std::list<std::pair<std::string, std::shared_ptr<const TaskData>>> entries_;
  int64_t loads_ = 0;
};

}  // namespace promptsweep
