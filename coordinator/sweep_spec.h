// The sweep YAML: one reader that parses and validates a sweep file once into
// typed structs and expands it into jobs (README "Sweep YAML reference").
// Nothing else parses sweep files; nothing downstream sees YAML.
//
// Torch-free, so the coordinator can use it: what the trainer accepts is
// injected through SweepSchema (option names, defaults, value checks).
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "common/early_termination.h"
#include "common/job.h"  // SettingList

namespace promptsweep {

// Everything one job runs with: the keys of a `promptsweep train --config` job
// file, except `output`. Relative paths are already absolute.
struct JobSettings {
  SettingList values;      // model, tokenizer, device, dtype, task, template, max_length, train, dev, test, options
  SettingList verbalizer;  // label -> words, in label order (classification)
};

// What the reader knows about the trainer and the job file, injected.
struct SweepSchema {
  // Trainer option names (keys of `train:` and of `parameters:`), in the
  // order job files list them. '-' and '_' are the same.
  std::vector<std::string> trainer_options;
  // Default values of job-file keys (trainer options and model/task keys such
  // as device, dtype, task, max_length): a job lists every setting, so a
  // default spelled out or left out gives the same job id.
  SettingList defaults;
  // Throws Error when `value` is not valid for job-file key `name` on its own
  // (e.g. num_virtual_tokens 0). Called once per distinct (name, value).
  std::function<void(const std::string& name, const std::string& value)> check_value;
  // Optional: throws Error when a job's settings do not go together (e.g.
  // init TEXT without init_text). Called once per job.
  std::function<void(const JobSettings& settings)> check_job;
};

enum class SweepMethod { kGrid, kRandom };
enum class MetricGoal { kMaximize, kMinimize };

struct SweepMetric {
  std::string name;  // accuracy | exact_match | loss
  MetricGoal goal = MetricGoal::kMaximize;
};

// How a parameter's values are chosen.
enum class Distribution { kCategorical, kUniform, kLogUniformValues, kIntUniform, kQUniform };

// One value of a categorical parameter: one setting (a scalar value), or
// several at once (a mapping value) named by `label`.
struct ParameterValue {
  std::string label;     // a scalar's text; a mapping's `label` (default: "k=v,k=v")
  SettingList settings;  // trainer option -> value text
};

struct SweepParameter {
  std::string name;  // the key under `parameters:` (a trainer option unless the values are mappings)
  Distribution distribution = Distribution::kCategorical;
  std::vector<ParameterValue> values;  // kCategorical
  double min = 0.0;                    // the ranges (random search)
  double max = 0.0;
  double q = 1.0;                      // kQUniform
  std::string where;                   // file:line:col of the key, for messages
};

struct SweepJob {
  std::string id;         // 16 hex digits: SHA-256 of the canonical settings
  JobSettings settings;   // every setting (defaults filled in), no output
  SettingList swept;      // parameter name -> value text (or label), YAML order
  uint64_t seed = 0;
};

// A validated sweep and its jobs. Reading succeeds only when every job is valid.
struct Sweep {
  std::string path;  // the sweep file, absolute
  std::string name;
  SweepMethod method = SweepMethod::kGrid;
  SweepMetric metric;
  int64_t run_cap = 0;
  uint64_t sample_seed = 0;
  std::vector<uint64_t> seeds;  // empty when `seed` is a parameter
  // `early_terminate` (common/early_termination.h); type kNone when absent.
  // Decisions compare the dev metric the jobs report, which the reader checks
  // is the sweep's metric.
  EarlyTermination early_terminate;
  JobSettings fixed;            // model, task and train settings shared by every job
  std::vector<SweepParameter> parameters;  // swept ones (`value:` constants are in `fixed`)
  std::vector<SweepJob> jobs;
  int64_t uncapped_jobs = 0;  // grid: jobs before run_cap
  std::vector<std::string> warnings;
};

// Reads, validates and expands a sweep file. Error (file:line:col, what to do)
// for the first problem, in the sweep file or its task file.
Sweep ReadSweep(const std::string& path, const SweepSchema& schema);
// The same for text; `path` names it in messages and anchors relative paths.
Sweep ParseSweep(const std::string& text, const std::string& path, const SweepSchema& schema);

// First 16 hex digits of the SHA-256 of the canonical JSON of `settings`.
std::string JobId(const JobSettings& settings);

// "48 jobs: 1 learning_rate × 4 num_virtual_tokens × 4 init × 3 seeds"
std::string SweepSummary(const Sweep& sweep);

}  // namespace promptsweep
