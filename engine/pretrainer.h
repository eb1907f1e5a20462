// Full-parameter causal-LM pretraining of a small model from scratch: how the
// project makes the pretrained base model it ships (models/), since no model
// hub can be reached. Same model code as prompt tuning, weights trainable.
//
// Data: plain-text files, documents separated by blank lines, each document
// tokenized without special tokens and preceded by the eos token (GPT-2's
// <|endoftext|> convention), all concatenated into one stream. A step takes
// batch_size windows of seq_length + 1 tokens at random offsets; the offsets
// are a pure function of (seed, step), so a resumed run sees exactly the
// batches the uninterrupted one would have.
// Optimisation: AdamW (decoupled weight decay on matrices only), linear
// warmup then cosine decay to min_lr_ratio × learning_rate, gradient clipping.
// Evaluation: perplexity over non-overlapping windows of the held-out stream.
// Checkpoints: a Hugging Face model directory (config.json,
// model.safetensors, tokenizer.json, generation_config.json) plus
// optimizer.pt and trainer_state.json for resuming.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <torch/torch.h>

#include "common/model_config.h"
#include "common/tokenizer.h"
#include "engine/causal_lm.h"

namespace promptsweep {

struct PretrainConfig {
  int64_t seq_length = 128;
  int64_t batch_size = 16;
  int64_t max_steps = 2000;
  double learning_rate = 3e-3;
  double min_lr_ratio = 0.1;
  int64_t warmup_steps = 100;
  double weight_decay = 0.1;
  double beta1 = 0.9;
  double beta2 = 0.95;
  double max_grad_norm = 1.0;
  int64_t eval_every = 250;        // 0: only at the end
  int64_t eval_max_tokens = 65536;  // held-out tokens per evaluation
  int64_t checkpoint_every = 500;  // 0: only at the end
  int64_t log_every = 10;
  uint64_t seed = 0;
  // Stored dtype of the saved weights: float32 or bfloat16.
  std::string save_dtype = "float32";
};

// Throws Error naming the first invalid setting.
void ValidatePretrainConfig(const PretrainConfig& config);

// The weights file of the checkpoint in output_dir/resume (the one Pretrainer
// resumes from). Error naming trainer_state.json when output_dir holds no
// pretraining checkpoint, or a damaged one.
std::string PretrainCheckpointWeights(const std::string& output_dir);

// Whether output_dir holds a pretraining checkpoint to resume from
// (resume/trainer_state.json exists; it may still be damaged).
bool HasPretrainCheckpoint(const std::string& output_dir);

// The model of the checkpoint in output_dir (its config.json and the resume
// weights), built with `load`, for a Pretrainer that then calls Resume().
// Error naming trainer_state.json for a damaged or missing checkpoint.
std::shared_ptr<CausalLM> LoadPretrainCheckpoint(const std::string& output_dir, const ModelLoadOptions& load);

// The token stream of a text file: documents are separated by blank lines
// (a run of lines with only whitespace); each becomes [sep] + Encode(doc).
// Error naming the file when it cannot be read or holds no text.
std::vector<int32_t> TokenizeCorpus(const std::string& path, const Tokenizer& tokenizer, int32_t separator_id);

// Mean next-token cross-entropy (nats) over non-overlapping windows of
// `window` + 1 tokens of `tokens` (at most max_tokens predicted tokens; 0 =
// all); the last partial window counts too. Perplexity = exp(loss).
struct PerplexityResult {
  double loss = 0.0;
  double perplexity = 0.0;
  int64_t tokens = 0;  // predicted tokens
};
PerplexityResult EvaluatePerplexity(const CausalLM& model, const std::vector<int32_t>& tokens, int64_t window,
                                    int64_t max_tokens = 0, int64_t batch_size = 16);

// Learning rate at optimizer step `step` (0-based): linear warmup, then cosine.
double PretrainLearningRate(const PretrainConfig& config, int64_t step);

struct PretrainProgress {
  int64_t step = 0;  // steps done
  int64_t max_steps = 0;
  double train_loss = 0.0;  // mean of the steps since the last log line
  double learning_rate = 0.0;
  double tokens_per_second = 0.0;
  double elapsed_seconds = 0.0;
  bool evaluated = false;
  PerplexityResult heldout;
  bool checkpointed = false;
};

struct PretrainHooks {
  const std::atomic<bool>* stop = nullptr;  // checked between steps: checkpoint and return
  std::function<void(const PretrainProgress&)> progress;  // every log_every steps and at evaluations
};

// Trains `model` (built with ModelLoadOptions::trainable) and writes the model
// directory to `output_dir` (created if needed) at every checkpoint and at the
// end. With `resume`, optimizer state and step come from output_dir's last
// checkpoint (the model must have been loaded from it). Returns the final
// evaluation.
class Pretrainer {
 public:
  Pretrainer(std::shared_ptr<CausalLM> model, const Tokenizer& tokenizer, std::string tokenizer_path,
             PretrainConfig config, std::vector<int32_t> train_tokens, std::vector<int32_t> heldout_tokens,
             std::string output_dir);
  ~Pretrainer();

  // Restores optimizer state and step from output_dir (Error if absent or
  // made with other settings).
  void Resume();
  PerplexityResult Run(const PretrainHooks& hooks = {});
  int64_t step() const { return step_; }

  // Writes the Hugging Face model directory (and the resume state) atomically, file by file.
  void SaveCheckpoint() const;

 private:
  torch::Tensor MakeBatch(int64_t step) const;  // [B, T + 1] int64

  std::shared_ptr<CausalLM> model_;
  const Tokenizer& tokenizer_;
  const std::string tokenizer_path_;
  const PretrainConfig config_;
  const std::vector<int32_t> train_tokens_;
  const std::vector<int32_t> heldout_tokens_;
  const std::string output_dir_;
  std::vector<torch::Tensor> params_;
  std::unique_ptr<torch::optim::AdamW> optimizer_;
  int64_t step_ = 0;
  std::vector<std::pair<int64_t, double>> heldout_history_;  // (step, perplexity)
};

// Writes config.json, model.safetensors (weights in `dtype`),
// generation_config.json and a copy of the tokenizer into `dir`.
void SaveHfModel(const CausalLM& model, const std::string& tokenizer_path, const std::string& dir,
                 torch::ScalarType dtype);

}  // namespace promptsweep
