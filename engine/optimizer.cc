#include "engine/optimizer.h"

#include <algorithm>
#include <cctype>
#include <cmath>

#include "common/error.h"

namespace promptsweep {
namespace {

std::string Lower(std::string text) {
  std::transform(text.begin(), text.end(), text.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return text;
}

void CheckParameter(const torch::Tensor& param, const torch::Tensor& grad) {
  PS_CHECK(param.dim() == 2 && param.scalar_type() == torch::kFloat32, "the prompt must be 2-D float32, got ",
           param.sizes(), " ", c10::toString(param.scalar_type()));
  PS_CHECK(grad.sizes() == param.sizes(), "gradient shape ", grad.sizes(), " != parameter shape ", param.sizes());
}

// The tensor `name` of `tensors`, checked against `shape`.
torch::Tensor StateTensor(const std::map<std::string, torch::Tensor>& tensors, const std::string& name,
                          c10::IntArrayRef shape) {
  const auto it = tensors.find(name);
  if (it == tensors.end()) throw Error(StrCat("optimizer state: tensor '", name, "' is missing"));
  if (it->second.sizes() != shape || it->second.scalar_type() != torch::kFloat32) {
    throw Error(StrCat("optimizer state: tensor '", name, "' is ", it->second.sizes(), " ",
                       c10::toString(it->second.scalar_type()), ", expected ", shape, " Float"));
  }
  return it->second.clone();
}

// torch.optim.AdamW, single-tensor path (same operation order, so the same floats).
class AdamW final : public PromptOptimizer {
 public:
  explicit AdamW(const OptimizerConfig& config) : config_(config) {}

  void Step(torch::Tensor& param, const torch::Tensor& grad, double lr) override {
    CheckParameter(param, grad);
    torch::NoGradGuard no_grad;
    if (!exp_avg_.defined()) {
      exp_avg_ = torch::zeros_like(param);
      exp_avg_sq_ = torch::zeros_like(param);
    }
    ++step_;
    param.mul_(1.0 - lr * config_.weight_decay);
    exp_avg_.mul_(config_.beta1).add_(grad, 1.0 - config_.beta1);
    exp_avg_sq_.mul_(config_.beta2).addcmul_(grad, grad, 1.0 - config_.beta2);
    const double bias_correction1 = 1.0 - std::pow(config_.beta1, static_cast<double>(step_));
    const double bias_correction2 = 1.0 - std::pow(config_.beta2, static_cast<double>(step_));
    const torch::Tensor denom = (exp_avg_sq_.sqrt() / std::sqrt(bias_correction2)).add_(config_.adam_eps);
    param.addcdiv_(exp_avg_, denom, -lr / bias_correction1);
  }

  std::vector<std::pair<std::string, torch::Tensor>> StateTensors() const override {
    if (!exp_avg_.defined()) return {};
    return {{"exp_avg", exp_avg_}, {"exp_avg_sq", exp_avg_sq_}};
  }

  void LoadState(const std::map<std::string, torch::Tensor>& tensors, int64_t step,
                 const torch::Tensor& param) override {
    step_ = step;
    if (step == 0) return;
    exp_avg_ = StateTensor(tensors, "exp_avg", param.sizes()).to(param.device());
    exp_avg_sq_ = StateTensor(tensors, "exp_avg_sq", param.sizes()).to(param.device());
  }

 private:
  const OptimizerConfig config_;
  torch::Tensor exp_avg_;
  torch::Tensor exp_avg_sq_;
};

// transformers' Adafactor for a 2-D parameter with scale_parameter=False,
// relative_step=False, beta1=None: the step size is the external lr, the
// second moment is factored into row and column averages.
class Adafactor final : public PromptOptimizer {
 public:
  explicit Adafactor(const OptimizerConfig& config) : config_(config) {}

  void Step(torch::Tensor& param, const torch::Tensor& grad, double lr) override {
    CheckParameter(param, grad);
    torch::NoGradGuard no_grad;
    if (!row_.defined()) {
      row_ = torch::zeros({param.size(0)}, param.options());
      col_ = torch::zeros({param.size(1)}, param.options());
    }
    ++step_;
    const double beta2t = 1.0 - std::pow(static_cast<double>(step_), config_.decay_rate);
    torch::Tensor update = grad.pow(2) + config_.eps1;
    row_.mul_(beta2t).add_(update.mean(-1), 1.0 - beta2t);
    col_.mul_(beta2t).add_(update.mean(-2), 1.0 - beta2t);
    // _approx_sq_grad: rsqrt of the rank-1 estimate row * col / mean(row).
    const torch::Tensor r_factor = (row_ / row_.mean(-1, /*keepdim=*/true)).rsqrt_().unsqueeze(-1);
    const torch::Tensor c_factor = col_.unsqueeze(-2).rsqrt();
    update = torch::mul(r_factor, c_factor);
    update.mul_(grad);
    update.div_((Rms(update) / config_.clip_threshold).clamp_(/*min=*/1.0));
    update.mul_(lr);
    if (config_.weight_decay != 0) param.add_(param, -config_.weight_decay * lr);
    param.add_(-update);
  }

  std::vector<std::pair<std::string, torch::Tensor>> StateTensors() const override {
    if (!row_.defined()) return {};
    return {{"exp_avg_sq_row", row_}, {"exp_avg_sq_col", col_}};
  }

  void LoadState(const std::map<std::string, torch::Tensor>& tensors, int64_t step,
                 const torch::Tensor& param) override {
    step_ = step;
    if (step == 0) return;
    row_ = StateTensor(tensors, "exp_avg_sq_row", {param.size(0)}).to(param.device());
    col_ = StateTensor(tensors, "exp_avg_sq_col", {param.size(1)}).to(param.device());
  }

 private:
  // transformers' Adafactor._rms: norm / sqrt(numel).
  static torch::Tensor Rms(const torch::Tensor& tensor) {
    return tensor.norm(2) / std::sqrt(static_cast<double>(tensor.numel()));
  }

  const OptimizerConfig config_;
  torch::Tensor row_;  // exp_avg_sq_row [N]
  torch::Tensor col_;  // exp_avg_sq_col [H]
};

}  // namespace

std::string_view OptimizerName(OptimizerKind kind) {
  return kind == OptimizerKind::kAdamW ? "adamw" : "adafactor";
}

OptimizerKind ParseOptimizerKind(const std::string& name) {
  const std::string lower = Lower(name);
  if (lower == "adamw") return OptimizerKind::kAdamW;
  if (lower == "adafactor") return OptimizerKind::kAdafactor;
  throw Error(StrCat("unknown optimizer '", name, "' (choices: adamw, adafactor)"));
}

std::unique_ptr<PromptOptimizer> MakeOptimizer(const OptimizerConfig& config) {
  if (config.kind == OptimizerKind::kAdamW) return std::make_unique<AdamW>(config);
  return std::make_unique<Adafactor>(config);
}

std::string_view ScheduleName(ScheduleKind kind) {
  switch (kind) {
    case ScheduleKind::kConstant: return "constant";
    case ScheduleKind::kLinear: return "linear";
    case ScheduleKind::kCosine: return "cosine";
  }
  return "constant";
}

ScheduleKind ParseScheduleKind(const std::string& name) {
  const std::string lower = Lower(name);
  if (lower == "constant") return ScheduleKind::kConstant;
  if (lower == "linear") return ScheduleKind::kLinear;
  if (lower == "cosine") return ScheduleKind::kCosine;
  throw Error(StrCat("unknown schedule '", name, "' (choices: constant, linear, cosine)"));
}

double LearningRateSchedule::Factor(int64_t step) const {
  if (step < warmup_steps) {
    return static_cast<double>(step) / static_cast<double>(std::max<int64_t>(1, warmup_steps));
  }
  const double decay_steps = static_cast<double>(std::max<int64_t>(1, total_steps - warmup_steps));
  switch (kind) {
    case ScheduleKind::kConstant: return 1.0;
    case ScheduleKind::kLinear:
      return std::max(0.0, static_cast<double>(total_steps - step) / decay_steps);
    case ScheduleKind::kCosine: {
      const double progress = static_cast<double>(step - warmup_steps) / decay_steps;
      return std::max(0.0, 0.5 * (1.0 + std::cos(M_PI * progress)));
    }
  }
  return 1.0;
}

}  // namespace promptsweep
