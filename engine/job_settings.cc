#include "engine/job_settings.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <type_traits>
#include <thread>

#include <CLI/CLI.hpp>
#include <torch/torch.h>
#include <yaml-cpp/yaml.h>

#include "common/error.h"
#include "common/format.h"
#include "engine/trainer.h"

namespace promptsweep {
namespace {

std::string FlagName(const std::string& name) {
  std::string flag = name;
  std::replace(flag.begin(), flag.end(), '_', '-');
  return "--" + flag;
}

std::string KeyName(std::string name) {
  std::replace(name.begin(), name.end(), '-', '_');
  return name;
}

// The single value of a non-repeatable setting.
const std::string& Single(const std::vector<std::string>& values, const std::string& where) {
  if (values.size() != 1) throw Error(StrCat(where, ": expected one value, got ", values.size()));
  return values.front();
}

Setting StringSetting(std::string name, std::string help, std::string* target) {
  return Setting{std::move(name), std::move(help),
                 [target](const std::vector<std::string>& values, const std::string& where) {
                   *target = Single(values, where);
                 }};
}

std::string Where(const std::string& path, const YAML::Mark& mark) {
  return StrCat(path, ":", mark.line + 1, ":", mark.column + 1);
}

// train, dev, test, output, resume_from, checkpoint_every.
std::vector<Setting> JobFileSettings(TrainJobArgs& args) {
  auto path_setting = [](std::string name, std::string help, std::string* target) {
    Setting setting{std::move(name), std::move(help),
                    [target](const std::vector<std::string>& values, const std::string&) { *target = values.back(); }};
    setting.path = true;
    return setting;
  };
  return {
      path_setting("train", "training data (JSONL); required", &args.train_path),
      path_setting("dev", "dev data (JSONL) for evaluation, early stopping and the best prompt", &args.dev_path),
      path_setting("test", "test data (JSONL), evaluated once with the best prompt", &args.test_path),
      path_setting("output", "output directory: the PEFT adapter, metrics.csv, result.json; required", &args.output),
      path_setting("resume_from", "a checkpoint (output/checkpoint.safetensors) to continue from", &args.resume_from),
      Setting{"checkpoint_every", "write output/checkpoint.safetensors every this many steps (0: only when stopped)",
              [&args](const std::vector<std::string>& values, const std::string& where) {
                args.checkpoint_every = ParseInt(values.back(), where);
              }},
  };
}

std::vector<Setting> HyperparameterSettings(TrainerConfig& config) {
  std::vector<Setting> settings;
  for (const TrainerOption& option : TrainerOptions()) {
    const std::string name = option.name;
    settings.push_back(Setting{name, StrCat(option.help, " (default ", option.get(config), ")"),
                               [&config, name](const std::vector<std::string>& values, const std::string& where) {
                                 SetTrainerOption(config, name, values.back(), where);
                               }});
  }
  return settings;
}



// `parse(text, &used)` (a std::sto* function) that must consume the whole text.
template <typename T, typename Parse>
T ParseWhole(const std::string& text, const char* expected, Parse parse) {
  std::size_t used = 0;
  T value{};
  try {
    value = parse(text, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  if (used == 0 || used != text.size()) throw Error(StrCat("expected ", expected, ", got '", text, "'"));
  return value;
}


}  // namespace

// ---- Trainer options -------------------------------------------------------

int64_t ParseIntegerSetting(const std::string& text) {
  return ParseWhole<int64_t>(text, "an integer",
                             [](const std::string& t, std::size_t* used) { return std::stoll(t, used); });
}

double ParseNumberSetting(const std::string& text) {
  const double value = ParseWhole<double>(
      text, "a finite number", [](const std::string& t, std::size_t* used) { return std::stod(t, used); });
  if (!std::isfinite(value)) throw Error(StrCat("expected a finite number, got '", text, "'"));
  return value;
}

// --- Options. ---

namespace {

// A table row for a numeric field reached by `field` (int64_t, uint64_t or double).
template <typename T>
TrainerOption NumberOption(std::string name, std::string help, T& (*field)(TrainerConfig&)) {
  auto set = [field](TrainerConfig& c, const std::string& v) {
    if constexpr (std::is_same_v<T, double>) {
      field(c) = ParseNumberSetting(v);
    } else if constexpr (std::is_same_v<T, uint64_t>) {
      const int64_t value = ParseIntegerSetting(v);
      if (value < 0) throw Error(StrCat("expected a non-negative integer, got '", v, "'"));
      field(c) = static_cast<uint64_t>(value);
    } else {
      field(c) = ParseIntegerSetting(v);
    }
  };
  auto get = [field](const TrainerConfig& c) {
    TrainerConfig copy = c;  // `field` takes a mutable config
    if constexpr (std::is_same_v<T, double>) {
      return FormatShortest(field(copy));  // hashed into job ids (defaults)
    } else {
      return std::to_string(field(copy));
    }
  };
  return TrainerOption{std::move(name), std::move(help), set, get};
}

// A table row for a named choice: `parse` text -> value, `name` value -> text.
template <typename T, typename Parse, typename Name>
TrainerOption ChoiceOption(std::string name, std::string help, T& (*field)(TrainerConfig&), Parse parse,
                           Name to_name) {
  return TrainerOption{std::move(name), std::move(help),
                       [field, parse](TrainerConfig& c, const std::string& v) { field(c) = parse(v); },
                       [field, to_name](const TrainerConfig& c) {
                         TrainerConfig copy = c;
                         return std::string(to_name(field(copy)));
                       }};
}

}  // namespace

const std::vector<TrainerOption>& TrainerOptions() {
  using C = TrainerConfig;
  static const std::vector<TrainerOption> options = {
      NumberOption<int64_t>("num_virtual_tokens", "soft-prompt length N (virtual tokens)",
                            [](C& c) -> int64_t& { return c.prompt.num_virtual_tokens; }),
      ChoiceOption<PromptInit>("init", "prompt initialisation: RANDOM, SAMPLE_VOCAB or TEXT (PEFT's prompt_tuning_init)",
                               [](C& c) -> PromptInit& { return c.prompt.init; }, ParsePromptInit, PromptInitName),
      TrainerOption{"init_text", "text whose token embeddings initialise the prompt (init TEXT)",
                    [](C& c, const std::string& v) { c.prompt.init_text = v; },
                    [](const C& c) { return c.prompt.init_text; }},
      NumberOption<double>("learning_rate", "peak learning rate", [](C& c) -> double& { return c.learning_rate; }),
      ChoiceOption<OptimizerKind>("optimizer",
                                  "adafactor (Lester et al.; transformers' Adafactor without relative step) or adamw",
                                  [](C& c) -> OptimizerKind& { return c.optimizer.kind; }, ParseOptimizerKind,
                                  OptimizerName),
      NumberOption<double>("weight_decay", "decoupled weight decay (both optimizers)",
                           [](C& c) -> double& { return c.optimizer.weight_decay; }),
      NumberOption<double>("adam_beta1", "AdamW beta1", [](C& c) -> double& { return c.optimizer.beta1; }),
      NumberOption<double>("adam_beta2", "AdamW beta2", [](C& c) -> double& { return c.optimizer.beta2; }),
      NumberOption<double>("adam_epsilon", "AdamW epsilon", [](C& c) -> double& { return c.optimizer.adam_eps; }),
      NumberOption<double>("adafactor_decay_rate", "Adafactor second-moment decay exponent (beta2_t = 1 - t^rate)",
                           [](C& c) -> double& { return c.optimizer.decay_rate; }),
      NumberOption<double>("adafactor_clip_threshold", "Adafactor update clipping threshold (RMS)",
                           [](C& c) -> double& { return c.optimizer.clip_threshold; }),
      ChoiceOption<ScheduleKind>("schedule",
                                 "learning-rate schedule after warmup: constant, linear or cosine (decay to 0 at "
                                 "max_steps)",
                                 [](C& c) -> ScheduleKind& { return c.schedule; }, ParseScheduleKind, ScheduleName),
      NumberOption<int64_t>("warmup_steps", "linear warmup steps from 0 to learning_rate",
                            [](C& c) -> int64_t& { return c.warmup_steps; }),
      NumberOption<int64_t>("max_steps", "optimizer steps to train", [](C& c) -> int64_t& { return c.max_steps; }),
      NumberOption<int64_t>("batch_size", "examples per forward pass, over all ranks",
                            [](C& c) -> int64_t& { return c.batch_size; }),
      NumberOption<int64_t>("gradient_accumulation_steps", "forward passes per optimizer step",
                            [](C& c) -> int64_t& { return c.gradient_accumulation_steps; }),
      NumberOption<double>("max_grad_norm", "clip the prompt gradient's L2 norm to this (0: off)",
                           [](C& c) -> double& { return c.max_grad_norm; }),
      NumberOption<int64_t>("eval_every", "evaluate on dev every this many steps (0: only at the end)",
                            [](C& c) -> int64_t& { return c.eval_every; }),
      NumberOption<int64_t>("eval_batch_size", "examples per evaluation batch (0: batch_size)",
                            [](C& c) -> int64_t& { return c.eval_batch_size; }),
      NumberOption<int64_t>("early_stopping_patience",
                            "stop after this many evaluations without a better dev metric (0: never)",
                            [](C& c) -> int64_t& { return c.early_stopping_patience; }),
      ChoiceOption<EvalMetric>("eval_metric",
                               "dev metric for early stopping and the best prompt: auto (accuracy for "
                               "classification, exact_match for generation), loss, accuracy, exact_match",
                               [](C& c) -> EvalMetric& { return c.eval_metric; }, ParseEvalMetric, EvalMetricName),
      NumberOption<uint64_t>("seed", "seed of the prompt initialisation and the data order",
                             [](C& c) -> uint64_t& { return c.seed; }),
      NumberOption<int64_t>("log_every", "progress line and train-loss record every this many steps",
                            [](C& c) -> int64_t& { return c.log_every; }),
  };
  return options;
}

void SetTrainerOption(TrainerConfig& config, const std::string& name, const std::string& value,
                      const std::string& where) {
  const std::string key = KeyName(name);
  for (const TrainerOption& option : TrainerOptions()) {
    if (option.name != key) continue;
    try {
      option.set(config, value);
    } catch (const Error& e) {
      throw Error(StrCat(where, ": ", option.name, ": ", e.what()));
    }
    return;
  }
  std::string known;
  for (const TrainerOption& option : TrainerOptions()) known += (known.empty() ? "" : ", ") + option.name;
  throw Error(StrCat(where, ": unknown setting '", name, "' (known: ", known, ")"));
}


int64_t ParseInt(const std::string& text, const std::string& where) {
  try {
    return ParseIntegerSetting(text);
  } catch (const Error& e) {
    throw Error(StrCat(where, ": ", e.what()));
  }
}

void SettingFlags::Add(CLI::App* command, std::vector<Setting> settings) {
  for (const Setting& setting : settings) {
    auto given = given_;
    const std::string name = setting.name;
    const std::string flag = setting.positional ? name : FlagName(name);
    CLI::Option* option = command->add_option_function<std::vector<std::string>>(
        flag, [given, name](const std::vector<std::string>& values) { (*given)[name] = values; }, setting.help);
    option->expected(1)->type_name(setting.positional ? "DIR" : "VALUE");
    option->multi_option_policy(setting.repeatable ? CLI::MultiOptionPolicy::TakeAll
                                                   : CLI::MultiOptionPolicy::TakeLast);
  }
  Add(std::move(settings));
}

void SettingFlags::Add(std::vector<Setting> settings) {
  for (Setting& setting : settings) settings_.push_back(std::move(setting));
}

const Setting* SettingFlags::Find(const std::string& name) const {
  const std::string key = KeyName(name);
  for (const Setting& setting : settings_) {
    if (setting.name == key) return &setting;
  }
  return nullptr;
}

const Setting& SettingFlags::FindKey(const std::string& name, const std::string& where) const {
  const Setting* setting = Find(name);
  if (setting != nullptr) return *setting;
  std::string known;
  for (const Setting& s : settings_) known += (known.empty() ? "" : ", ") + s.name;
  throw Error(StrCat(where, ": unknown key '", name, "' (known: ", known, ")"));
}

void SettingFlags::ApplyCommandLine() {
  for (const Setting& setting : settings_) {
    const auto it = given_->find(setting.name);
    if (it == given_->end()) continue;
    const std::string where = setting.positional ? setting.name : FlagName(setting.name);
    setting.set(setting.repeatable ? it->second : std::vector<std::string>{it->second.back()}, where);
  }
}

void SettingFlags::ApplyJobFile(const std::string& path) {
  YAML::Node root;
  try {
    root = YAML::LoadFile(path);
  } catch (const YAML::BadFile&) {
    throw Error(StrCat(path, ": cannot open job file"));
  } catch (const YAML::Exception& e) {
    throw Error(StrCat(Where(path, e.mark), ": invalid YAML: ", e.msg));
  }
  if (root.IsNull()) return;  // an empty file sets nothing
  if (!root.IsMap()) throw Error(StrCat(Where(path, root.Mark()), ": a job file is a mapping of setting: value"));
  for (const auto& entry : root) {
    const std::string where = Where(path, entry.first.Mark());
    const std::string key = entry.first.as<std::string>();
    const Setting* setting = &FindKey(key, where);
    const YAML::Node& value = entry.second;
    std::vector<std::string> values;
    if (value.IsScalar()) {
      values.push_back(value.as<std::string>());
    } else if (value.IsSequence() && setting->repeatable) {
      for (const YAML::Node& item : value) {
        if (!item.IsScalar()) throw Error(StrCat(Where(path, item.Mark()), ": ", key, ": expected a scalar"));
        values.push_back(item.as<std::string>());
      }
    } else if (value.IsMap() && setting->repeatable) {
      // label: words  ->  "label=words", the flag's form.
      for (const auto& item : value) {
        if (!item.second.IsScalar()) {
          throw Error(StrCat(Where(path, item.second.Mark()), ": ", key, ": expected a scalar"));
        }
        values.push_back(item.first.as<std::string>() + "=" + item.second.as<std::string>());
      }
    } else {
      throw Error(StrCat(where, ": ", key, ": expected a ", setting->repeatable ? "scalar, list or mapping" : "scalar",
                         " value"));
    }
    if (setting->path) {
      const std::filesystem::path base = std::filesystem::path(path).parent_path();
      for (std::string& v : values) {
        if (!v.empty() && std::filesystem::path(v).is_relative()) v = (base / v).lexically_normal().string();
      }
    }
    setting->set(values, StrCat(where, ": ", setting->name));
  }
}

void SettingFlags::ApplySettings(const SettingList& values, const SettingList& verbalizer, const std::string& where) {
  for (const auto& [key, value] : values) {
    const Setting& setting = FindKey(key, where);
    setting.set({value}, StrCat(where, ": ", setting.name));
  }
  if (verbalizer.empty()) return;
  // label -> words as the flag's "label=words" values.
  const Setting& setting = FindKey("verbalizer", where);
  std::vector<std::string> entries;
  for (const auto& [label, words] : verbalizer) entries.push_back(label + "=" + words);
  setting.set(entries, StrCat(where, ": ", setting.name));
}

std::vector<Setting> ModelSettings(ModelArgs& args) {
  Setting model = StringSetting("model", "model directory (config.json, model.safetensors, tokenizer.json)",
                                &args.model_dir);
  model.positional = true;
  model.path = true;
  Setting tokenizer = StringSetting("tokenizer", "tokenizer.json to use instead of the model directory's", &args.tokenizer);
  tokenizer.path = true;
  return {
      model,
      tokenizer,
      StringSetting("device", "cpu, cuda or cuda:N (default cpu)", &args.device),
      StringSetting("dtype",
                    "compute dtype of the frozen weights: float32, bfloat16 or float16 (the prompt and the loss "
                    "stay float32; default float32)",
                    &args.dtype),
      Setting{"threads", "CPU threads for LibTorch (default: all cores)",
              [&args](const std::vector<std::string>& values, const std::string& where) {
                args.threads = ParseInt(Single(values, where), where);
                if (args.threads < 0) throw Error(StrCat(where, ": must be >= 0"));
              }},
  };
}

std::vector<Setting> TaskSettings(TaskArgs& args) {
  return {
      Setting{"task",
              "classification (JSONL lines {\"text\", \"label\"}; accuracy by rank classification) or generation "
              "({\"input\", \"target\"}; exact match); default classification",
              [&args](const std::vector<std::string>& values, const std::string& where) {
                const std::string& task = Single(values, where);
                if (task != "classification" && task != "generation") {
                  throw Error(StrCat(where, ": unknown task '", task, "' (choices: classification, generation)"));
                }
                args.task = task;
              }},
      StringSetting("template",
                    "input template with {field} placeholders from each JSONL line, e.g. \"{text}\\nLabel:\" "
                    "(default {text} / {input})",
                    &args.template_text),
      Setting{"verbalizer",
              "label=words for classification, repeatable and in label order, e.g. --verbalizer 'spam= spam' "
              "(the words are scored verbatim after the input, so mind the leading space)",
              [&args](const std::vector<std::string>& values, const std::string& where) {
                args.verbalizer.clear();
                for (const std::string& value : values) {
                  const std::size_t eq = value.find('=');
                  if (eq == std::string::npos || eq == 0) {
                    throw Error(StrCat(where, ": expected label=words, got '", value, "'"));
                  }
                  args.verbalizer.emplace_back(value.substr(0, eq), value.substr(eq + 1));
                }
              },
              /*repeatable=*/true},
      Setting{"max_length", "max tokens of input + target; longer inputs are cut, never the target (default 256)",
              [&args](const std::vector<std::string>& values, const std::string& where) {
                args.max_length = ParseInt(Single(values, where), where);
              }},
  };
}

void SetTorchThreads(int64_t threads) {
  const int64_t n =
      threads > 0 ? threads : std::max<int64_t>(1, static_cast<int64_t>(std::thread::hardware_concurrency()));
  torch::set_num_threads(static_cast<int>(n));
}

ModelSpec ModelSpecOf(const ModelArgs& args) {
  ModelSpec spec;
  spec.model_dir = args.model_dir;
  spec.tokenizer = args.tokenizer;
  spec.dtype = args.dtype;
  spec.device = args.device;
  return spec;
}

Engine LoadEngine(const ModelArgs& args) {
  SetTorchThreads(args.threads);
  return LoadModel(ModelSpecOf(args));
}

TaskSpec MakeTaskSpec(const TaskArgs& args, const CausalLM& model) {
  TaskSpec spec;
  spec.kind = args.task == "generation" ? TaskKind::kGeneration : TaskKind::kClassification;
  spec.template_text = args.template_text;
  spec.verbalizer = args.verbalizer;
  spec.max_length = args.max_length;
  if (spec.kind == TaskKind::kGeneration && !model.config().eos_token_ids.empty()) {
    spec.eos_token_id = static_cast<int32_t>(model.config().eos_token_ids.front());
  }
  if (spec.kind == TaskKind::kClassification && spec.verbalizer.empty()) {
    throw Error("a classification task needs a verbalizer: --verbalizer label=words for every label");
  }
  return spec;
}

PromptAdapter LoadAdapterFor(const std::string& dir, const CausalLM& model) {
  PromptAdapter adapter = LoadPromptAdapter(dir);
  CheckAdapterFitsModel(adapter, dir, model.config());
  adapter.prompt = adapter.prompt.to(model.device());
  return adapter;
}

std::vector<int64_t> StopIds(const CausalLM& model) { return model.config().eos_token_ids; }

std::vector<Setting> TrainJobSettings(TrainJobArgs& args) {
  std::vector<Setting> settings = ModelSettings(args.model);
  for (std::vector<Setting> part : {TaskSettings(args.task), JobFileSettings(args), HyperparameterSettings(args.trainer)}) {
    for (Setting& setting : part) settings.push_back(std::move(setting));
  }
  return settings;
}

void ValidateTrainJob(const TrainJobArgs& args) {
  if (args.train_path.empty()) throw Error("no training data: give --train FILE (or 'train:' in the job file)");
  if (args.output.empty()) throw Error("no output directory: give --output DIR (or 'output:' in the job file)");
  ValidateTrainerConfig(args.trainer);
}

// ---- TrainSweepSchema ------------------------------------------------------
TrainerConfig TrainerConfigOf(const JobSettings& settings) {
  TrainerConfig config;
  for (const auto& [name, value] : settings.values) {
    for (const TrainerOption& option : TrainerOptions()) {
      if (option.name == name) option.set(config, value);
    }
  }
  return config;
}

SweepSchema TrainSweepSchema() {
  SweepSchema schema;
  const TrainerConfig defaults;
  for (const TrainerOption& option : TrainerOptions()) {
    schema.trainer_options.push_back(option.name);
    schema.defaults.emplace_back(option.name, option.get(defaults));
  }
  const ModelArgs model;
  const TaskArgs task;
  schema.defaults.insert(schema.defaults.begin(), {{"device", model.device},
                                                   {"dtype", model.dtype},
                                                   {"task", task.task},
                                                   {"template", task.template_text},
                                                   {"max_length", std::to_string(task.max_length)}});
  schema.check_value = [](const std::string& name, const std::string& value) {
    for (const TrainerOption& option : TrainerOptions()) {
      if (option.name != name) continue;
      // The trainer's own parsing and range checks, on this one value.
      // "init TEXT needs init_text" spans two settings: check_job checks it.
      TrainerConfig scratch;
      scratch.prompt.init_text = "-";
      option.set(scratch, value);
      ValidateTrainerConfig(scratch);
      return;
    }
    if (name == "dtype") {
      ParseComputeDType(value);
    } else if (name == "device") {
      // Syntax only: the planning machine need not have the GPU (ParseDevice checks CUDA).
      const bool indexed = value.rfind("cuda:", 0) == 0 && value.size() > 5 &&
                           value.find_first_not_of("0123456789", 5) == std::string::npos;
      if (value != "cpu" && value != "cuda" && !indexed) {
        throw Error(StrCat("unsupported device '", value, "': use cpu, cuda or cuda:N"));
      }
    } else if (name == "task" || name == "max_length") {
      TaskArgs scratch;
      for (const Setting& setting : TaskSettings(scratch)) {
        if (setting.name == name) setting.set({value}, name);
      }
      if (name == "max_length" && scratch.max_length < 1) throw Error("max_length must be >= 1");
    }
  };
  schema.check_job = [](const JobSettings& settings) { ValidateTrainerConfig(TrainerConfigOf(settings)); };
  return schema;
}

Sweep ReadTrainSweep(const std::string& path) { return ReadSweep(path, TrainSweepSchema()); }

// ---- Job files (the writer; SettingFlags::ApplyJobFile reads them) ----------
namespace {

// A finite number written the way YAML reads one back as a number.
bool IsPlainNumber(const std::string& text) {
  if (text.empty()) return false;
  char* end = nullptr;
  const double value = std::strtod(text.c_str(), &end);
  return end == text.c_str() + text.size() && std::isfinite(value);
}

}  // namespace

std::string JobFileYaml(const JobSettings& settings, const std::string& output) {
  YAML::Emitter out;
  // Strings double-quoted, so "null", "~", "yes", leading spaces and newlines
  // read back as the same text; plain numbers stay plain.
  auto value = [&](const std::string& text) {
    if (IsPlainNumber(text) && text.find_first_not_of("0123456789.eE+-") == std::string::npos) {
      out << text;
    } else {
      out << YAML::DoubleQuoted << text;
    }
  };
  out << YAML::BeginMap;
  out << YAML::Key << "output" << YAML::Value;
  value(output);
  for (const auto& [name, text] : settings.values) {
    out << YAML::Key << name << YAML::Value;
    value(text);
    if (name == "task" && !settings.verbalizer.empty()) {
      out << YAML::Key << "verbalizer" << YAML::Value << YAML::BeginMap;
      for (const auto& [label, words] : settings.verbalizer) {
        out << YAML::Key << YAML::DoubleQuoted << label << YAML::Value;
        value(words);
      }
      out << YAML::EndMap;
    }
  }
  out << YAML::EndMap;
  PS_CHECK(out.good(), out.GetLastError());
  return std::string(out.c_str()) + "\n";
}

std::string TaskFileYaml(const TaskArgs& task) {
  YAML::Emitter out;
  out << YAML::Comment("the task this prompt was trained for (promptsweep eval/generate read it; flags override)");
  out << YAML::BeginMap;
  out << YAML::Key << "task" << YAML::Value << YAML::DoubleQuoted << task.task;
  out << YAML::Key << "template" << YAML::Value << YAML::DoubleQuoted << task.template_text;
  if (!task.verbalizer.empty()) {
    out << YAML::Key << "verbalizer" << YAML::Value << YAML::BeginMap;
    for (const auto& [label, words] : task.verbalizer) {
      out << YAML::Key << YAML::DoubleQuoted << label << YAML::Value << YAML::DoubleQuoted << words;
    }
    out << YAML::EndMap;
  }
  out << YAML::Key << "max_length" << YAML::Value << task.max_length;
  out << YAML::EndMap;
  PS_CHECK(out.good(), out.GetLastError());
  return std::string(out.c_str()) + "\n";
}

std::vector<std::string> ExpandAdapterDirs(const std::vector<std::string>& paths) {
  namespace fs = std::filesystem;
  std::vector<std::string> dirs;
  for (const std::string& path : paths) {
    if (fs::exists(fs::path(path) / "adapter_config.json")) {
      dirs.push_back(path);
      continue;
    }
    std::error_code ec;
    std::vector<std::string> found;
    if (fs::is_directory(path, ec)) {
      for (const fs::directory_entry& entry : fs::directory_iterator(path, ec)) {
        if (fs::exists(entry.path() / "adapter_config.json")) found.push_back(entry.path().string());
      }
    }
    if (found.empty()) {
      throw Error(StrCat("--adapter ", path, ": ", fs::is_directory(path, ec) ? "" : "not a directory; ",
                         "no adapter_config.json there and no adapter directories inside (an adapter is "
                         "adapter_config.json + adapter_model.safetensors)"));
    }
    std::sort(found.begin(), found.end());
    dirs.insert(dirs.end(), found.begin(), found.end());
  }
  return dirs;
}

namespace {

std::string DescribeTask(const TaskArgs& task) {
  std::string verbalizer;
  for (const auto& [label, words] : task.verbalizer) verbalizer += StrCat(verbalizer.empty() ? "" : ", ", label, "=", words);
  return StrCat("task ", task.task, ", template \"", task.template_text, "\", verbalizer {", verbalizer,
                "}, max_length ", task.max_length);
}

bool SameTask(const TaskArgs& a, const TaskArgs& b) {
  return a.task == b.task && a.template_text == b.template_text && a.verbalizer == b.verbalizer &&
         a.max_length == b.max_length;
}

}  // namespace

TaskArgs AdaptersTask(const std::vector<std::string>& adapter_dirs, SettingFlags& flags, TaskArgs& task) {
  std::optional<TaskArgs> common;
  std::string first;
  for (const std::string& dir : adapter_dirs) {
    task = TaskArgs{};
    const std::string file = (std::filesystem::path(dir) / kAdapterTaskFile).string();
    if (std::filesystem::exists(file)) flags.ApplyJobFile(file);
    flags.ApplyCommandLine();
    if (!common) {
      common = task;
      first = dir;
    } else if (!SameTask(*common, task)) {
      throw Error(StrCat("adapters ", first, " and ", dir, " were trained for different tasks (", DescribeTask(*common),
                         " vs ", DescribeTask(task),
                         "); evaluate them in separate calls, or give the task flags to use for both"));
    }
  }
  if (!common) {
    task = TaskArgs{};
    flags.ApplyCommandLine();
    return task;
  }
  task = *common;
  return task;
}

}  // namespace promptsweep
