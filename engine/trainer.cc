#include "engine/trainer.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <map>
#include <random>
#include <sstream>
#include <type_traits>
#include <utility>

#include <nlohmann/json.hpp>

#include "common/error.h"
#include "common/json_util.h"
#include "common/safetensors.h"
#include "engine/tensor_io.h"

namespace promptsweep {
namespace {

using Clock = std::chrono::steady_clock;

constexpr char kStateMetadataKey[] = "promptsweep_trainer_state";
constexpr int kStateFormatVersion = 1;

double Seconds(Clock::time_point since) {
  return std::chrono::duration<double>(Clock::now() - since).count();
}

std::string NormalizeName(std::string name) {
  std::replace(name.begin(), name.end(), '-', '_');
  return name;
}

// Doubles in the checkpoint's JSON: numbers (nlohmann writes them with
// round-trip precision), or strings for the non-finite values JSON lacks.
nlohmann::json JsonDouble(double value) {
  if (std::isfinite(value)) return value;
  return std::isnan(value) ? "nan" : (value > 0 ? "inf" : "-inf");
}

double ReadJsonDouble(const nlohmann::json& value) {
  if (value.is_number()) return value.get<double>();
  const std::string text = value.get<std::string>();
  if (text == "nan") return std::nan("");
  return text == "inf" ? HUGE_VAL : -HUGE_VAL;
}

bool IsClassification(const TaskData& data) { return !data.label_ids.empty(); }

EvalMetric ResolveMetric(EvalMetric metric, const TaskData* dev, const TaskData& train) {
  const bool classification = IsClassification(dev != nullptr ? *dev : train);
  if (metric == EvalMetric::kAuto) return classification ? EvalMetric::kAccuracy : EvalMetric::kExactMatch;
  if (metric == EvalMetric::kAccuracy && !classification) {
    throw Error("eval_metric accuracy needs a classification task (label + verbalizer); use exact_match or loss");
  }
  if (metric == EvalMetric::kExactMatch && classification) {
    throw Error("eval_metric exact_match needs a generation task; use accuracy or loss");
  }
  return metric;
}

}  // namespace

namespace {

std::string Grouped(int64_t n) {  // 1234567 -> "1,234,567"
  std::string digits = std::to_string(n);
  for (int i = static_cast<int>(digits.size()) - 3; i > 0; i -= 3) digits.insert(i, ",");
  return digits;
}

// Fisher–Yates with mt19937_64 (whose output the standard fixes) and an
// unbiased bounded draw of our own (std::uniform_int_distribution varies
// between standard libraries), so every rank and machine gets the same order.
std::vector<int64_t> EpochOrder(int64_t n, uint64_t seed, int64_t epoch) {
  std::seed_seq seq{static_cast<uint32_t>(seed), static_cast<uint32_t>(seed >> 32),
                    static_cast<uint32_t>(epoch), static_cast<uint32_t>(static_cast<uint64_t>(epoch) >> 32),
                    0x70736d70u /* "psmp" */};
  std::mt19937_64 rng(seq);
  std::vector<int64_t> order(static_cast<std::size_t>(n));
  for (int64_t i = 0; i < n; ++i) order[static_cast<std::size_t>(i)] = i;
  for (int64_t i = n - 1; i > 0; --i) {
    const uint64_t bound = static_cast<uint64_t>(i) + 1;
    const uint64_t limit = UINT64_MAX - UINT64_MAX % bound;  // reject the biased tail
    uint64_t draw = rng();
    while (draw >= limit) draw = rng();
    std::swap(order[static_cast<std::size_t>(i)], order[static_cast<std::size_t>(draw % bound)]);
  }
  return order;
}

}  // namespace

// --- Names. ---

std::string_view EvalMetricName(EvalMetric metric) {
  switch (metric) {
    case EvalMetric::kAuto: return "auto";
    case EvalMetric::kLoss: return "loss";
    case EvalMetric::kAccuracy: return "accuracy";
    case EvalMetric::kExactMatch: return "exact_match";
  }
  return "auto";
}

EvalMetric ParseEvalMetric(const std::string& name) {
  for (EvalMetric metric : {EvalMetric::kAuto, EvalMetric::kLoss, EvalMetric::kAccuracy, EvalMetric::kExactMatch}) {
    if (NormalizeName(name) == EvalMetricName(metric)) return metric;
  }
  throw Error(StrCat("unknown eval metric '", name, "' (choices: auto, loss, accuracy, exact_match)"));
}

std::string_view TrainStatusName(TrainStatus status) {
  switch (status) {
    case TrainStatus::kSucceeded: return "succeeded";
    case TrainStatus::kDiverged: return "diverged";
    case TrainStatus::kFailed: return "failed";
    case TrainStatus::kCancelled: return "cancelled";
    case TrainStatus::kStopped: return "stopped";
  }
  return "failed";
}

nlohmann::json EvalResultToJson(const EvalResult& eval) {
  nlohmann::json json = {
      {"n", eval.num_examples}, {"num_target_tokens", eval.num_target_tokens}, {"loss", JsonDouble(eval.loss)}};
  if (eval.accuracy) json["accuracy"] = *eval.accuracy;
  if (eval.exact_match) json["exact_match"] = *eval.exact_match;
  return json;
}

EvalResult EvalResultFromJson(const nlohmann::json& json) {
  EvalResult eval;
  eval.num_examples = json.at("n").get<int64_t>();
  eval.num_target_tokens = json.at("num_target_tokens").get<int64_t>();
  eval.loss = ReadJsonDouble(json.at("loss"));
  if (json.contains("accuracy")) eval.accuracy = json.at("accuracy").get<double>();
  if (json.contains("exact_match")) eval.exact_match = json.at("exact_match").get<double>();
  return eval;
}

double EvalResult::Metric(EvalMetric metric) const {
  switch (metric) {
    case EvalMetric::kLoss: return loss;
    case EvalMetric::kAccuracy:
      if (accuracy) return *accuracy;
      break;
    case EvalMetric::kExactMatch:
      if (exact_match) return *exact_match;
      break;
    case EvalMetric::kAuto: break;
  }
  throw Error(StrCat("eval metric ", EvalMetricName(metric), " was not measured"));
}

void ValidateTrainerConfig(const TrainerConfig& c) {
  auto require = [](bool ok, const std::string& what) {
    if (!ok) throw Error(StrCat("invalid trainer setting: ", what));
  };
  require(c.prompt.num_virtual_tokens >= 1, StrCat("num_virtual_tokens must be >= 1, got ", c.prompt.num_virtual_tokens));
  require(c.prompt.init != PromptInit::kText || !c.prompt.init_text.empty(), "init TEXT needs a non-empty init_text");
  require(c.learning_rate > 0, StrCat("learning_rate must be > 0, got ", c.learning_rate));
  require(c.optimizer.weight_decay >= 0, StrCat("weight_decay must be >= 0, got ", c.optimizer.weight_decay));
  require(c.optimizer.beta1 >= 0 && c.optimizer.beta1 < 1, StrCat("adam_beta1 must be in [0, 1), got ", c.optimizer.beta1));
  require(c.optimizer.beta2 >= 0 && c.optimizer.beta2 < 1, StrCat("adam_beta2 must be in [0, 1), got ", c.optimizer.beta2));
  require(c.optimizer.adam_eps > 0, StrCat("adam_epsilon must be > 0, got ", c.optimizer.adam_eps));
  require(c.optimizer.decay_rate < 0, StrCat("adafactor_decay_rate must be < 0, got ", c.optimizer.decay_rate));
  require(c.optimizer.clip_threshold > 0,
          StrCat("adafactor_clip_threshold must be > 0, got ", c.optimizer.clip_threshold));
  require(c.warmup_steps >= 0, StrCat("warmup_steps must be >= 0, got ", c.warmup_steps));
  require(c.max_steps >= 1, StrCat("max_steps must be >= 1, got ", c.max_steps));
  require(c.batch_size >= 1, StrCat("batch_size must be >= 1, got ", c.batch_size));
  require(c.gradient_accumulation_steps >= 1,
          StrCat("gradient_accumulation_steps must be >= 1, got ", c.gradient_accumulation_steps));
  require(c.max_grad_norm >= 0, StrCat("max_grad_norm must be >= 0, got ", c.max_grad_norm));
  require(c.eval_every >= 0, StrCat("eval_every must be >= 0, got ", c.eval_every));
  require(c.eval_batch_size >= 0, StrCat("eval_batch_size must be >= 0, got ", c.eval_batch_size));
  require(c.early_stopping_patience >= 0,
          StrCat("early_stopping_patience must be >= 0, got ", c.early_stopping_patience));
  require(c.log_every >= 1, StrCat("log_every must be >= 1, got ", c.log_every));
  require(c.verify_every >= 0, StrCat("verify_every must be >= 0, got ", c.verify_every));
}

std::string FormatProgressLine(const TrainProgress& p, EvalMetric metric) {
  char numbers[160];
  std::snprintf(numbers, sizeof(numbers), "step %lld/%lld | loss %.4f | lr %.2e | ",
                static_cast<long long>(p.step), static_cast<long long>(p.max_steps), p.train_loss,
                p.learning_rate);
  std::string line = StrCat(numbers, Grouped(static_cast<int64_t>(p.tokens_per_second + 0.5)), " tok/s | ETA ",
                            FormatDuration(p.eta_seconds));
  if (p.dev) {
    char dev[160];
    std::snprintf(dev, sizeof(dev), " | dev loss %.4f", p.dev->loss);
    line += dev;
    if (p.dev->accuracy) line += StrCat(" accuracy ", std::to_string(*p.dev->accuracy).substr(0, 6));
    if (p.dev->exact_match) line += StrCat(" exact_match ", std::to_string(*p.dev->exact_match).substr(0, 6));
    if (p.best_metric) {
      line += StrCat(" (best ", EvalMetricName(metric), " ", std::to_string(*p.best_metric).substr(0, 6), ")");
    }
  }
  return line;
}

// --- The trainer. ---

PromptTrainer::PromptTrainer(std::shared_ptr<const CausalLM> model, const Tokenizer& tokenizer,
                             TrainerConfig config, TrainerData data, Collective& collective)
    : model_(std::move(model)),
      tokenizer_(tokenizer),
      config_(std::move(config)),
      data_(data),
      collective_(collective) {
  PS_CHECK(model_ != nullptr, "PromptTrainer needs a model");
  if (data_.train == nullptr || data_.train->examples.empty()) throw Error("training needs a non-empty train set");
  ValidateTrainerConfig(config_);
  if (data_.dev != nullptr && IsClassification(*data_.dev) != IsClassification(*data_.train)) {
    throw Error(StrCat(data_.dev->path, ": dev set is of another task kind than ", data_.train->path));
  }
  metric_ = ResolveMetric(config_.eval_metric, data_.dev, *data_.train);
  schedule_ = LearningRateSchedule{config_.schedule, config_.warmup_steps, config_.max_steps};
  optimizer_ = MakeOptimizer(config_.optimizer);
  prompt_ = InitSoftPrompt(*model_, tokenizer_, config_.prompt, config_.seed);
  // Ranks initialise identically; the broadcast guards against any rank-local difference.
  collective_.Broadcast(prompt_, /*root=*/0);
  prompt_.requires_grad_(true);
  Shuffle();
}

PromptTrainer::~PromptTrainer() = default;

void PromptTrainer::SetInitialPrompt(const torch::Tensor& prompt) {
  if (step_ != 0) throw Error(StrCat("the initial prompt can only be set before training (at step ", step_, ")"));
  if (prompt.sizes() != prompt_.sizes()) {
    throw Error(StrCat("initial prompt is ", prompt.sizes(), ", this job trains ", prompt_.sizes()));
  }
  torch::NoGradGuard no_grad;
  prompt_.copy_(prompt);
  collective_.Broadcast(prompt_, /*root=*/0);
}

void PromptTrainer::Shuffle() {
  order_ = EpochOrder(static_cast<int64_t>(data_.train->examples.size()), config_.seed, epoch_);
}

const Example* PromptTrainer::NextExample() {
  if (cursor_ == static_cast<int64_t>(order_.size())) {
    ++epoch_;
    cursor_ = 0;
    Shuffle();
  }
  return &data_.train->examples[static_cast<std::size_t>(order_[static_cast<std::size_t>(cursor_++)])];
}

void PromptTrainer::PlanStep() {
  // The step's examples in global order (the same on every rank), and their
  // target-token count: the denominator of the step's mean loss. Each rank
  // keeps its shard of every micro-batch.
  plan_.micro_batches.assign(static_cast<std::size_t>(config_.gradient_accumulation_steps), {});
  plan_.target_tokens = 0;
  std::vector<const Example*> micro_batch;
  for (auto& shard_examples : plan_.micro_batches) {
    micro_batch.clear();
    for (int64_t i = 0; i < config_.batch_size; ++i) {
      micro_batch.push_back(NextExample());
      plan_.target_tokens += static_cast<int64_t>(micro_batch.back()->target_ids.size());
    }
    const ShardRange shard = ShardOf(static_cast<int64_t>(micro_batch.size()), collective_.rank(), collective_.size());
    shard_examples.assign(micro_batch.begin() + shard.begin, micro_batch.begin() + shard.end);
  }
  PS_CHECK(plan_.target_tokens > 0, "a training step without target tokens");
}

bool PromptTrainer::ApplyStep(double local_loss_sum, int64_t local_tokens, double* loss, int64_t* tokens,
                              std::string* why) {
  torch::NoGradGuard no_grad;
  torch::Tensor grad = prompt_.grad().defined() ? prompt_.grad() : torch::zeros_like(prompt_);
  collective_.AllReduceSum(grad);
  torch::Tensor sums = torch::tensor({local_loss_sum, static_cast<double>(local_tokens)}, torch::kFloat64);
  collective_.AllReduceSum(sums);
  *loss = sums[0].item<double>() / static_cast<double>(plan_.target_tokens);
  *tokens = static_cast<int64_t>(sums[1].item<double>());
  const int64_t step = step_ + 1;
  if (!std::isfinite(*loss)) {
    *why = StrCat("loss is ", *loss, " at step ", step, "; lower learning_rate (", config_.learning_rate,
                  ") or set max_grad_norm");
    return false;
  }
  if (!torch::isfinite(grad).all().item<bool>()) {
    *why = StrCat("the prompt gradient has NaN/Inf at step ", step, "; lower learning_rate (",
                  config_.learning_rate, ") or set max_grad_norm");
    return false;
  }
  if (config_.max_grad_norm > 0) {
    // torch.nn.utils.clip_grad_norm_: scale by max_norm / (norm + 1e-6), at most 1.
    const torch::Tensor norm = grad.norm(2);
    grad.mul_(torch::clamp(config_.max_grad_norm / (norm + 1e-6), /*min=*/c10::nullopt, /*max=*/1.0));
  }
  optimizer_->Step(prompt_, grad, config_.learning_rate * schedule_.Factor(step_));
  prompt_.mutable_grad() = torch::Tensor();
  if (!torch::isfinite(prompt_).all().item<bool>()) {
    *why = StrCat("the prompt became NaN/Inf at step ", step, "; lower learning_rate (", config_.learning_rate, ")");
    return false;
  }
  step_ = step;
  return true;
}

EvalOptions PromptTrainer::DevOptions() const {
  EvalOptions options;
  options.batch_size = config_.eval_batch_size > 0 ? config_.eval_batch_size : config_.batch_size;
  options.exact_match = metric_ == EvalMetric::kExactMatch;
  for (int64_t id : model_->config().eos_token_ids) options.stop_ids.push_back(id);
  return options;
}

EvalResult PromptTrainer::Evaluate(const TaskData& data, const torch::Tensor& prompt) {
  return EvaluatePrompt(*model_, tokenizer_, prompt.detach(), data, DevOptions(), collective_);
}

std::pair<bool, bool> PromptTrainer::StopRequested(const std::atomic<bool>* stop, const std::atomic<bool>* terminate) {
  const bool local_stop = stop != nullptr && stop->load();
  const bool local_terminate = terminate != nullptr && terminate->load();
  if (collective_.size() == 1) return {local_stop, local_terminate};
  // Only rank 0 hears of preemption, lost leases and early termination; the group stops together.
  torch::Tensor requests =
      torch::tensor({static_cast<int64_t>(local_stop), static_cast<int64_t>(local_terminate)}, torch::kInt64);
  collective_.AllReduceSum(requests);
  return {requests[0].item<int64_t>() > 0, requests[1].item<int64_t>() > 0};
}

std::optional<std::string> PromptTrainer::PromptMismatch() {
  // FNV-1a (64 bit) of the prompt's float32 bytes: ranks in step hold the same bits.
  const torch::Tensor values = prompt_.detach().to(torch::kCPU, torch::kFloat32).contiguous();
  const auto* bytes = static_cast<const unsigned char*>(values.data_ptr());
  uint64_t hash = 0xcbf29ce484222325ull;
  for (int64_t i = 0; i < values.numel() * static_cast<int64_t>(sizeof(float)); ++i) {
    hash = (hash ^ bytes[i]) * 0x100000001b3ull;
  }
  // Each rank fills its own slot; the sum hands every rank every checksum.
  torch::Tensor checksums = torch::zeros({collective_.size()}, torch::kInt64);
  checksums.data_ptr<int64_t>()[collective_.rank()] = static_cast<int64_t>(hash);
  collective_.AllReduceSum(checksums);
  const auto sums = checksums.accessor<int64_t, 1>();
  for (int rank = 1; rank < collective_.size(); ++rank) {
    if (sums[rank] == sums[0]) continue;
    char numbers[80];
    std::snprintf(numbers, sizeof(numbers), "checksum %016llx, rank 0 has %016llx",
                  static_cast<unsigned long long>(sums[rank]), static_cast<unsigned long long>(sums[0]));
    return StrCat("rank ", rank, "'s prompt differs from rank 0's at step ", step_, " (", numbers,
                  "): the ranks are out of step; the job fails and may be retried");
  }
  return std::nullopt;
}

bool PromptTrainer::Improves(double value) const {
  if (!best_metric_) return true;
  return metric_ == EvalMetric::kLoss ? value < *best_metric_ : value > *best_metric_;
}

void PromptTrainer::Record(const std::string& split, const std::string& metric, double value) {
  history_.push_back(MetricRecord{step_, split, metric, value});
}

void PromptTrainer::RecordEval(const std::string& split, const EvalResult& eval) {
  Record(split, "loss", eval.loss);
  if (eval.accuracy) Record(split, "accuracy", *eval.accuracy);
  if (eval.exact_match) Record(split, "exact_match", *eval.exact_match);
}

void PromptTrainer::BeginRun() {
  run_ = RunState{};
  run_.start = Clock::now();
  run_.first_step = step_;
  run_.result.metric = metric_;
}

bool PromptTrainer::BeginStep(const RunHooks& hooks) {
  if (RunOver()) return false;
  const auto [stop, terminate] = StopRequested(hooks.stop, hooks.terminate);
  if (terminate) {  // the status becomes kStopped in EndRun, after the test evaluation
    terminated_ = true;
    run_.result.message = StrCat("stopped early at step ", step_, " of ", config_.max_steps);
    return false;
  }
  if (stop) {
    run_.result.status = TrainStatus::kCancelled;
    run_.result.message = StrCat("stopped at step ", step_, " of ", config_.max_steps);
    return false;
  }
  run_.learning_rate = config_.learning_rate * schedule_.Factor(step_);
  run_.step_start = Clock::now();
  PlanStep();
  prompt_.mutable_grad() = torch::Tensor();
  return true;
}

bool PromptTrainer::EndStep(double local_loss_sum, int64_t local_tokens) {
  double loss = 0;
  int64_t tokens = 0;
  std::string why;
  if (!ApplyStep(local_loss_sum, local_tokens, &loss, &tokens, &why)) {
    run_.result.status = TrainStatus::kDiverged;
    run_.result.message = why;
    Record("train", "loss", loss);
    return false;
  }
  if (collective_.size() > 1 && config_.verify_every > 0 && step_ % config_.verify_every == 0) {
    if (std::optional<std::string> mismatch = PromptMismatch()) {
      run_.result.status = TrainStatus::kFailed;
      run_.result.message = *mismatch;
      return false;
    }
  }
  train_seconds_ += Seconds(run_.step_start);
  train_tokens_ += tokens;
  recent_loss_sum_ += loss;
  ++recent_loss_steps_;

  TrainProgress& progress = run_.progress;
  progress = TrainProgress{};
  progress.step = step_;
  progress.max_steps = config_.max_steps;
  progress.train_loss = loss;
  progress.learning_rate = run_.learning_rate;
  progress.tokens_per_second = train_seconds_ > 0 ? static_cast<double>(train_tokens_) / train_seconds_ : 0;
  progress.eta_seconds = Seconds(run_.start) / static_cast<double>(step_ - run_.first_step) *
                         static_cast<double>(config_.max_steps - step_);
  if (step_ % config_.log_every == 0 || step_ == config_.max_steps) {
    last_logged_loss_ = recent_loss_sum_ / static_cast<double>(recent_loss_steps_);
    Record("train", "loss", last_logged_loss_);
    Record("train", "lr", run_.learning_rate);
    recent_loss_sum_ = 0;
    recent_loss_steps_ = 0;
    progress.log_line = true;
  }
  return true;
}

bool PromptTrainer::DevDue() const {
  return data_.dev != nullptr &&
         ((config_.eval_every > 0 && step_ % config_.eval_every == 0) || step_ == config_.max_steps);
}

void PromptTrainer::ApplyDev(const EvalResult& dev) {
  RecordEval("dev", dev);
  last_dev_ = dev;
  const double value = dev.Metric(metric_);
  if (Improves(value)) {
    best_metric_ = value;
    best_dev_ = dev;
    best_step_ = step_;
    best_prompt_ = prompt_.detach().clone();
    evals_without_improvement_ = 0;
  } else if (config_.early_stopping_patience > 0 &&
             ++evals_without_improvement_ >= config_.early_stopping_patience) {
    early_stopped_ = true;
  }
  run_.progress.dev = dev;
  run_.progress.best_metric = best_metric_;
  run_.progress.log_line = true;
}

void PromptTrainer::AfterStep(const RunHooks& hooks) {
  if (hooks.progress) hooks.progress(run_.progress);
  if (hooks.checkpoint_every > 0 && step_ % hooks.checkpoint_every == 0 && collective_.rank() == 0) {
    SaveState(hooks.checkpoint_path);
  }
}

void PromptTrainer::FailRun(const std::string& message) {
  run_.result.status = TrainStatus::kFailed;
  run_.result.message = message;
}

TrainResult PromptTrainer::EndRun() {
  TrainResult result = std::move(run_.result);
  if (result.status == TrainStatus::kSucceeded && data_.test != nullptr) {
    try {
      result.test = Evaluate(*data_.test, best_prompt_.defined() ? best_prompt_ : prompt_);
      RecordEval("test", *result.test);
    } catch (const std::exception& e) {
      result.status = TrainStatus::kFailed;
      result.message = e.what();
    }
  }
  if (terminated_ && result.status == TrainStatus::kSucceeded) result.status = TrainStatus::kStopped;
  terminated_ = false;
  result.early_stopped = early_stopped_;
  result.steps = step_;
  result.final_dev = last_dev_;
  result.best_dev = best_dev_;
  result.best_step = best_step_;
  result.final_train_loss = recent_loss_steps_ > 0 ? recent_loss_sum_ / static_cast<double>(recent_loss_steps_)
                                                   : last_logged_loss_;
  result.tokens_per_second = train_seconds_ > 0 ? static_cast<double>(train_tokens_) / train_seconds_ : 0;
  result.wall_seconds = Seconds(run_.start);
  result.final_prompt = prompt_.detach().to(torch::kCPU).clone();
  result.best_prompt = best_prompt_.defined() ? best_prompt_.to(torch::kCPU).clone() : result.final_prompt;
  result.history = history_;
  run_ = RunState{};
  return result;
}

TrainResult PromptTrainer::Run(const RunHooks& hooks) {
  BeginRun();
  try {
    while (BeginStep(hooks)) {
      double loss_sum = 0;
      int64_t tokens = 0;
      for (const std::vector<const Example*>& examples : plan_.micro_batches) {
        if (examples.empty()) continue;
        const PromptBatch batch = MakePromptBatch(examples, config_.prompt.num_virtual_tokens, Padding::kRight,
                                                  model_->device());
        const torch::Tensor batch_loss = -TargetLogProbs(*model_, prompt_, batch).sum();
        (batch_loss / static_cast<double>(plan_.target_tokens)).backward();
        loss_sum += batch_loss.item<double>();
        tokens += batch.num_real_tokens;
      }
      if (!EndStep(loss_sum, tokens)) break;
      if (DevDue()) ApplyDev(Evaluate(*data_.dev, prompt_));
      AfterStep(hooks);
    }
  } catch (const std::exception& e) {
    FailRun(e.what());
  }
  return EndRun();
}

// --- Checkpoints. ---

std::vector<std::pair<std::string, nlohmann::json>> PromptTrainer::StateFingerprint() const {
  // Settings that fix the prompt's shape, the optimizer state and the data
  // order: a checkpoint resumes only a job that agrees on all of them.
  return {{"num_virtual_tokens", config_.prompt.num_virtual_tokens},
          {"hidden_size", model_->config().hidden_size},
          {"optimizer", OptimizerName(config_.optimizer.kind)},
          {"seed", config_.seed},
          {"batch_size", config_.batch_size},
          {"gradient_accumulation_steps", config_.gradient_accumulation_steps},
          {"train_examples", data_.train->examples.size()},
          {"eval_metric", EvalMetricName(metric_)}};
}

void PromptTrainer::SaveState(const std::string& path) const {
  nlohmann::json history = nlohmann::json::array();
  for (const MetricRecord& r : history_) history.push_back({r.step, r.split, r.metric, JsonDouble(r.value)});
  nlohmann::json state = {
      {"format_version", kStateFormatVersion},
      {"job", nlohmann::json::object()},
      {"step", step_},
      {"optimizer_step", optimizer_->step()},
      {"epoch", epoch_},
      {"cursor", cursor_},
      {"best_step", best_step_},
      {"evals_without_improvement", evals_without_improvement_},
      {"early_stopped", early_stopped_},
      {"train_tokens", train_tokens_},
      {"train_seconds", train_seconds_},
      {"recent_loss_sum", JsonDouble(recent_loss_sum_)},
      {"recent_loss_steps", recent_loss_steps_},
      {"last_logged_loss", JsonDouble(last_logged_loss_)},
      {"history", history},
  };
  for (const auto& [key, value] : StateFingerprint()) state["job"][key] = value;
  if (best_metric_) state["best_metric"] = JsonDouble(*best_metric_);
  if (best_dev_) state["best_dev"] = EvalResultToJson(*best_dev_);
  if (last_dev_) state["last_dev"] = EvalResultToJson(*last_dev_);

  std::vector<std::pair<std::string, torch::Tensor>> tensors = {{"prompt", prompt_.detach()}};
  if (best_prompt_.defined()) tensors.emplace_back("best_prompt", best_prompt_);
  for (const auto& [name, tensor] : optimizer_->StateTensors()) tensors.emplace_back("optimizer." + name, tensor);
  SaveSafetensors(path, tensors, {{"format", "pt"}, {kStateMetadataKey, state.dump()}});
}

void PromptTrainer::LoadState(const std::string& path) {
  const std::unique_ptr<SafetensorsFile> file = SafetensorsFile::Open(path);
  const auto meta = file->metadata().find(kStateMetadataKey);
  if (meta == file->metadata().end()) {
    throw Error(StrCat(path, ": not a promptsweep training checkpoint (no '", kStateMetadataKey, "' metadata)"));
  }
  const nlohmann::json state = ParseJson(meta->second, StrCat(path, " trainer state"));
  std::map<std::string, torch::Tensor> tensors;
  for (const TensorInfo& info : file->tensors()) tensors.emplace(info.name, ReadTensor(*file, info));

  try {
    if (state.at("format_version").get<int>() != kStateFormatVersion) {
      throw Error(StrCat("format_version ", state.at("format_version").dump(), " (this build reads ",
                         kStateFormatVersion, ")"));
    }
    // Settings that fix the prompt's shape, the optimizer state and the data
    // order must match; others (max_steps, learning_rate, ...) may change.
    const nlohmann::json& job = state.at("job");
    for (const auto& [key, value] : StateFingerprint()) {
      if (job.at(key) != value) {
        throw Error(StrCat("was written with ", key, " = ", job.at(key).dump(), " but this job has ", value.dump(),
                           "; resume with the same settings"));
      }
    }
    const auto prompt = tensors.find("prompt");
    if (prompt == tensors.end()) throw Error("tensor 'prompt' is missing");
    if (prompt->second.sizes() != prompt_.sizes() || prompt->second.scalar_type() != torch::kFloat32) {
      throw Error(StrCat("tensor 'prompt' is ", prompt->second.sizes(), ", expected ", prompt_.sizes(), " F32"));
    }
    std::map<std::string, torch::Tensor> optimizer_state;
    for (const auto& [name, tensor] : tensors) {
      if (name.rfind("optimizer.", 0) == 0) optimizer_state.emplace(name.substr(10), tensor);
    }
    // Everything is read and checked before the trainer changes, so a bad
    // file leaves it as it was.
    std::unique_ptr<PromptOptimizer> optimizer = MakeOptimizer(config_.optimizer);
    optimizer->LoadState(optimizer_state, state.at("optimizer_step").get<int64_t>(), prompt_);
    const int64_t epoch = state.at("epoch").get<int64_t>();
    const int64_t cursor = state.at("cursor").get<int64_t>();
    if (cursor < 0 || cursor > static_cast<int64_t>(data_.train->examples.size()) || epoch < 0) {
      throw Error(StrCat("data position epoch ", epoch, " cursor ", cursor, " is out of range"));
    }
    std::vector<MetricRecord> history;
    for (const nlohmann::json& r : state.at("history")) {
      history.push_back(MetricRecord{r.at(0).get<int64_t>(), r.at(1).get<std::string>(), r.at(2).get<std::string>(),
                                     ReadJsonDouble(r.at(3))});
    }
    std::optional<double> best_metric;
    if (state.contains("best_metric")) best_metric = ReadJsonDouble(state.at("best_metric"));
    std::optional<EvalResult> best_dev;
    if (state.contains("best_dev")) best_dev = EvalResultFromJson(state.at("best_dev"));
    std::optional<EvalResult> last_dev;
    if (state.contains("last_dev")) last_dev = EvalResultFromJson(state.at("last_dev"));
    const auto best = tensors.find("best_prompt");
    torch::Tensor best_prompt = best != tensors.end() ? best->second.to(prompt_.device()) : torch::Tensor();
    const int64_t step = state.at("step").get<int64_t>();
    const int64_t best_step = state.at("best_step").get<int64_t>();
    const int64_t evals_without_improvement = state.at("evals_without_improvement").get<int64_t>();
    const bool early_stopped = state.at("early_stopped").get<bool>();
    const int64_t train_tokens = state.at("train_tokens").get<int64_t>();
    const double train_seconds = state.at("train_seconds").get<double>();
    const double recent_loss_sum = ReadJsonDouble(state.at("recent_loss_sum"));
    const int64_t recent_loss_steps = state.at("recent_loss_steps").get<int64_t>();
    const double last_logged_loss = ReadJsonDouble(state.at("last_logged_loss"));

    {
      torch::NoGradGuard no_grad;
      prompt_.copy_(prompt->second);
    }
    optimizer_ = std::move(optimizer);
    best_prompt_ = best_prompt;
    step_ = step;
    epoch_ = epoch;
    cursor_ = cursor;
    best_step_ = best_step;
    evals_without_improvement_ = evals_without_improvement;
    early_stopped_ = early_stopped;
    train_tokens_ = train_tokens;
    train_seconds_ = train_seconds;
    recent_loss_sum_ = recent_loss_sum;
    recent_loss_steps_ = recent_loss_steps;
    last_logged_loss_ = last_logged_loss;
    best_metric_ = best_metric;
    best_dev_ = best_dev;
    last_dev_ = last_dev;
    history_ = std::move(history);
    Shuffle();
  } catch (const nlohmann::json::exception& e) {
    throw Error(StrCat(path, ": malformed trainer state: ", e.what()));
  } catch (const Error& e) {
    throw Error(StrCat(path, ": ", e.what()));
  }
}

}  // namespace promptsweep
