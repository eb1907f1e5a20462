// `promptsweep pretrain`: full-parameter pretraining of a small Llama from
// scratch on plain text (how models/ is made), and `promptsweep perplexity`:
// a model's perplexity on a text file.
#include <atomic>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <memory>
#include <string>

#include <CLI/CLI.hpp>

#include "cli/commands.h"
#include "engine/job_settings.h"
#include "common/error.h"
#include "common/signals.h"
#include "common/json_util.h"
#include "common/model_config.h"
#include "common/tokenizer.h"
#include "engine/generate.h"
#include "engine/pretrainer.h"
#include "engine/trainer.h"

namespace promptsweep::cli {
namespace {


struct PretrainArgs {
  std::string train;
  std::string heldout;
  std::string tokenizer;
  std::string output;
  std::string separator = "<|endoftext|>";
  int64_t hidden_size = 256;
  int64_t layers = 4;
  int64_t heads = 4;
  int64_t kv_heads = 0;           // 0: heads
  int64_t intermediate_size = 0;  // 0: 8/3 × hidden rounded up to 32
  int64_t max_position_embeddings = 1024;
  double rope_theta = 10000.0;
  PretrainConfig config;
  std::string device = "cpu";
  int64_t threads = 0;
  bool resume = false;
  std::string sample_text = "The";
};

ModelConfig MakeConfig(const PretrainArgs& args, const Tokenizer& tokenizer, int32_t separator) {
  if (args.hidden_size < 1 || args.layers < 1 || args.heads < 1) {
    throw Error(StrCat("--hidden-size, --layers and --heads must be >= 1, got ", args.hidden_size, ", ", args.layers,
                       " and ", args.heads));
  }
  if (args.kv_heads < 0) throw Error(StrCat("--kv-heads must be >= 1 (or 0: --heads), got ", args.kv_heads));
  if (args.intermediate_size < 0) {
    throw Error(StrCat("--intermediate-size must be >= 1 (or 0: the default), got ", args.intermediate_size));
  }
  if (args.hidden_size % args.heads != 0) {
    throw Error(StrCat("--hidden-size ", args.hidden_size, " is not a multiple of --heads ", args.heads));
  }
  const int64_t kv_heads = args.kv_heads > 0 ? args.kv_heads : args.heads;
  if (args.heads % kv_heads != 0) {
    throw Error(StrCat("--heads ", args.heads, " is not a multiple of --kv-heads ", kv_heads));
  }
  if (args.max_position_embeddings < args.config.seq_length) {
    throw Error(StrCat("--max-position-embeddings ", args.max_position_embeddings, " is below --seq-length ",
                       args.config.seq_length));
  }
  nlohmann::json json = {
      {"architectures", {"LlamaForCausalLM"}},
      {"model_type", "llama"},
      {"hidden_size", args.hidden_size},
      {"intermediate_size",
       args.intermediate_size > 0 ? args.intermediate_size : (args.hidden_size * 8 / 3 + 31) / 32 * 32},
      {"num_hidden_layers", args.layers},
      {"num_attention_heads", args.heads},
      {"num_key_value_heads", kv_heads},
      {"vocab_size", tokenizer.VocabSize()},
      {"max_position_embeddings", args.max_position_embeddings},
      {"rms_norm_eps", 1e-5},
      {"rope_theta", args.rope_theta},
      {"tie_word_embeddings", true},
      {"hidden_act", "silu"},
      {"bos_token_id", separator},
      {"eos_token_id", separator},
      {"torch_dtype", "float32"},
  };
  return ParseModelConfig(json, "the pretraining model settings");
}

void RunPretrain(PretrainArgs& args) {
  const ScopedStopSignals stop_signals;  // SIGINT / SIGTERM: checkpoint and stop
  const std::atomic<bool>& stop = stop_signals.stop_requested();
  ValidatePretrainConfig(args.config);  // a bad flag fails before any model is built
  SetTorchThreads(args.threads);
  const std::string tokenizer_path =
      args.tokenizer.empty() && args.resume ? args.output + "/tokenizer.json" : args.tokenizer;
  if (tokenizer_path.empty()) throw Error("--tokenizer is required (a tokenizer.json; see train-tokenizer)");
  const std::unique_ptr<Tokenizer> tokenizer = Tokenizer::FromFile(tokenizer_path);
  const std::optional<int32_t> separator = tokenizer->TokenToId(args.separator);
  if (!separator) {
    throw Error(StrCat(tokenizer_path, ": has no token '", args.separator,
                       "' to separate documents; pass --separator-token with one it has"));
  }
  ModelLoadOptions load;
  load.device = ParseDevice(args.device);
  load.trainable = true;
  std::shared_ptr<CausalLM> model;
  const bool resuming = args.resume && HasPretrainCheckpoint(args.output);
  if (args.resume && !resuming) {
    std::cerr << "promptsweep: no checkpoint in " << args.output << "/resume; starting from scratch\n";
  }
  if (resuming) {
    model = LoadPretrainCheckpoint(args.output, load);
  } else {
    model = CausalLM::CreateRandom(MakeConfig(args, *tokenizer, *separator), args.config.seed, load);
  }
  std::vector<int32_t> train = TokenizeCorpus(args.train, *tokenizer, *separator);
  std::vector<int32_t> heldout = TokenizeCorpus(args.heldout, *tokenizer, *separator);
  const ModelConfig& config = model->config();
  std::printf("model: Llama, hidden %lld, %lld layers, %lld heads, vocab %lld, %.2fM parameters\n",
              static_cast<long long>(config.hidden_size), static_cast<long long>(config.num_hidden_layers),
              static_cast<long long>(config.num_attention_heads), static_cast<long long>(config.vocab_size),
              model->NumParameters() / 1e6);
  std::printf("data: %zu training tokens (%s), %zu held-out tokens (%s)\n", train.size(), args.train.c_str(),
              heldout.size(), args.heldout.c_str());
  const double epochs = static_cast<double>(args.config.max_steps * args.config.batch_size * args.config.seq_length) /
                        static_cast<double>(train.size());
  std::printf("plan: %lld steps × %lld × %lld tokens = %.2f passes over the training text\n",
              static_cast<long long>(args.config.max_steps), static_cast<long long>(args.config.batch_size),
              static_cast<long long>(args.config.seq_length), epochs);
  Pretrainer trainer(model, *tokenizer, tokenizer_path, args.config, std::move(train), std::move(heldout), args.output);
  if (resuming) {
    trainer.Resume();
    std::printf("resumed from %s/resume at step %lld\n", args.output.c_str(), static_cast<long long>(trainer.step()));
  }
  const std::vector<int32_t> sample_ids = tokenizer->Encode(args.sample_text, /*add_special_tokens=*/false);
  PretrainHooks hooks;
  hooks.stop = &stop;
  hooks.progress = [&](const PretrainProgress& p) {
    const double eta = p.tokens_per_second > 0
                           ? (p.max_steps - p.step) * args.config.batch_size * args.config.seq_length / p.tokens_per_second
                           : 0.0;
    std::printf("step %lld/%lld | loss %.4f | lr %.2e | %.0f tok/s | elapsed %s | ETA %s\n",
                static_cast<long long>(p.step), static_cast<long long>(p.max_steps), p.train_loss, p.learning_rate,
                p.tokens_per_second, FormatDuration(p.elapsed_seconds).c_str(), FormatDuration(eta).c_str());
    if (p.evaluated) {
      std::printf("  held-out perplexity %.2f (loss %.4f, %lld tokens)\n", p.heldout.perplexity, p.heldout.loss,
                  static_cast<long long>(p.heldout.tokens));
      if (!sample_ids.empty()) {
        GenerateOptions options;
        options.max_new_tokens = 24;
        options.stop_ids = {*separator};
        const auto out = Generate(*model, torch::Tensor(), {sample_ids}, options);
        std::printf("  sample: %s%s\n", args.sample_text.c_str(), tokenizer->Decode(out.front(), true).c_str());
      }
    }
    if (p.checkpointed) std::printf("  checkpoint written to %s\n", args.output.c_str());
    std::fflush(stdout);
  };
  const PerplexityResult final_eval = trainer.Run(hooks);
  if (stop.load()) {
    std::printf("stopped by signal at step %lld; checkpoint in %s (continue with --resume)\n",
                static_cast<long long>(trainer.step()), args.output.c_str());
    return;
  }
  std::printf("done: held-out perplexity %.2f over %lld tokens; model in %s\n", final_eval.perplexity,
              static_cast<long long>(final_eval.tokens), args.output.c_str());
}

struct PerplexityArgs {
  ModelArgs model;
  std::string text_file;
  int64_t window = 128;
  int64_t max_tokens = 0;
  std::string separator = "<|endoftext|>";
  SettingFlags flags;
};

void RunPerplexity(PerplexityArgs& args) {
  args.flags.ApplyCommandLine();
  const Engine engine = LoadEngine(args.model);
  const std::optional<int32_t> separator = engine.tokenizer->TokenToId(args.separator);
  if (!separator) throw Error(StrCat("the tokenizer has no token '", args.separator, "'; pass --separator-token"));
  const std::vector<int32_t> tokens = TokenizeCorpus(args.text_file, *engine.tokenizer, *separator);
  const PerplexityResult result = EvaluatePerplexity(*engine.model, tokens, args.window, args.max_tokens);
  std::printf("perplexity %.3f (loss %.5f nats/token) over %lld tokens of %s, window %lld\n", result.perplexity,
              result.loss, static_cast<long long>(result.tokens), args.text_file.c_str(),
              static_cast<long long>(args.window));
}

}  // namespace

void AddPretrainCommand(CLI::App& app) {
  auto args = std::make_shared<PretrainArgs>();
  CLI::App* cmd = app.add_subcommand(
      "pretrain",
      "Pretrain a small LlamaForCausalLM from scratch on plain text (all weights trainable): AdamW, warmup + "
      "cosine schedule, held-out perplexity every --eval-every steps, and a Hugging Face model directory "
      "(config.json, model.safetensors, tokenizer.json, generation_config.json) in --output at every checkpoint. "
      "Text files hold documents separated by blank lines. Ctrl-C / SIGTERM writes a checkpoint and exits; "
      "--resume continues from it exactly.");
  cmd->option_defaults()->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);  // a later flag wins
  cmd->add_option("--train", args->train, "training text file")->required();
  cmd->add_option("--heldout", args->heldout, "held-out text file for perplexity")->required();
  cmd->add_option("--tokenizer", args->tokenizer, "tokenizer.json (copied into the model directory)");
  cmd->add_option("-o,--output", args->output, "model directory to write")->required();
  cmd->add_option("--separator-token", args->separator, "token placed before every document (default <|endoftext|>); also bos/eos");
  cmd->add_option("--hidden-size", args->hidden_size, "model width (default 256)");
  cmd->add_option("--layers", args->layers, "decoder layers (default 4)");
  cmd->add_option("--heads", args->heads, "attention heads (default 4)");
  cmd->add_option("--kv-heads", args->kv_heads, "key/value heads (default: --heads)");
  cmd->add_option("--intermediate-size", args->intermediate_size, "MLP width (default 8/3 × hidden, rounded up to 32)");
  cmd->add_option("--max-position-embeddings", args->max_position_embeddings, "longest sequence (default 1024)");
  cmd->add_option("--rope-theta", args->rope_theta, "RoPE base (default 10000)");
  cmd->add_option("--seq-length", args->config.seq_length, "tokens per training window (default 128)");
  cmd->add_option("--batch-size", args->config.batch_size, "windows per step (default 16)");
  cmd->add_option("--max-steps", args->config.max_steps, "optimizer steps (default 2000)");
  cmd->add_option("--learning-rate", args->config.learning_rate, "peak learning rate (default 3e-3)");
  cmd->add_option("--min-lr-ratio", args->config.min_lr_ratio, "final lr as a share of the peak (default 0.1)");
  cmd->add_option("--warmup-steps", args->config.warmup_steps, "linear warmup steps (default 100)");
  cmd->add_option("--weight-decay", args->config.weight_decay, "AdamW weight decay on matrices (default 0.1)");
  cmd->add_option("--max-grad-norm", args->config.max_grad_norm, "gradient clipping, 0 = off (default 1)");
  cmd->add_option("--eval-every", args->config.eval_every, "steps between held-out evaluations (default 250)");
  cmd->add_option("--eval-tokens", args->config.eval_max_tokens, "held-out tokens per evaluation, 0 = all (default 65536)");
  cmd->add_option("--checkpoint-every", args->config.checkpoint_every, "steps between checkpoints (default 500)");
  cmd->add_option("--log-every", args->config.log_every, "steps between progress lines (default 10)");
  cmd->add_option("--seed", args->config.seed, "initialisation and data-order seed (default 0)");
  cmd->add_option("--save-dtype", args->config.save_dtype, "dtype of the saved weights: float32 or bfloat16 (default float32)");
  cmd->add_option("--device", args->device, "cpu, cuda or cuda:N (default cpu)");
  cmd->add_option("--threads", args->threads, "CPU threads (default: all cores)");
  cmd->add_option("--sample-text", args->sample_text, "text continued greedily at each evaluation (default \"The\")");
  cmd->add_flag("--resume", args->resume, "continue from the checkpoint in --output (same settings and data)");
  cmd->callback([args] { RunPretrain(*args); });
}

void AddPerplexityCommand(CLI::App& app) {
  auto args = std::make_shared<PerplexityArgs>();
  CLI::App* cmd = app.add_subcommand(
      "perplexity",
      "Perplexity of a model on a text file (documents separated by blank lines, each preceded by "
      "--separator-token), over non-overlapping windows of --window tokens.");
  args->flags.Add(cmd, ModelSettings(args->model));
  cmd->add_option("--text-file", args->text_file, "text to score")->required();
  cmd->add_option("--window", args->window, "context window in tokens (default 128)");
  cmd->add_option("--max-tokens", args->max_tokens, "score at most this many tokens, 0 = all (default 0)");
  cmd->add_option("--separator-token", args->separator, "token placed before every document (default <|endoftext|>)");
  cmd->callback([args] { RunPerplexity(*args); });
}

}  // namespace promptsweep::cli
