// Training one soft prompt on a frozen causal LM: one job of a sweep.
//
// Loss: mean cross-entropy over the target tokens of an optimizer step
// (float32), logits computed only at target positions (TargetLogits). Data:
// a seeded shuffle per epoch; each optimizer step takes batch_size ×
// gradient_accumulation_steps examples, split over the ranks of a Collective
// as worker/collective.h describes. Evaluation on dev every eval_every steps:
// loss per target token and accuracy by rank classification (classification)
// or exact match of greedy generation (generation); early stopping keeps the
// best prompt. NaN/Inf in the loss or gradient ends the job as `diverged`.
// Checkpoints hold everything a resumed run needs to reproduce the
// uninterrupted one bit for bit.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json_fwd.hpp>
#include <torch/torch.h>

#include "common/format.h"  // FormatDuration
#include "common/task_data.h"
#include "common/tokenizer.h"
#include "engine/causal_lm.h"
#include "engine/collective.h"
#include "engine/optimizer.h"
#include "engine/soft_prompt.h"

namespace promptsweep {

// The dev metric that drives early stopping and "best". kAuto: accuracy for
// classification, exact_match for generation.
enum class EvalMetric { kAuto, kLoss, kAccuracy, kExactMatch };
std::string_view EvalMetricName(EvalMetric metric);  // "auto", "loss", "accuracy", "exact_match"
EvalMetric ParseEvalMetric(const std::string& name);

struct TrainerConfig {
  // Soft prompt (PEFT's PromptTuningConfig). SAMPLE_VOCAB by default: RANDOM
  // trains poorly (peft#2816).
  SoftPromptConfig prompt{/*num_virtual_tokens=*/20, PromptInit::kSampleVocab, ""};
  // Optimisation; defaults are Lester et al.'s: Adafactor, lr 0.3 constant, weight decay 1e-5.
  OptimizerConfig optimizer;
  double learning_rate = 0.3;
  ScheduleKind schedule = ScheduleKind::kConstant;
  int64_t warmup_steps = 0;
  int64_t max_steps = 1000;
  // Examples per forward pass over all ranks; an optimizer step sees
  // batch_size × gradient_accumulation_steps examples (as transformers' Trainer).
  int64_t batch_size = 8;
  int64_t gradient_accumulation_steps = 1;
  // Clip the prompt gradient's L2 norm (torch clip_grad_norm_); 0 = off.
  // Off by default: Adafactor clips its own update.
  double max_grad_norm = 0.0;
  // Evaluation: every eval_every optimizer steps (0: only at the end).
  int64_t eval_every = 100;
  int64_t eval_batch_size = 0;  // 0: batch_size
  // Stop after this many evaluations in a row without a better dev metric (0: never).
  int64_t early_stopping_patience = 0;
  EvalMetric eval_metric = EvalMetric::kAuto;
  uint64_t seed = 42;
  // A progress line and a train-loss record every log_every steps.
  int64_t log_every = 10;
  // Groups of ranks (collective size > 1): every verify_every steps the ranks
  // compare checksums of their prompts and the job fails if they differ (0:
  // never). Not a TrainerOption: it is the worker's setting, not the job's,
  // and job ids hash every option (a new one would change them all).
  int64_t verify_every = 50;
};

// Throws Error naming the first invalid setting.
void ValidateTrainerConfig(const TrainerConfig& config);

// What an evaluation measured. Sums are over all ranks.
struct EvalResult {
  int64_t num_examples = 0;
  int64_t num_target_tokens = 0;
  double loss = 0.0;                  // mean cross-entropy per target token
  std::optional<double> accuracy;     // classification: rank classification
  std::optional<double> exact_match;  // generation: greedy continuation == target
  // The value of `metric` (resolved, not kAuto); Error if it was not measured.
  double Metric(EvalMetric metric) const;
};

// {"n", "num_target_tokens", "loss", "accuracy"?, "exact_match"?} (result
// files, checkpoints); a non-finite loss is written as the string "nan"/"inf".
nlohmann::json EvalResultToJson(const EvalResult& eval);
EvalResult EvalResultFromJson(const nlohmann::json& json);

struct EvalOptions {
  int64_t batch_size = 8;
  // Generation: also run greedy generation for exact match (costly).
  bool exact_match = true;
  // Generation stops at these ids (the model's eos).
  std::vector<int64_t> stop_ids;
  // Classification: score one row per (example, label), the whole input run
  // once per label. The reference path, for tests and the benchmark; the
  // default shares each example's input among its labels (same figures).
  bool per_label_rows = false;
};

// Evaluates `prompt` ([N, H] float32; undefined for the bare model) on
// `data`, sharded over `collective`; options.batch_size examples per batch.
// Classification (data.label_ids not empty): every label's words are scored
// by summed log-probability after the input; the argmax is the prediction;
// the loss is the true label's. One forward per example batch: with
// single-token labels all labels come from the logits at each example's last
// input position; longer labels continue from the input's KV cache in one
// more batched forward over every label's remaining tokens.
// Generation: loss over the target tokens, and exact match of the greedy
// continuation with the reference text (whitespace-trimmed). A target that
// ends in a stop id (eos) must be reproduced and then stopped; without one, a
// prefix of the continuation (in tokens) that decodes to the reference counts.
EvalResult EvaluatePrompt(const CausalLM& model, const Tokenizer& tokenizer, const torch::Tensor& prompt,
                          const TaskData& data, const EvalOptions& options, Collective& collective);

// EvaluatePrompt for several prompts at once (adapters of a sweep, jobs of a
// pack): the rows of each batch are (example, prompt) pairs with per-row
// prompts (engine/soft_prompt.h), options.batch_size rows per forward, so
// the examples' token embeddings and the model's weights are shared by all
// prompts. results[p] equals EvaluatePrompt of prompts[p] up to float
// rounding (a prompt may be undefined: the bare model).
std::vector<EvalResult> EvaluatePrompts(const CausalLM& model, const Tokenizer& tokenizer,
                                        const std::vector<torch::Tensor>& prompts, const TaskData& data,
                                        const EvalOptions& options, Collective& collective);

// kStopped: ended early on request (RunHooks::terminate, a sweep's early
// termination): like kSucceeded (best prompt, test evaluation), short of max_steps.
enum class TrainStatus { kSucceeded, kDiverged, kFailed, kCancelled, kStopped };
std::string_view TrainStatusName(TrainStatus status);  // "succeeded", ...

// One row of the metrics log (long format: step, split, metric, value).
struct MetricRecord {
  int64_t step = 0;
  std::string split;   // "train", "dev", "test"
  std::string metric;  // "loss", "lr", "accuracy", "exact_match", "tokens_per_second"
  double value = 0.0;
};

// Sent to the progress callback after every optimizer step.
struct TrainProgress {
  int64_t step = 0;  // optimizer steps done
  int64_t max_steps = 0;
  double train_loss = 0.0;  // this step's mean loss per target token
  double learning_rate = 0.0;
  double tokens_per_second = 0.0;  // real (non-virtual) tokens, all ranks, training time only
  double eta_seconds = 0.0;
  std::optional<EvalResult> dev;  // set when this step ran an evaluation
  std::optional<double> best_metric;
  bool log_line = false;  // true every log_every steps and at evaluations
};


// "step 120/1000 | loss 0.4123 | lr 3.00e-01 | 1,234 tok/s | ETA 1m23s" (+ dev figures).
std::string FormatProgressLine(const TrainProgress& progress, EvalMetric metric);

struct TrainResult {
  TrainStatus status = TrainStatus::kSucceeded;
  std::string message;        // why it diverged, failed or was cancelled
  bool early_stopped = false;
  int64_t steps = 0;
  EvalMetric metric = EvalMetric::kLoss;  // resolved
  std::optional<EvalResult> final_dev;    // last evaluation of the final prompt
  std::optional<EvalResult> best_dev;
  int64_t best_step = 0;
  std::optional<EvalResult> test;         // of the best prompt
  double final_train_loss = 0.0;          // mean of the last log_every steps
  double tokens_per_second = 0.0;
  double wall_seconds = 0.0;              // this Run call
  torch::Tensor best_prompt;              // [N, H] float32 CPU: best dev metric, else final
  torch::Tensor final_prompt;
  std::vector<MetricRecord> history;      // across resumes
};

struct TrainerData {
  const TaskData* train = nullptr;  // required
  const TaskData* dev = nullptr;    // optional: no evaluation, best = final
  const TaskData* test = nullptr;   // optional: evaluated once with the best prompt
};

struct RunHooks {
  // Checked between optimizer steps; true -> status cancelled (state kept, so
  // SaveState then a later LoadState + Run continues). In a group of ranks
  // the ranks agree every step: a stop on any rank stops all at that step.
  const std::atomic<bool>* stop = nullptr;
  // Checked with `stop`; true -> the run ends there as stopped (early
  // termination): the best prompt so far is the result and test is evaluated,
  // as when the run finishes. Wins over `stop`: the job is over either way.
  const std::atomic<bool>* terminate = nullptr;
  std::function<void(const TrainProgress&)> progress;
  // Rank 0 writes a checkpoint every checkpoint_every steps (0: never).
  std::string checkpoint_path;
  int64_t checkpoint_every = 0;
};

// One prompt-tuning job. The model is shared read-only (several trainers may
// use it at once); `data` and `collective` must outlive the trainer.
// Thread safety: none; one thread drives one trainer.
class PromptTrainer {
 public:
  PromptTrainer(std::shared_ptr<const CausalLM> model, const Tokenizer& tokenizer, TrainerConfig config,
                TrainerData data, Collective& collective);
  ~PromptTrainer();

  // Trains until max_steps, early stopping, divergence, the stop flag or an
  // error (status failed). May be called again after a cancel or LoadState.
  TrainResult Run(const RunHooks& hooks = {});

  // Everything a resumed run needs (prompt, optimizer state, step, data
  // order, best so far, metrics log) in one safetensors file with the rest as
  // JSON metadata, written atomically.
  void SaveState(const std::string& path) const;
  // Restores SaveState's file; Error (trainer unchanged) if the file is not a
  // checkpoint or belongs to another job's settings.
  void LoadState(const std::string& path);

  // Starts from `prompt` ([N, H], e.g. an existing adapter's) instead of the
  // configured initialisation; only before the first step.
  void SetInitialPrompt(const torch::Tensor& prompt);

  const torch::Tensor& prompt() const { return prompt_; }
  int64_t step() const { return step_; }
  const PromptOptimizer& optimizer() const { return *optimizer_; }
  const TrainerConfig& config() const { return config_; }
  const Tokenizer& tokenizer() const { return tokenizer_; }
  // The dev metric in use (kAuto resolved by the task kind).
  EvalMetric metric() const { return metric_; }

  // ---- Stepwise: Run in pieces, so TrainPack (engine/train_pack.h) can
  // interleave several trainers and share their forward/backward. Run is:
  //   BeginRun(); while (BeginStep(hooks)) { forward/backward of plan();
  //   if (!EndStep(...)) break; if (DevDue()) ApplyDev(eval); AfterStep(hooks); }
  //   EndRun()   (an exception anywhere: FailRun(what), then EndRun).
  // The examples of one optimizer step on this rank.
  struct StepPlan {
    // This rank's shard of each of gradient_accumulation_steps micro-batches.
    std::vector<std::vector<const Example*>> micro_batches;
    // Target tokens of the whole step (every rank): the mean loss's denominator.
    int64_t target_tokens = 0;
  };
  void BeginRun();
  // Whether another step runs: false once the run is over (max_steps, early
  // stopping, an earlier EndStep's divergence) or the stop flag cancelled it.
  // True: plan() holds the step's examples and the prompt's gradient is cleared.
  bool BeginStep(const RunHooks& hooks);
  const StepPlan& plan() const { return plan_; }
  // Called once the gradient of every micro-batch's summed target loss,
  // divided by plan().target_tokens, is in prompt().grad(); `loss_sum` and
  // `real_tokens` are this rank's summed loss and real tokens. All-reduces,
  // clips and steps the optimizer, then records the step. False: the run
  // ended (diverged, ranks out of step).
  bool EndStep(double loss_sum, int64_t real_tokens);
  // Whether the step just ended evaluates on dev(); then ApplyDev with the result.
  bool DevDue() const;
  const TaskData* dev() const { return data_.dev; }
  // The options Run evaluates with (eval batch size, exact match, stop ids).
  EvalOptions DevOptions() const;
  void ApplyDev(const EvalResult& dev);
  // The step's progress callback and checkpoint.
  void AfterStep(const RunHooks& hooks);
  // Whether the run is over without another BeginStep: max_steps reached,
  // early-stopped, terminated, diverged or failed (a stop request shows at BeginStep).
  bool RunOver() const {
    return run_.result.status != TrainStatus::kSucceeded || early_stopped_ || terminated_ ||
           step_ >= config_.max_steps;
  }
  // The run failed: an error escaped a step.
  void FailRun(const std::string& message);
  // The test evaluation (succeeded runs) and the run's result.
  TrainResult EndRun();

 private:
  // Next example of the seeded, per-epoch shuffled order of the train set.
  const Example* NextExample();
  void Shuffle();
  // Draws plan_: the next step's examples.
  void PlanStep();
  // The optimizer step on the accumulated gradient; false (with *why) when
  // the loss, the gradient or the new prompt is not finite.
  bool ApplyStep(double local_loss_sum, int64_t local_tokens, double* loss, int64_t* tokens, std::string* why);
  // The settings a checkpoint records and LoadState checks ("job" in its metadata).
  std::vector<std::pair<std::string, nlohmann::json>> StateFingerprint() const;
  void Record(const std::string& split, const std::string& metric, double value);
  void RecordEval(const std::string& split, const EvalResult& eval);
  EvalResult Evaluate(const TaskData& data, const torch::Tensor& prompt);
  // Whether `value` beats the best so far under metric_.
  bool Improves(double value) const;
  // Whether any rank's `stop` / `terminate` is set (no communication for a
  // group of one): {stop, terminate}.
  std::pair<bool, bool> StopRequested(const std::atomic<bool>* stop, const std::atomic<bool>* terminate);
  // Why the ranks' prompts differ (the first rank whose prompt checksum is not
  // rank 0's), or nothing when they are identical. Every rank gets the same answer.
  std::optional<std::string> PromptMismatch();

  std::shared_ptr<const CausalLM> model_;
  const Tokenizer& tokenizer_;
  const TrainerConfig config_;
  const TrainerData data_;
  Collective& collective_;
  EvalMetric metric_;  // resolved
  LearningRateSchedule schedule_;
  std::unique_ptr<PromptOptimizer> optimizer_;

  torch::Tensor prompt_;  // [N, H] float32 leaf, requires_grad
  int64_t step_ = 0;
  // Data order: epoch's permutation of the train set and the position in it.
  int64_t epoch_ = 0;
  int64_t cursor_ = 0;
  std::vector<int64_t> order_;
  // Best so far.
  std::optional<double> best_metric_;
  std::optional<EvalResult> best_dev_;
  std::optional<EvalResult> last_dev_;
  int64_t best_step_ = 0;
  torch::Tensor best_prompt_;
  int64_t evals_without_improvement_ = 0;
  bool early_stopped_ = false;
  bool terminated_ = false;  // RunHooks::terminate ended the run (not kept in checkpoints: it ends the job)
  // Accumulated over all runs (resumes included).
  int64_t train_tokens_ = 0;
  double train_seconds_ = 0.0;
  double recent_loss_sum_ = 0.0;  // since the last log record
  int64_t recent_loss_steps_ = 0;
  double last_logged_loss_ = 0.0;
  std::vector<MetricRecord> history_;
  // The run in progress (BeginRun .. EndRun).
  struct RunState {
    std::chrono::steady_clock::time_point start;
    std::chrono::steady_clock::time_point step_start;
    int64_t first_step = 0;
    double learning_rate = 0.0;  // of the step in progress
    TrainResult result;          // status and message so far
    TrainProgress progress;      // of the step just ended
  };
  RunState run_;
  StepPlan plan_;
};

}  // namespace promptsweep
