#include "worker/model_cache.h"

#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <limits>

#include <nlohmann/json.hpp>

#include "common/error.h"
#include "common/job.h"
#include "common/log.h"
#include "common/safetensors.h"

namespace promptsweep {
namespace {

namespace fs = std::filesystem;

std::string Megabytes(int64_t bytes) {
  char text[32];
  std::snprintf(text, sizeof(text), "%.1f MiB", static_cast<double>(bytes) / (1024.0 * 1024.0));
  return text;
}

// The weights' bytes once loaded as `spec` asks, from the checkpoint's headers
// (no tensor data is read): float tensors take the compute dtype's size. 0
// when the checkpoint cannot be read; the load itself then reports why.
int64_t EstimateBytes(const ModelSpec& spec) {
  try {
    const int64_t float_size = static_cast<int64_t>(c10::elementSize(ParseComputeDType(spec.dtype)));
    const std::unique_ptr<CheckpointReader> checkpoint = CheckpointReader::Open(spec.model_dir);
    int64_t bytes = 0;
    for (const auto& file : checkpoint->files()) {
      for (const TensorInfo& tensor : file->tensors()) {
        const bool is_float = tensor.dtype == DType::kF64 || tensor.dtype == DType::kF32 ||
                              tensor.dtype == DType::kF16 || tensor.dtype == DType::kBF16;
        bytes += is_float ? tensor.NumElements() * float_size : static_cast<int64_t>(tensor.NumBytes());
      }
    }
    return bytes;
  } catch (...) {  // must not throw: a placeholder waits for this load
    return 0;
  }
}

// The memory limit of this process's cgroup (v2, then v1), if any.
int64_t CgroupMemoryLimit() {
  for (const char* path : {"/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"}) {
    std::ifstream in(path);
    std::string text;
    if (!(in >> text) || text == "max") continue;
    try {
      return static_cast<int64_t>(std::stoll(text));
    } catch (const std::exception&) {
      continue;
    }
  }
  return std::numeric_limits<int64_t>::max();
}

}  // namespace

int64_t DefaultModelMemoryBudget() {
  const int64_t pages = sysconf(_SC_PHYS_PAGES);
  const int64_t page_size = sysconf(_SC_PAGESIZE);
  const int64_t physical = pages > 0 && page_size > 0 ? pages * page_size : 0;
  const int64_t memory = std::min(physical, CgroupMemoryLimit());
  return memory / 4 * 3;
}

ModelCacheKey ModelCacheKeyOf(const ModelSpec& spec) {
  // The coordinator groups jobs by ModelKey of their settings; the same function keeps both sides agreeing.
  const SettingList settings = {{"model", spec.model_dir}, {"tokenizer", spec.tokenizer}, {"dtype", spec.dtype}};
  return ModelCacheKey{ModelKey(settings), spec.device};
}

ModelCache::ModelCache(Options options) : options_(std::move(options)) {}

std::shared_ptr<const LoadedModel> ModelCache::Get(const ModelSpec& spec) {
  const ModelCacheKey key = ModelCacheKeyOf(spec);
  std::unique_lock<std::mutex> lock(mutex_);
  for (auto it = entries_.find(key); it != entries_.end(); it = entries_.find(key)) {
    if (it->second.model != nullptr) {
      it->second.last_used = ++clock_;
      return it->second.model;
    }
    loaded_.wait(lock);  // another thread is loading this model; share its load (or retry if it failed)
  }

  // A placeholder first, so that other threads wanting this model wait for
  // this load; then the estimate is reserved, so that concurrent loads of
  // other models see each other in the budget.
  entries_[key] = Entry{nullptr, 0, ++clock_};
  lock.unlock();
  const int64_t estimate = EstimateBytes(spec);
  lock.lock();
  MakeRoom(estimate);
  entries_[key].bytes = estimate;
  bytes_ += estimate;
  lock.unlock();

  std::shared_ptr<const LoadedModel> model;
  try {
    model = std::make_shared<const LoadedModel>(LoadModel(spec));
  } catch (...) {
    lock.lock();
    bytes_ -= estimate;
    entries_.erase(key);
    loaded_.notify_all();
    throw;
  }

  lock.lock();
  bytes_ -= estimate;
  MakeRoom(model->bytes);  // in case the estimate was low
  Entry& entry = entries_[key];
  entry.model = model;
  entry.bytes = model->bytes;
  bytes_ += model->bytes;
  ++loads_;
  std::string warning;
  if (options_.memory_budget_bytes > 0 && bytes_ > options_.memory_budget_bytes) {
    warning = StrCat("model cache: after loading ", key.model_key, " on ", key.device, " (",
                     Megabytes(model->bytes), ") the loaded models (", entries_.size(), ") take ", Megabytes(bytes_),
                     ", over the memory budget of ", Megabytes(options_.memory_budget_bytes),
                     "; models in use by running jobs are never evicted");
  }
  loaded_.notify_all();
  lock.unlock();

  if (!warning.empty()) {
    if (options_.warn) {
      options_.warn(warning);
    } else {
      Logger("worker").warn("{}", warning);
    }
  }
  return model;
}

void ModelCache::MakeRoom(int64_t extra) {
  if (options_.memory_budget_bytes <= 0) return;
  while (bytes_ + extra > options_.memory_budget_bytes) {
    // The cache's own reference is the only one (use_count 1) when no job
    // holds the model; new references come only from Get, under this lock.
    auto victim = entries_.end();
    for (auto it = entries_.begin(); it != entries_.end(); ++it) {
      const Entry& entry = it->second;
      if (entry.model == nullptr || entry.model.use_count() > 1) continue;
      if (victim == entries_.end() || entry.last_used < victim->second.last_used) victim = it;
    }
    if (victim == entries_.end()) return;
    bytes_ -= victim->second.bytes;
    entries_.erase(victim);
  }
}

std::vector<ModelCacheKey> ModelCache::LoadedKeys() const {
  std::lock_guard<std::mutex> lock(mutex_);
  std::vector<std::pair<uint64_t, ModelCacheKey>> loaded;
  for (const auto& [key, entry] : entries_) {
    if (entry.model != nullptr) loaded.emplace_back(entry.last_used, key);
  }
  std::sort(loaded.begin(), loaded.end(), [](const auto& a, const auto& b) { return a.first > b.first; });
  std::vector<ModelCacheKey> keys;
  for (auto& [last_used, key] : loaded) keys.push_back(std::move(key));
  return keys;
}

int64_t ModelCache::bytes() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return bytes_;
}

int64_t ModelCache::loads() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return loads_;
}

std::shared_ptr<const TaskData> TaskDataCache::Get(const std::string& path, const TaskSpec& spec,
                                                   const std::string& tokenizer_key, const Tokenizer& tokenizer) {
  // The file's size and time are in the key so that an edited file is read again.
  std::error_code ec;
  const auto size = fs::file_size(path, ec);
  const auto time = ec ? 0 : fs::last_write_time(path, ec).time_since_epoch().count();
  nlohmann::json verbalizer = nlohmann::json::array();
  for (const auto& [label, words] : spec.verbalizer) verbalizer.push_back({label, words});
  const std::string key =
      nlohmann::json::array({path, ec ? -1 : static_cast<int64_t>(size), static_cast<int64_t>(time),
                             spec.kind == TaskKind::kGeneration ? "generation" : "classification", spec.template_text,
                             verbalizer, spec.max_length, spec.add_special_tokens,
                             spec.eos_token_id ? nlohmann::json(*spec.eos_token_id) : nlohmann::json(nullptr),
                             tokenizer_key})
          .dump();
  {
    std::lock_guard<std::mutex> lock(mutex_);
    for (auto it = entries_.begin(); it != entries_.end(); ++it) {
      if (it->first != key) continue;
      entries_.splice(entries_.begin(), entries_, it);
      return entries_.front().second;
    }
  }
  auto data = std::make_shared<const TaskData>(LoadTaskData(path, spec, tokenizer));
  std::lock_guard<std::mutex> lock(mutex_);
  ++loads_;
  entries_.remove_if([&key](const auto& entry) { return entry.first == key; });
  entries_.emplace_front(key, data);
  while (entries_.size() > capacity_) entries_.pop_back();
  return data;
}

int64_t TaskDataCache::loads() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return loads_;
}

}  // namespace promptsweep
