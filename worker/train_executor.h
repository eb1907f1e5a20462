// Runs train jobs on a worker (the JobExecutor of common/job.h for kind
// "train"): a job's settings applied like a `train --config` job file, the
// frozen model and the tokenized data taken from caches that live as long as
// the executor, the job run exactly as `promptsweep train` runs it
// (TrainJob), the output directory turned into a JobOutcome.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "common/job.h"
#include "engine/collective.h"
#include "worker/model_cache.h"
#include "engine/train_pack.h"
#include "engine/trainer.h"

namespace promptsweep {

// Thread safety: Run may be called from several threads at once (the caches
// are thread-safe, each job has its own directory) unless Options::collective
// is set. LibTorch's CPU thread count is per process, so concurrent jobs
// share the last `threads` set.
class TrainJobExecutor {
 public:
  struct Options {
    // Memory for cached frozen models (ModelCache); 0: unlimited. A worker
    // normally passes DefaultModelMemoryBudget() (75% of RAM).
    int64_t memory_budget_bytes = 0;
    // Each run writes its outputs to work_dir/<job id>-<attempt>/, removed
    // when the run ends (the outcome carries the files). Empty: the system's
    // temporary directory / "promptsweep-jobs".
    std::string work_dir;
    // The ranks every job trains on (an MPI worker group; not owned, outlives
    // the executor). Null: each job alone. With a group, every rank runs the
    // same jobs in the same order, each with its own work_dir, and only rank
    // 0's outcome carries the result files and the preemption checkpoint.
    Collective* collective = nullptr;
    // Groups: the ranks compare prompt checksums every this many steps
    // (TrainerConfig::verify_every; 0: never).
    int64_t verify_every = TrainerConfig{}.verify_every;
    // Multi-job packing (`worker --pack K`): > 1 trains the jobs that Run is
    // called with concurrently (up to K lease slots) in one PackRunner per
    // loaded model, in lockstep, sharing each step's forward/backward and
    // their evaluations. 1: each job alone. Not with `collective`.
    int64_t pack = 1;
  };

  // Counters of the caches (tests, worker statistics).
  struct Stats {
    int64_t model_loads = 0;  // models loaded (cache misses)
    int64_t data_loads = 0;   // data files tokenized (cache misses)
  };

  explicit TrainJobExecutor(Options options);
  TrainJobExecutor(const TrainJobExecutor&) = delete;
  TrainJobExecutor& operator=(const TrainJobExecutor&) = delete;

  // Runs `job` to its outcome; never throws. Settings (`where` "job <id>")
  // are applied to the train defaults; context.device / context.threads
  // override the job's when set; job.checkpoint resumes a preempted run.
  // Outcomes: succeeded / diverged with the metrics, history and result
  // files; cancelled (stop set), with the trainer state in `checkpoint` when
  // *context.preempt; failed with retryable = false for the job's own errors
  // (promptsweep::Error: bad setting, model path, data), retryable = true for
  // this worker's (IoError of its disk, InternalError, out of memory, LibTorch
  // errors), which may go well on another worker.
  JobOutcome Run(const JobSpec& job, const JobContext& context);

  // ModelKey (common/job.h) of every model loaded now, most recently used
  // first: what the coordinator prefers to send this worker.
  std::vector<std::string> LoadedModels() const;

  Stats stats() const;

 private:
  // Run without the error mapping; `dir` is the run's directory.
  JobOutcome RunJob(const JobSpec& job, const JobContext& context, const std::string& dir);

  // The pack of `model` (made on first use, dropped when its last job ends,
  // so an evicted model is not kept alive by an idle pack).
  PackRunner* AcquirePack(const std::shared_ptr<const CausalLM>& model);
  void ReleasePack(const CausalLM* model);

  const Options options_;
  ModelCache models_;
  TaskDataCache data_;
  struct Pack {
    std::unique_ptr<PackRunner> runner;
    int64_t jobs = 0;
  };
  std::mutex packs_mutex_;
  std::map<const CausalLM*, Pack> packs_;
};

}  // namespace promptsweep
