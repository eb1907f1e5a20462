// One job of a sweep as coordinator and worker both see it: what to run
// (JobSpec), how it is going (JobProgress) and how it ended (JobOutcome).
// Plain structs with no transport in them: the gRPC service converts them
// to and from proto messages, the scheduler stores them, executors fill them.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace promptsweep {

// Ordered name -> value text, in job-file order.
using SettingList = std::vector<std::pair<std::string, std::string>>;

// The value of `name` in `settings`, or `fallback`.
inline std::string SettingValue(const SettingList& settings, std::string_view name, std::string fallback = "") {
  for (const auto& [key, value] : settings) {
    if (key == name) return value;
  }
  return fallback;
}

// What a worker must have loaded to run a train job: model directory,
// tokenizer, dtype. Jobs with the same key share one frozen model in a worker.
inline std::string ModelKey(const SettingList& settings) {
  const std::string model = SettingValue(settings, "model");
  if (model.empty()) return "";
  return model + "|" + SettingValue(settings, "tokenizer") + "|" + SettingValue(settings, "dtype", "float32");
}

// What jobs must share to train together in one pack (one forward/backward
// per step over several prompts, worker --pack K): the frozen model
// (model, tokenizer, dtype), the device, the data (train, dev, test), the
// task, template, max_length and the verbalizer. Jobs that differ only in
// trainer options (learning rate, seed, prompt length, init, ...) share a
// key. Empty when the job has no model. Settings are looked up by name, so
// their order does not matter; the verbalizer's does (label order is class
// order). Fields are length-prefixed: a template may contain any character.
inline std::string PackKey(const SettingList& settings, const SettingList& verbalizer) {
  if (SettingValue(settings, "model").empty()) return "";
  std::string key;
  const auto append = [&key](std::string_view name, const std::string& value) {
    if (!key.empty()) key += '|';
    key.append(name);
    key += '=';
    key += std::to_string(value.size());
    key += ':';
    key += value;
  };
  for (const std::string_view name : {"model", "tokenizer"}) append(name, SettingValue(settings, name));
  append("dtype", SettingValue(settings, "dtype", "float32"));  // ModelKey's default
  for (const std::string_view name : {"device", "train", "dev", "test", "task", "template", "max_length"}) {
    append(name, SettingValue(settings, name));
  }
  for (const auto& [label, words] : verbalizer) {
    append("label", label);
    append("words", words);
  }
  return key;
}

// [A-Za-z0-9._-]: the characters of sweep names, job ids and worker ids.
inline bool IsNameChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
         c == '-';
}

// Whether `name` may name a sweep: letters, digits, '_', '.' and '-', not
// empty and not "." or ".." (it becomes a directory name: runs/<name>,
// <state dir>/sweeps/<name>). The sweep reader and the coordinator agree on it.
inline bool IsPlainName(std::string_view name) {
  if (name.empty() || name == "." || name == "..") return false;
  for (const char c : name) {
    if (!IsNameChar(c)) return false;
  }
  return true;
}

// Job kinds. "train": a prompt-tuning job (settings = the keys of a
// `promptsweep train --config` job file, without output). "sleep": sleeps
// `seconds` and succeeds; exercises the orchestrator alone (benchmarks, tests).
inline constexpr std::string_view kTrainJob = "train";
inline constexpr std::string_view kSleepJob = "sleep";

// The job state machine (README "Architecture"):
//   pending -> leased -> running -> succeeded | stopped | failed | diverged | cancelled
// A lease not renewed in time, a retryable failure or a checkpoint sent on
// preemption return the job to pending with the next attempt. `stopped`: the
// coordinator's early termination ended it at a rung; its best-so-far prompt
// is its adapter, evaluated on test like a succeeded job's (a success too).
enum class JobState { kPending, kLeased, kRunning, kSucceeded, kFailed, kDiverged, kCancelled, kStopped };
std::string_view JobStateName(JobState state);  // "pending", ...
// Error for an unknown name.
JobState ParseJobState(std::string_view name);
inline bool IsFinished(JobState state) {
  return state == JobState::kSucceeded || state == JobState::kFailed || state == JobState::kDiverged ||
         state == JobState::kCancelled || state == JobState::kStopped;
}
// Finished with an adapter and test figures: succeeded, or stopped early by the coordinator.
inline bool IsSuccess(JobState state) { return state == JobState::kSucceeded || state == JobState::kStopped; }

// What a worker receives with a lease.
struct JobSpec {
  std::string sweep;      // sweep name
  std::string job_id;     // 16 hex digits, stable (sweep_spec.h JobId)
  int64_t attempt = 0;    // 1 for the first lease; a report for an older attempt is rejected
  std::string kind = std::string(kTrainJob);
  SettingList settings;   // absolute paths
  SettingList verbalizer; // label -> words (classification)
  std::string checkpoint; // bytes of the trainer state to resume from (empty: start fresh)
  // Early termination decided in an earlier attempt (its holder lost the
  // lease before it heard): train to this step, then end as stopped. 0: none.
  int64_t stop_at_step = 0;
  std::string stop_reason;
};

// A progress report, after optimizer steps.
struct JobProgress {
  int64_t step = 0;
  int64_t max_steps = 0;
  double train_loss = 0.0;
  double learning_rate = 0.0;
  double tokens_per_second = 0.0;
  double eta_seconds = 0.0;
  std::optional<double> dev_metric;   // when this step evaluated on dev
  std::optional<double> best_metric;  // best dev metric so far
};

// One row of a job's metrics log (metrics.csv is long format).
struct MetricRow {
  int64_t step = 0;
  std::string split;   // train, dev, test
  std::string metric;  // loss, lr, accuracy, exact_match, tokens_per_second
  double value = 0.0;
};

// How a job run ended on a worker.
struct JobOutcome {
  // succeeded, stopped, failed, diverged or cancelled. A preempted job (worker
  // stopping) is cancelled with `checkpoint` set: the job is not finished
  // and resumes from it on the next worker.
  JobState state = JobState::kFailed;
  std::string message;     // why it failed / diverged / was cancelled
  bool retryable = false;  // failed for a reason of the worker's (lost rank, OOM): run it again elsewhere
  std::string metric_name; // the dev metric: accuracy, exact_match or loss
  std::optional<double> final_dev;  // metric of the final prompt on dev
  std::optional<double> best_dev;   // best dev metric
  std::optional<double> test;       // metric of the best prompt on test
  int64_t best_step = 0;
  int64_t steps = 0;
  double train_loss = 0.0;          // mean train loss of the last logged steps
  double tokens_per_second = 0.0;
  double wall_seconds = 0.0;        // this attempt's run (resumed attempts: since the resume)
  std::vector<MetricRow> history;   // across resumes
  // Result files (name -> bytes): adapter_config.json, adapter_model.safetensors,
  // result.json. The coordinator writes them to OUTPUT/adapters/<job id>/.
  std::vector<std::pair<std::string, std::string>> files;
  std::string checkpoint;           // preempted: the trainer state to resume from
};

// What an executor gets besides the job: a stop flag it polls between steps
// (set when the worker is preempted, the job is cancelled or its lease is
// lost), whether the stop is a preemption (then the executor returns the
// checkpoint), and a progress sink.
struct JobContext {
  const std::atomic<bool>* stop = nullptr;
  const std::atomic<bool>* preempt = nullptr;
  // Set when the coordinator stops the job early (early termination): the
  // executor ends it at its next step as stopped, with its best prompt so far
  // as the adapter and a test evaluation, as if it had finished.
  const std::atomic<bool>* terminate = nullptr;
  std::function<void(const JobProgress&)> progress;
  // Worker overrides of job settings: device (cuda:1) and threads, when set.
  std::string device;
  int64_t threads = 0;
};

// Runs one job to its outcome. Never throws for a job's own errors (bad
// model path, bad data): those are a failed outcome with the message.
using JobExecutor = std::function<JobOutcome(const JobSpec& job, const JobContext& context)>;

}  // namespace promptsweep
