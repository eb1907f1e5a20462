// One prompt-tuning job as `promptsweep train` runs it, for the CLI and for
// workers (TrainJobExecutor) alike: its settings (the flags and job-file keys
// of `train`), and TrainJob, which trains on an already loaded model and
// writes the output directory (PEFT adapter, metrics.csv, result.json).
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "engine/job_settings.h"
#include "common/task_data.h"
#include "common/tokenizer.h"
#include "engine/causal_lm.h"
#include "engine/collective.h"
#include "engine/train_pack.h"
#include "engine/trainer.h"

namespace promptsweep {

// The tokenized data of a job; dev and test are null when not given.
struct TrainJobData {
  std::shared_ptr<const TaskData> train;
  std::shared_ptr<const TaskData> dev;
  std::shared_ptr<const TaskData> test;
};
// Reads one data file of the job (e.g. through a TaskDataCache).
using TaskDataLoader = std::function<std::shared_ptr<const TaskData>(const std::string& path)>;
// The job's train file, and its dev and test files when given, through `load`.
TrainJobData LoadTrainJobData(const TrainJobArgs& args, const TaskDataLoader& load);

struct TrainJobHooks {
  // Checked between optimizer steps; set: the run ends as cancelled.
  const std::atomic<bool>* stop = nullptr;
  // Likewise; set: the run ends as stopped (early termination), written as a finished one.
  const std::atomic<bool>* terminate = nullptr;
  // After every optimizer step (TrainProgress::log_line marks the loggable ones).
  std::function<void(const TrainProgress&)> progress;
  // Train in this pack (on the job's model, with the other jobs running in it
  // now) instead of alone; null: alone. Not with a collective of ranks.
  PackRunner* pack = nullptr;
};

struct TrainJobResult {
  TrainResult result;
  nlohmann::json json;          // what result.json holds
  std::string checkpoint_path;  // cancelled: the trainer state to resume from (output/checkpoint.safetensors)
};

// One train job on a loaded frozen model. The constructor prepares
// everything that can fail on the job's own input (task spec, data, resume
// state, output directory), so Run only trains and writes.
// Thread safety: none; one thread drives one job (the model may be shared).
class TrainJob {
 public:
  // `data`: already tokenized data for args.task (e.g. cached); when absent
  // the job's files are read and tokenized here. `collective`: the ranks the
  // job trains on (not owned; null: alone); every rank constructs and runs
  // the same job, and only rank 0 writes the output files. Error for bad
  // settings or data, a checkpoint of another job, or an output directory
  // that cannot be made.
  TrainJob(TrainJobArgs args, std::shared_ptr<const CausalLM> model, const Tokenizer& tokenizer,
           std::optional<TrainJobData> data = std::nullopt, Collective* collective = nullptr);
  ~TrainJob();
  TrainJob(const TrainJob&) = delete;
  TrainJob& operator=(const TrainJob&) = delete;

  // Trains until done, diverged, failed or stopped, then writes into the
  // output directory (rank 0 only): the PEFT adapter of the best prompt
  // (succeeded only), metrics.csv and result.json, and
  // checkpoint.safetensors when cancelled.
  TrainJobResult Run(const TrainJobHooks& hooks);

  // The dev metric in use (progress lines, JobProgress).
  EvalMetric metric() const { return trainer_->metric(); }
  const TrainJobArgs& args() const { return args_; }

 private:
  const TrainJobArgs args_;
  std::shared_ptr<const CausalLM> model_;
  TrainJobData data_;             // outlives trainer_, which points into it
  LocalCollective alone_;         // likewise
  Collective& collective_;        // alone_ or the caller's group
  std::unique_ptr<PromptTrainer> trainer_;
};

}  // namespace promptsweep
