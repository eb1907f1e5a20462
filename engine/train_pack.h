// Multi-job packing: several prompt-tuning jobs on one frozen model trained
// in lockstep, sharing the model's forward and backward pass. Each step every
// job draws its own batch exactly as it would alone (its seed, its data
// order, its batch size and accumulation), the rows of all jobs go through
// one forward/backward with per-row prompts (engine/soft_prompt.h), each
// job's loss is normalised on its own target tokens, and each job's optimizer
// steps its own prompt. Jobs that evaluate at the same step on the same dev
// set are scored in one pass with per-row prompts too. Everything else
// (schedule, clipping, divergence, early stopping, checkpoints, the stop
// flag, progress) is the job's own PromptTrainer logic, so a packed job's
// result equals the job trained alone up to float rounding.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "engine/causal_lm.h"
#include "engine/trainer.h"

namespace promptsweep {

// One pack, driven by one thread. Trainers join and leave between steps
// (continuous packing).
// Thread safety: none; one thread calls every method.
class TrainPack {
 public:
  explicit TrainPack(std::shared_ptr<const CausalLM> model);

  // Adds `trainer` (not owned; it must train on this pack's model, alone:
  // collective of size 1) with its hooks; its run starts at the next Step.
  // Returns its slot id.
  int64_t Add(PromptTrainer* trainer, RunHooks hooks);

  struct Finished {
    int64_t slot = 0;
    TrainResult result;
  };
  // One optimizer step of every member; returns the members whose runs ended
  // in this step (done, early-stopped, diverged, stopped, failed), which
  // leave the pack. An error in the shared forward/backward fails every
  // member of that step with its message.
  std::vector<Finished> Step();

  int64_t size() const { return static_cast<int64_t>(members_.size()); }
  bool empty() const { return members_.empty(); }

 private:
  struct Member {
    int64_t slot = 0;
    PromptTrainer* trainer = nullptr;
    RunHooks hooks;
  };
  // The forward/backward of every micro-batch of `stepping`; adds each
  // member's summed target loss and real tokens.
  void ForwardBackward(const std::vector<Member*>& stepping, std::vector<double>& loss_sums,
                       std::vector<int64_t>& real_tokens);
  // Evaluates `due` (grouped by dev set) and applies the results; sets
  // failed[i] (and fails the member) when its evaluation threw.
  void EvaluateDue(const std::vector<Member*>& due, std::vector<bool>& failed);

  std::shared_ptr<const CausalLM> model_;
  std::vector<Member> members_;
  int64_t next_slot_ = 0;
};

// A thread that trains the jobs handed to it in one TrainPack: Train blocks
// the calling thread until that job's run ends, while the runner's thread
// steps it together with every other job handed in meanwhile. What a worker
// with `--pack K` uses: its K lease slots call Train concurrently.
// Thread safety: Train may be called from many threads at once.
class PackRunner {
 public:
  explicit PackRunner(std::shared_ptr<const CausalLM> model);
  ~PackRunner();  // waits for the running jobs to end (their stop flags are the callers')
  PackRunner(const PackRunner&) = delete;
  PackRunner& operator=(const PackRunner&) = delete;

  // Trains `trainer` (on this runner's model, alone) as PromptTrainer::Run
  // would, packed with the other jobs running now.
  TrainResult Train(PromptTrainer& trainer, const RunHooks& hooks);

  // Jobs in the pack now plus those waiting to join (statistics, tests).
  int64_t active() const;
  // The most jobs ever trained in one step (tests, benchmarks).
  int64_t max_pack_size() const;

 private:
  struct Request;
  void Loop();

  std::shared_ptr<const CausalLM> model_;
  mutable std::mutex mutex_;
  std::condition_variable work_;
  std::deque<std::shared_ptr<Request>> incoming_;
  int64_t active_ = 0;
  int64_t max_pack_size_ = 0;
  bool shutdown_ = false;
  std::thread thread_;
};

}  // namespace promptsweep
