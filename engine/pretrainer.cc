#include "engine/pretrainer.h"

#include <sys/stat.h>

#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <random>
#include <sstream>
#include <utility>

#include <nlohmann/json.hpp>

#include "common/error.h"
#include "common/file_util.h"
#include "common/json_util.h"
#include "engine/tensor_io.h"

namespace promptsweep {
namespace {

namespace fs = std::filesystem;

uint64_t SplitMix64(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

bool IsBlank(const std::string& line) { return line.find_first_not_of(" \t\r\f\v") == std::string::npos; }

// Next-token cross-entropy summed over the windows [B, T + 1].
torch::Tensor WindowLossSum(const CausalLM& model, const torch::Tensor& windows) {
  const int64_t length = windows.size(1) - 1;
  const torch::Tensor inputs = windows.slice(/*dim=*/1, 0, length).to(model.device());
  const torch::Tensor targets = windows.slice(/*dim=*/1, 1).to(model.device());
  const torch::Tensor mask = torch::ones_like(inputs);
  const torch::Tensor positions = torch::arange(length, inputs.options()).unsqueeze(0).expand_as(inputs);
  const torch::Tensor hidden = model.Forward(model.EmbedTokens(inputs), mask, positions);
  const torch::Tensor logits = model.LmHead(hidden);
  return torch::nn::functional::cross_entropy(
      logits.reshape({-1, logits.size(-1)}), targets.reshape(-1),
      torch::nn::functional::CrossEntropyFuncOptions().reduction(torch::kSum));
}

torch::Tensor TokensTensor(const std::vector<int32_t>& tokens, int64_t begin, int64_t end) {
  return torch::from_blob(const_cast<int32_t*>(tokens.data() + begin), {end - begin}, torch::kInt32)
      .to(torch::kInt64);
}

std::string StepFileName(const char* stem, int64_t step, const char* extension) {
  char name[64];
  std::snprintf(name, sizeof(name), "%s-%08lld.%s", stem, static_cast<long long>(step), extension);
  return name;
}

nlohmann::json ConfigToJson(const PretrainConfig& c) {
  return {{"seq_length", c.seq_length},       {"batch_size", c.batch_size},
          {"max_steps", c.max_steps},         {"learning_rate", c.learning_rate},
          {"min_lr_ratio", c.min_lr_ratio},   {"warmup_steps", c.warmup_steps},
          {"weight_decay", c.weight_decay},   {"beta1", c.beta1},
          {"beta2", c.beta2},                 {"max_grad_norm", c.max_grad_norm},
          {"seed", c.seed}};
}

// DIR/resume/trainer_state.json, checked to be one SaveCheckpoint wrote: a
// directory that is something else is an Error naming the file, not a crash.
std::string ResumeStatePath(const std::string& output_dir) { return output_dir + "/resume/trainer_state.json"; }

nlohmann::json ReadResumeState(const std::string& output_dir) {
  const std::string path = ResumeStatePath(output_dir);
  const nlohmann::json state = ReadJsonFile(path);
  const auto fail = [&](const std::string& what) {
    throw Error(StrCat(path, ": not a pretraining checkpoint (", what,
                       "); resume with the --output of an earlier `promptsweep pretrain`, or drop --resume"));
  };
  if (!state.is_object()) fail("not a JSON object");
  for (const char* key : {"weights", "optimizer"}) {
    if (!state.contains(key) || !state[key].is_string()) fail(StrCat("no file name \"", key, "\""));
    const std::string file = state[key].get<std::string>();
    if (file.empty() || file.find('/') != std::string::npos) fail(StrCat("\"", key, "\" is not a file name"));
    if (!fs::exists(output_dir + "/resume/" + file)) fail(StrCat("its ", key, " file ", file, " is missing"));
  }
  if (!state.contains("step") || !state["step"].is_number_integer() || state["step"].get<int64_t>() < 0) {
    fail("no step");
  }
  if (!state.contains("config") || !state["config"].is_object()) fail("no config");
  const nlohmann::json history = state.value("heldout_perplexity", nlohmann::json::array());
  if (!history.is_array()) fail("heldout_perplexity is not a list");
  for (const nlohmann::json& entry : history) {
    if (!entry.is_object() || !entry.contains("step") || !entry["step"].is_number_integer() ||
        !entry.contains("perplexity") || !entry["perplexity"].is_number()) {
      fail("a heldout_perplexity entry is not {step, perplexity}");
    }
  }
  return state;
}

}  // namespace

std::string PretrainCheckpointWeights(const std::string& output_dir) {
  return output_dir + "/resume/" + ReadResumeState(output_dir).at("weights").get<std::string>();
}

bool HasPretrainCheckpoint(const std::string& output_dir) { return fs::exists(ResumeStatePath(output_dir)); }

std::shared_ptr<CausalLM> LoadPretrainCheckpoint(const std::string& output_dir, const ModelLoadOptions& load) {
  const std::string weights = PretrainCheckpointWeights(output_dir);  // Error unless a checkpoint
  const ModelConfig config = ReadModelConfig(output_dir);
  const auto checkpoint = CheckpointReader::Open(weights);
  return CausalLM::Create(config, *checkpoint, load);
}

void ValidatePretrainConfig(const PretrainConfig& c) {
  // User settings (the pretrain flags): Error naming the setting and its flag.
  const auto require = [](bool ok, const std::string& what, const char* flag = "") {
    if (!ok) throw Error(*flag != '\0' ? StrCat(what, " (", flag, ")") : what);
  };
  require(c.seq_length >= 1, StrCat("seq_length must be >= 1, got ", c.seq_length), "--seq-length");
  require(c.batch_size >= 1, StrCat("batch_size must be >= 1, got ", c.batch_size), "--batch-size");
  require(c.max_steps >= 1, StrCat("max_steps must be >= 1, got ", c.max_steps), "--max-steps");
  require(c.learning_rate > 0 && std::isfinite(c.learning_rate),
          StrCat("learning_rate must be > 0, got ", c.learning_rate), "--learning-rate");
  require(c.min_lr_ratio >= 0 && c.min_lr_ratio <= 1, StrCat("min_lr_ratio must be in [0, 1], got ", c.min_lr_ratio),
          "--min-lr-ratio");
  require(c.warmup_steps >= 0, StrCat("warmup_steps must be >= 0, got ", c.warmup_steps), "--warmup-steps");
  require(c.weight_decay >= 0, StrCat("weight_decay must be >= 0, got ", c.weight_decay), "--weight-decay");
  require(c.beta1 >= 0 && c.beta1 < 1, StrCat("beta1 must be in [0, 1), got ", c.beta1));
  require(c.beta2 >= 0 && c.beta2 < 1, StrCat("beta2 must be in [0, 1), got ", c.beta2));
  require(c.max_grad_norm >= 0, StrCat("max_grad_norm must be >= 0 (0 = off), got ", c.max_grad_norm),
          "--max-grad-norm");
  require(c.eval_every >= 0, StrCat("eval_every must be >= 0, got ", c.eval_every), "--eval-every");
  require(c.eval_max_tokens >= 0, StrCat("eval_max_tokens must be >= 0, got ", c.eval_max_tokens), "--eval-tokens");
  require(c.checkpoint_every >= 0, StrCat("checkpoint_every must be >= 0, got ", c.checkpoint_every),
          "--checkpoint-every");
  require(c.log_every >= 1, StrCat("log_every must be >= 1, got ", c.log_every), "--log-every");
  require(c.save_dtype == "float32" || c.save_dtype == "bfloat16",
          StrCat("save dtype must be float32 or bfloat16, got '", c.save_dtype, "'"), "--save-dtype");
}

std::vector<int32_t> TokenizeCorpus(const std::string& path, const Tokenizer& tokenizer, int32_t separator_id) {
  std::istringstream in(ReadFile(path, "the text file"));
  std::vector<int32_t> tokens;
  std::string document;
  const auto flush = [&] {
    if (document.empty()) return;
    tokens.push_back(separator_id);
    const std::vector<int32_t> ids = tokenizer.Encode(document, /*add_special_tokens=*/false);
    tokens.insert(tokens.end(), ids.begin(), ids.end());
    document.clear();
  };
  std::string line;
  while (std::getline(in, line)) {
    if (IsBlank(line)) {
      flush();
      continue;
    }
    if (!document.empty()) document += '\n';
    document += line;
  }
  flush();
  if (tokens.empty()) throw Error(StrCat(path, ": no text (documents are separated by blank lines)"));
  return tokens;
}

PerplexityResult EvaluatePerplexity(const CausalLM& model, const std::vector<int32_t>& tokens, int64_t window,
                                    int64_t max_tokens, int64_t batch_size) {
  if (window < 1) throw Error(StrCat("the perplexity window must be >= 1 token, got ", window, " (--window)"));
  PS_CHECK(batch_size >= 1, "perplexity batch size must be >= 1, got ", batch_size);
  if (tokens.size() < 2) {
    throw Error(StrCat("perplexity needs a text of at least 2 tokens, got ", tokens.size(),
                       " (counting the separator before each document)"));
  }
  torch::NoGradGuard no_grad;
  int64_t available = static_cast<int64_t>(tokens.size()) - 1;  // predicted tokens
  if (max_tokens > 0) available = std::min(available, max_tokens);
  const int64_t full = available / window;
  double loss_sum = 0.0;
  for (int64_t first = 0; first < full; first += batch_size) {
    const int64_t count = std::min(batch_size, full - first);
    std::vector<torch::Tensor> rows;
    for (int64_t w = first; w < first + count; ++w) rows.push_back(TokensTensor(tokens, w * window, (w + 1) * window + 1));
    loss_sum += WindowLossSum(model, torch::stack(rows)).item<double>();
  }
  const int64_t rest = available - full * window;
  if (rest > 0) {
    loss_sum += WindowLossSum(model, TokensTensor(tokens, full * window, full * window + rest + 1).unsqueeze(0))
                    .item<double>();
  }
  PerplexityResult result;
  result.tokens = available;
  result.loss = loss_sum / static_cast<double>(available);
  result.perplexity = std::exp(result.loss);
  return result;
}

double PretrainLearningRate(const PretrainConfig& config, int64_t step) {
  if (step < config.warmup_steps) {
    return config.learning_rate * static_cast<double>(step + 1) / static_cast<double>(config.warmup_steps);
  }
  const int64_t decay_steps = std::max<int64_t>(1, config.max_steps - config.warmup_steps);
  const double progress = std::min(1.0, static_cast<double>(step - config.warmup_steps) / decay_steps);
  const double cosine = 0.5 * (1.0 + std::cos(M_PI * progress));
  return config.learning_rate * (config.min_lr_ratio + (1.0 - config.min_lr_ratio) * cosine);
}

void SaveHfModel(const CausalLM& model, const std::string& tokenizer_path, const std::string& dir,
                 torch::ScalarType dtype) {
  fs::create_directories(dir);
  ModelConfig config = model.config();
  config.torch_dtype = dtype == torch::kBFloat16 ? "bfloat16" : dtype == torch::kFloat16 ? "float16" : "float32";
  std::vector<std::pair<std::string, torch::Tensor>> weights;
  {
    torch::NoGradGuard no_grad;
    for (const auto& [name, weight] : model.NamedWeights()) weights.emplace_back(name, weight.detach().to(dtype));
  }
  SaveSafetensors(dir + "/model.safetensors", weights);
  WriteFileAtomically(dir + "/config.json", ModelConfigToJson(config).dump(2) + "\n");
  nlohmann::json generation = {{"_from_model_config", true}};
  if (config.bos_token_id) generation["bos_token_id"] = *config.bos_token_id;
  if (config.eos_token_ids.size() == 1) generation["eos_token_id"] = config.eos_token_ids.front();
  if (config.eos_token_ids.size() > 1) generation["eos_token_id"] = config.eos_token_ids;
  WriteFileAtomically(dir + "/generation_config.json", generation.dump(2) + "\n");
  if (fs::absolute(tokenizer_path) != fs::absolute(dir + "/tokenizer.json")) {
    WriteFileAtomically(dir + "/tokenizer.json", ReadFile(tokenizer_path, "the tokenizer"));
  }
}

Pretrainer::Pretrainer(std::shared_ptr<CausalLM> model, const Tokenizer& tokenizer, std::string tokenizer_path,
                       PretrainConfig config, std::vector<int32_t> train_tokens,
                       std::vector<int32_t> heldout_tokens, std::string output_dir)
    : model_(std::move(model)),
      tokenizer_(tokenizer),
      tokenizer_path_(std::move(tokenizer_path)),
      config_(std::move(config)),
      train_tokens_(std::move(train_tokens)),
      heldout_tokens_(std::move(heldout_tokens)),
      output_dir_(std::move(output_dir)) {
  ValidatePretrainConfig(config_);
  if (static_cast<int64_t>(train_tokens_.size()) <= config_.seq_length + 1) {
    throw Error(StrCat("the training text (--train) has ", train_tokens_.size(),
                       " tokens, fewer than one window (--seq-length + 1 = ", config_.seq_length + 1,
                       ") and the token after it: give more text or a smaller --seq-length"));
  }
  if (heldout_tokens_.size() < 2) {
    throw Error(StrCat("the held-out text (--heldout) has ", heldout_tokens_.size(),
                       " token(s); perplexity needs at least 2"));
  }
  const int64_t vocab = model_->config().vocab_size;
  for (const std::vector<int32_t>* stream : {&train_tokens_, &heldout_tokens_}) {
    for (const int32_t id : *stream) {
      if (id < 0 || id >= vocab) {
        throw Error(StrCat("token id ", id, " is outside the model's vocabulary [0, ", vocab, ") in the ",
                           stream == &train_tokens_ ? "training" : "held-out",
                           " text: the tokenizer does not match the model (resume with the tokenizer the "
                           "checkpoint was made with, or use another --output)"));
      }
    }
  }
  std::vector<torch::Tensor> decay;
  std::vector<torch::Tensor> no_decay;
  for (const torch::Tensor& p : model_->Parameters()) {
    PS_CHECK(p.requires_grad(), "pretraining needs a model built with ModelLoadOptions::trainable");
    (p.dim() >= 2 ? decay : no_decay).push_back(p);
    params_.push_back(p);
  }
  const auto options = [&](double weight_decay) {
    return std::make_unique<torch::optim::AdamWOptions>(torch::optim::AdamWOptions(config_.learning_rate)
                                                            .betas({config_.beta1, config_.beta2})
                                                            .eps(1e-8)
                                                            .weight_decay(weight_decay));
  };
  std::vector<torch::optim::OptimizerParamGroup> groups;
  groups.emplace_back(decay, options(config_.weight_decay));
  groups.emplace_back(no_decay, options(0.0));
  optimizer_ = std::make_unique<torch::optim::AdamW>(groups, torch::optim::AdamWOptions(config_.learning_rate));
}

Pretrainer::~Pretrainer() = default;

torch::Tensor Pretrainer::MakeBatch(int64_t step) const {
  std::mt19937_64 rng(SplitMix64(config_.seed ^ SplitMix64(static_cast<uint64_t>(step))));
  const int64_t length = config_.seq_length + 1;
  std::uniform_int_distribution<int64_t> offset(0, static_cast<int64_t>(train_tokens_.size()) - length);
  std::vector<torch::Tensor> rows;
  for (int64_t b = 0; b < config_.batch_size; ++b) {
    const int64_t begin = offset(rng);
    rows.push_back(TokensTensor(train_tokens_, begin, begin + length));
  }
  return torch::stack(rows);
}

void Pretrainer::SaveCheckpoint() const {
  // Resume state first, in step-named files that trainer_state.json (written
  // last, atomically) points to: a crash leaves the previous state usable.
  const std::string resume_dir = output_dir_ + "/resume";
  fs::create_directories(resume_dir);
  const std::string weights_name = StepFileName("model", step_, "safetensors");
  const std::string optimizer_name = StepFileName("optimizer", step_, "pt");
  {
    torch::NoGradGuard no_grad;
    std::vector<std::pair<std::string, torch::Tensor>> weights;
    for (const auto& [name, weight] : model_->NamedWeights()) weights.emplace_back(name, weight.detach());
    SaveSafetensors(resume_dir + "/" + weights_name, weights);
  }
  const std::string optimizer_tmp = resume_dir + "/" + optimizer_name + ".tmp";
  torch::save(*optimizer_, optimizer_tmp);
  fs::rename(optimizer_tmp, resume_dir + "/" + optimizer_name);
  nlohmann::json history = nlohmann::json::array();
  for (const auto& [step, perplexity] : heldout_history_) history.push_back({{"step", step}, {"perplexity", perplexity}});
  const nlohmann::json state = {{"step", step_},
                                {"weights", weights_name},
                                {"optimizer", optimizer_name},
                                {"config", ConfigToJson(config_)},
                                {"train_tokens", train_tokens_.size()},
                                {"heldout_perplexity", history}};
  WriteFileAtomically(resume_dir + "/trainer_state.json", state.dump(2) + "\n");
  for (const auto& entry : fs::directory_iterator(resume_dir)) {
    const std::string name = entry.path().filename().string();
    if (name != weights_name && name != optimizer_name && name != "trainer_state.json") fs::remove(entry.path());
  }
  SaveHfModel(*model_, tokenizer_path_, output_dir_,
              config_.save_dtype == "bfloat16" ? torch::kBFloat16 : torch::kFloat32);
}

void Pretrainer::Resume() {
  const std::string resume_dir = output_dir_ + "/resume";
  const std::string state_path = ResumeStatePath(output_dir_);
  const nlohmann::json state = ReadResumeState(output_dir_);
  const nlohmann::json expected = ConfigToJson(config_);
  for (const auto& [key, value] : expected.items()) {
    if (key == "max_steps") continue;  // a run may be extended
    if (!state["config"].contains(key) || state["config"][key] != value) {
      throw Error(StrCat(state_path, ": the checkpoint was made with ", key, " = ",
                         state["config"].value(key, nlohmann::json()).dump(), ", this run has ", value.dump(),
                         "; use the same settings to resume, or another --output"));
    }
  }
  if (state.value("train_tokens", int64_t{0}) != static_cast<int64_t>(train_tokens_.size())) {
    throw Error(StrCat(state_path, ": the checkpoint was trained on ", state.value("train_tokens", int64_t{0}),
                       " tokens of text, this run's text has ", train_tokens_.size(),
                       "; resume with the same corpus and tokenizer"));
  }
  const std::string optimizer_path = resume_dir + "/" + state.at("optimizer").get<std::string>();
  try {
    torch::load(*optimizer_, optimizer_path);
  } catch (const c10::Error& e) {
    throw Error(StrCat(optimizer_path, ": cannot load the optimizer state (", e.what_without_backtrace(),
                       "); the checkpoint is damaged or from another model shape: use another --output"));
  }
  step_ = state.at("step").get<int64_t>();
  heldout_history_.clear();
  for (const auto& entry : state.value("heldout_perplexity", nlohmann::json::array())) {
    heldout_history_.emplace_back(entry.at("step").get<int64_t>(), entry.at("perplexity").get<double>());
  }
}

PerplexityResult Pretrainer::Run(const PretrainHooks& hooks) {
  using Clock = std::chrono::steady_clock;
  const auto start = Clock::now();
  double train_seconds = 0.0;
  int64_t train_tokens = 0;
  double loss_sum = 0.0;
  int64_t loss_steps = 0;
  PerplexityResult last;
  bool have_last = false;
  const auto evaluate = [&] {
    last = EvaluatePerplexity(*model_, heldout_tokens_, config_.seq_length, config_.eval_max_tokens);
    heldout_history_.emplace_back(step_, last.perplexity);
    have_last = true;
  };
  while (step_ < config_.max_steps) {
    if (hooks.stop != nullptr && hooks.stop->load()) break;
    const auto step_start = Clock::now();
    const double lr = PretrainLearningRate(config_, step_);
    for (auto& group : optimizer_->param_groups()) {
      static_cast<torch::optim::AdamWOptions&>(group.options()).lr(lr);
    }
    const torch::Tensor batch = MakeBatch(step_);
    optimizer_->zero_grad();
    const torch::Tensor loss = WindowLossSum(*model_, batch) / static_cast<double>(batch.numel() - batch.size(0));
    loss.backward();
    const double loss_value = loss.item<double>();
    if (!std::isfinite(loss_value)) {
      throw Error(StrCat("pretraining diverged at step ", step_ + 1, ": loss is ", loss_value,
                         "; lower --learning-rate or raise --warmup-steps (the last checkpoint is kept in ",
                         output_dir_, ")"));
    }
    if (config_.max_grad_norm > 0) torch::nn::utils::clip_grad_norm_(params_, config_.max_grad_norm);
    optimizer_->step();
    ++step_;
    train_seconds += std::chrono::duration<double>(Clock::now() - step_start).count();
    train_tokens += batch.numel() - batch.size(0);
    loss_sum += loss_value;
    ++loss_steps;

    PretrainProgress progress;
    progress.step = step_;
    progress.max_steps = config_.max_steps;
    progress.learning_rate = lr;
    progress.tokens_per_second = train_tokens / std::max(train_seconds, 1e-9);
    progress.elapsed_seconds = std::chrono::duration<double>(Clock::now() - start).count();
    const bool last_step = step_ == config_.max_steps;
    if (last_step || (config_.eval_every > 0 && step_ % config_.eval_every == 0)) {
      evaluate();
      progress.evaluated = true;
      progress.heldout = last;
    }
    if (last_step || (config_.checkpoint_every > 0 && step_ % config_.checkpoint_every == 0)) {
      SaveCheckpoint();
      progress.checkpointed = true;
    }
    if (step_ % config_.log_every == 0 || progress.evaluated || progress.checkpointed) {
      progress.train_loss = loss_sum / static_cast<double>(loss_steps);
      loss_sum = 0.0;
      loss_steps = 0;
      if (hooks.progress) hooks.progress(progress);
    }
  }
  if (step_ < config_.max_steps) SaveCheckpoint();  // stopped early: keep the work
  if (!have_last) evaluate();
  return last;
}

}  // namespace promptsweep
