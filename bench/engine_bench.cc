// Training-step benchmark of the prompt-tuning engine (run via
// bench/run_engine_bench.sh, which also runs the PyTorch-eager baseline,
// bench/peft_baseline.py, on the same files and prints the table).
//
//   engine_bench prepare --config CONFIG.json --out DIR
//       random weights (CausalLM::CreateRandom) -> DIR/model.safetensors + config.json,
//       one batch (DIR/batch.safetensors: input_ids [B, L - 1], target_ids [B, 1]),
//       the initial prompt (DIR/prompt.safetensors, RANDOM init) and DIR/bench.json
//       (sizes and the FLOPs of one step, formula below).
//   engine_bench step --model DIR --threads T --dtype float32|bfloat16 --steps S
//       S optimizer steps of PromptTrainer (AdamW) on that batch; prints one JSON
//       line: tokens/s (real tokens B x L per step, first step excluded as
//       warm-up), seconds per step, peak RSS, the loss of every step.
//   mpirun -np R engine_bench step --mpi ...
//       the same steps as one data-parallel group of R ranks (MpiCollective):
//       each rank computes its shard of the batch; rank 0 prints the line with
//       the seconds per step spent in the all-reduces (bench/run_mpi_bench.sh).
//   engine_bench mm --threads T --dtype D --n N
//       FLOP/s of a large torch::mm (2 N^3 per product) on the same threads.
//
// FLOPs of one prompt-tuning step (frozen weights: no weight-gradient GEMMs,
// so 2 flops/param/token forward + 2 backward for the activation gradients,
// i.e. 6·P·T minus the 2·P·T of weight gradients):
//   4 · P_blocks · B · S                       decoder linear layers, S = N + L
// + 12 · layers · B · S² · heads · head_dim    attention QKᵀ and AV: 2 GEMMs forward, 4 backward
// + 4 · V · H · K                              LM head at the K = B target positions, fwd + bwd
// The same useful work is credited to the baseline (which also computes the
// LM head at all B · S positions).
#include <sys/resource.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "common/error.h"
#include "common/model_config.h"
#include "common/tokenizer.h"
#include "engine/causal_lm.h"
#include "engine/collective.h"
#include "worker/mpi_context.h"
#include "engine/soft_prompt.h"
#include "engine/tensor_io.h"
#include "engine/trainer.h"

namespace promptsweep::bench {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

double PeakRssMb() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return static_cast<double>(usage.ru_maxrss) / 1024.0;  // ru_maxrss is in KiB on Linux
}

struct PrepareArgs {
  std::string config;
  std::string out;
  int64_t batch = 8;
  int64_t length = 128;  // real tokens per row: L - 1 input + 1 target
  int64_t num_virtual_tokens = 20;
  uint64_t seed = 0;
};

void Prepare(const PrepareArgs& args) {
  const ModelConfig config = ReadModelConfig(args.config);
  fs::create_directories(args.out);
  const auto model = CausalLM::CreateRandom(config, args.seed);
  SaveSafetensors((fs::path(args.out) / "model.safetensors").string(), model->NamedWeights());
  std::ofstream(fs::path(args.out) / "config.json") << ModelConfigToJson(config).dump(2) << "\n";

  torch::manual_seed(static_cast<uint64_t>(args.seed) + 1);
  const torch::Tensor ids = torch::randint(0, config.vocab_size, {args.batch, args.length}, torch::kInt64);
  SaveSafetensors((fs::path(args.out) / "batch.safetensors").string(),
                  {{"input_ids", ids.narrow(1, 0, args.length - 1).contiguous()},
                   {"target_ids", ids.narrow(1, args.length - 1, 1).contiguous()}});
  // RANDOM init draws N(0, 1) from a seeded CPU generator: independent of the compute dtype.
  at::Generator generator = at::detail::createCPUGenerator(args.seed + 2);
  const torch::Tensor prompt = torch::randn({args.num_virtual_tokens, config.hidden_size}, generator, torch::kFloat32);
  SaveSafetensors((fs::path(args.out) / "prompt.safetensors").string(), {{"prompt", prompt}});

  // FLOPs of one step (see the header comment).
  int64_t embedding_params = config.vocab_size * config.hidden_size;
  int64_t block_params = model->NumParameters() - embedding_params * (config.tie_word_embeddings ? 1 : 2);
  const double s = static_cast<double>(args.num_virtual_tokens + args.length);
  const double b = static_cast<double>(args.batch);
  const double attention_width = static_cast<double>(config.num_attention_heads * config.head_dim);
  const double flops = 4.0 * static_cast<double>(block_params) * b * s +
                       12.0 * static_cast<double>(config.num_hidden_layers) * b * s * s * attention_width +
                       4.0 * static_cast<double>(config.vocab_size * config.hidden_size) * b;
  const nlohmann::json info = {{"parameters", model->NumParameters()},
                               {"block_parameters", block_params},
                               {"batch", args.batch},
                               {"length", args.length},
                               {"num_virtual_tokens", args.num_virtual_tokens},
                               {"flops_per_step", flops}};
  std::ofstream(fs::path(args.out) / "bench.json") << info.dump(2) << "\n";
  std::cout << info.dump() << "\n";
}

// Times the collective operations of the wrapped one.
class TimedCollective final : public Collective {
 public:
  explicit TimedCollective(Collective& inner) : inner_(inner) {}
  int rank() const override { return inner_.rank(); }
  int size() const override { return inner_.size(); }
  void AllReduceSum(torch::Tensor& tensor) override {
    const Clock::time_point start = Clock::now();
    inner_.AllReduceSum(tensor);
    seconds_ += std::chrono::duration<double>(Clock::now() - start).count();
  }
  void Broadcast(torch::Tensor& tensor, int root) override { inner_.Broadcast(tensor, root); }
  double seconds() const { return seconds_; }
  void Reset() { seconds_ = 0.0; }

 private:
  Collective& inner_;
  double seconds_ = 0.0;
};

struct StepArgs {
  bool mpi = false;
  std::string model;
  std::string tokenizer;
  int threads = 1;
  std::string dtype = "float32";
  int64_t steps = 4;
  double learning_rate = 1e-3;
};

void Step(const StepArgs& args) {
  torch::set_num_threads(args.threads);
  ModelLoadOptions options;
  options.dtype = ParseComputeDType(args.dtype);
  std::shared_ptr<const CausalLM> model = CausalLM::Load(args.model, options);
  const double rss_after_load = PeakRssMb();
  const auto tokenizer = Tokenizer::FromFile(args.tokenizer);  // only to satisfy the interface (RANDOM init)

  const auto batch = LoadSafetensors((fs::path(args.model) / "batch.safetensors").string());
  const auto prompt_file = LoadSafetensors((fs::path(args.model) / "prompt.safetensors").string());
  const torch::Tensor input_ids = batch.at("input_ids");
  const torch::Tensor target_ids = batch.at("target_ids");
  TaskData train;
  train.path = "batch.safetensors";
  for (int64_t row = 0; row < input_ids.size(0); ++row) {
    Example example;
    for (int64_t j = 0; j < input_ids.size(1); ++j) example.input_ids.push_back(static_cast<int32_t>(input_ids[row][j].item<int64_t>()));
    example.target_ids.push_back(static_cast<int32_t>(target_ids[row][0].item<int64_t>()));
    example.line = row + 1;
    train.examples.push_back(example);
  }

  TrainerConfig config;
  config.prompt.num_virtual_tokens = prompt_file.at("prompt").size(0);
  config.prompt.init = PromptInit::kRandom;
  config.optimizer.kind = OptimizerKind::kAdamW;
  config.optimizer.weight_decay = 0.0;
  config.learning_rate = args.learning_rate;
  config.batch_size = static_cast<int64_t>(train.examples.size());  // every step sees the whole batch
  config.max_steps = args.steps;
  config.eval_every = 0;
  config.log_every = 1;
  LocalCollective local;
  std::unique_ptr<MpiContext> mpi;
  if (args.mpi) mpi = std::make_unique<MpiContext>();
  TimedCollective collective(mpi ? static_cast<Collective&>(mpi->collective()) : local);
  PromptTrainer trainer(model, *tokenizer, config, TrainerData{&train, nullptr, nullptr}, collective);
  trainer.SetInitialPrompt(prompt_file.at("prompt"));  // the baseline starts from the same one

  std::vector<double> losses;
  std::vector<double> step_seconds;
  std::vector<double> allreduce_seconds;
  Clock::time_point last = Clock::now();
  RunHooks hooks;
  hooks.progress = [&](const TrainProgress& progress) {
    const Clock::time_point now = Clock::now();
    step_seconds.push_back(std::chrono::duration<double>(now - last).count());
    allreduce_seconds.push_back(collective.seconds());
    collective.Reset();
    last = now;
    losses.push_back(progress.train_loss);
  };
  const TrainResult result = trainer.Run(hooks);
  if (result.status != TrainStatus::kSucceeded) throw Error(StrCat("benchmark run ", TrainStatusName(result.status), ": ", result.message));

  double measured = 0;
  double allreduce = 0;
  for (std::size_t i = 1; i < step_seconds.size(); ++i) {
    measured += step_seconds[i];
    allreduce += allreduce_seconds[i];
  }
  const double per_step = step_seconds.size() > 1 ? measured / static_cast<double>(step_seconds.size() - 1) : step_seconds.at(0);
  const double tokens = static_cast<double>(input_ids.size(0) * (input_ids.size(1) + 1));
  const nlohmann::json line = {{"impl", "promptsweep"},  {"threads", args.threads},
                               {"dtype", args.dtype},     {"seconds_per_step", per_step},
                               {"tokens_per_second", tokens / per_step}, {"peak_rss_mb", PeakRssMb()},
                               {"peak_rss_after_load_mb", rss_after_load},
                               {"ranks", collective.size()},
                               {"allreduce_share", measured > 0 ? allreduce / measured : 0.0},
                               {"losses", losses}};
  if (collective.rank() == 0) std::cout << line.dump() << std::endl;
}

struct MmArgs {
  int threads = 1;
  std::string dtype = "float32";
  int64_t n = 2048;
  int repeats = 5;
};

void Mm(const MmArgs& args) {
  torch::set_num_threads(args.threads);
  const torch::ScalarType dtype = ParseComputeDType(args.dtype);
  torch::manual_seed(0);
  const torch::Tensor a = torch::randn({args.n, args.n}).to(dtype);
  const torch::Tensor b = torch::randn({args.n, args.n}).to(dtype);
  torch::Tensor c = torch::mm(a, b);  // warm-up
  double best = 1e30;
  for (int i = 0; i < args.repeats; ++i) {
    const Clock::time_point start = Clock::now();
    c = torch::mm(a, b);
    best = std::min(best, std::chrono::duration<double>(Clock::now() - start).count());
  }
  const double flops = 2.0 * static_cast<double>(args.n) * static_cast<double>(args.n) * static_cast<double>(args.n);
  std::cout << nlohmann::json{{"impl", "mm"}, {"threads", args.threads}, {"dtype", args.dtype}, {"n", args.n},
                              {"flops_per_second", flops / best}}
                   .dump()
            << std::endl;
}

}  // namespace
}  // namespace promptsweep::bench

int main(int argc, char** argv) {
  using namespace promptsweep::bench;
  CLI::App app{"Prompt-tuning training-step benchmark (see bench/run_engine_bench.sh)", "engine_bench"};
  app.require_subcommand(1);
  PrepareArgs prepare;
  CLI::App* prepare_cmd = app.add_subcommand("prepare", "write random weights, a batch and an initial prompt");
  prepare_cmd->add_option("--config", prepare.config, "config.json of the model shape")->required();
  prepare_cmd->add_option("--out", prepare.out, "output directory")->required();
  prepare_cmd->add_option("--batch", prepare.batch, "rows per batch (8)");
  prepare_cmd->add_option("--length", prepare.length, "real tokens per row (128)");
  prepare_cmd->add_option("--num-virtual-tokens", prepare.num_virtual_tokens, "prompt length (20)");
  prepare_cmd->callback([&] { Prepare(prepare); });
  StepArgs step;
  CLI::App* step_cmd = app.add_subcommand("step", "time training steps of PromptTrainer");
  step_cmd->add_option("--model", step.model, "directory written by prepare")->required();
  step_cmd->add_option("--tokenizer", step.tokenizer, "any tokenizer.json (unused by RANDOM init)")->required();
  step_cmd->add_option("--threads", step.threads, "LibTorch threads");
  step_cmd->add_option("--dtype", step.dtype, "float32 or bfloat16");
  step_cmd->add_option("--steps", step.steps, "optimizer steps (the first is warm-up)");
  step_cmd->add_flag("--mpi", step.mpi, "train as one MPI group (run under mpirun -np R); rank 0 prints");
  step_cmd->callback([&] { Step(step); });
  MmArgs mm;
  CLI::App* mm_cmd = app.add_subcommand("mm", "FLOP/s of a large torch::mm");
  mm_cmd->add_option("--threads", mm.threads, "LibTorch threads");
  mm_cmd->add_option("--dtype", mm.dtype, "float32 or bfloat16");
  mm_cmd->add_option("--n", mm.n, "matrix size");
  mm_cmd->callback([&] { Mm(mm); });
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  } catch (const std::exception& e) {
    std::cerr << "engine_bench: error: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
