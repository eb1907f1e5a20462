// Optimizers and learning-rate schedules for the one parameter prompt tuning
// trains: the float32 soft prompt [N, H]. Frozen weights never reach here, so
// they can have no optimizer state.
//   AdamW:     torch.optim.AdamW (decoupled weight decay, bias correction).
//   Adafactor: transformers.optimization.Adafactor with scale_parameter=False,
//              relative_step=False, warmup_init=False, beta1=None (factored
//              second moment, update clipping) — Lester et al.'s optimizer.
//   Schedules: transformers' get_{constant,linear,cosine}_schedule_with_warmup.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <torch/torch.h>

namespace promptsweep {

enum class OptimizerKind { kAdamW, kAdafactor };

std::string_view OptimizerName(OptimizerKind kind);  // "adamw", "adafactor"
OptimizerKind ParseOptimizerKind(const std::string& name);  // Error lists the choices

struct OptimizerConfig {
  OptimizerKind kind = OptimizerKind::kAdafactor;
  double weight_decay = 1e-5;
  // AdamW.
  double beta1 = 0.9;
  double beta2 = 0.999;
  double adam_eps = 1e-8;
  // Adafactor: beta2_t = 1 - t^decay_rate; eps = (eps1, eps2) as in transformers
  // (eps2 only matters with scale_parameter, which is off, and is kept for the record).
  double decay_rate = -0.8;
  double clip_threshold = 1.0;
  double eps1 = 1e-30;
  double eps2 = 1e-3;
};

// Updates one float32 parameter in place, step after step. State is exposed
// as named tensors plus the step count so a checkpoint can hold it.
// Thread safety: none; one optimizer per training job.
class PromptOptimizer {
 public:
  virtual ~PromptOptimizer() = default;

  // One update of `param` (2-D float32, updated in place without autograd)
  // from `grad` (same shape) with this step's learning rate `lr`.
  virtual void Step(torch::Tensor& param, const torch::Tensor& grad, double lr) = 0;

  // Number of Step calls so far.
  int64_t step() const { return step_; }

  // State tensors by name (empty before the first Step).
  virtual std::vector<std::pair<std::string, torch::Tensor>> StateTensors() const = 0;

  // Restores StateTensors() and step(). `param` gives the shapes to check;
  // Error names a missing or mis-shaped tensor.
  virtual void LoadState(const std::map<std::string, torch::Tensor>& tensors, int64_t step,
                         const torch::Tensor& param) = 0;

 protected:
  int64_t step_ = 0;
};

std::unique_ptr<PromptOptimizer> MakeOptimizer(const OptimizerConfig& config);

enum class ScheduleKind { kConstant, kLinear, kCosine };

std::string_view ScheduleName(ScheduleKind kind);  // "constant", "linear", "cosine"
ScheduleKind ParseScheduleKind(const std::string& name);

// Multiplier of the base learning rate at optimizer step `step` (0-based: the
// first update uses Factor(0)), as transformers' LambdaLR schedules:
//   step < warmup:  step / max(1, warmup)        (so the first step has lr 0 when warmup > 0)
//   constant:       1
//   linear:         max(0, (total - step) / max(1, total - warmup))
//   cosine:         max(0, 0.5 * (1 + cos(pi * progress))), progress = (step - warmup) / max(1, total - warmup)
struct LearningRateSchedule {
  ScheduleKind kind = ScheduleKind::kConstant;
  int64_t warmup_steps = 0;
  int64_t total_steps = 1;

  double Factor(int64_t step) const;
};

}  // namespace promptsweep
