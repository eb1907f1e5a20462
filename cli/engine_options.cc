#include "cli/engine_options.h"

#include <algorithm>
#include <filesystem>
#include <thread>

#include <CLI/CLI.hpp>
#include <torch/torch.h>
#include <yaml-cpp/yaml.h>

#include "common/error.h"
#include "worker/trainer.h"

namespace promptsweep::cli {
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

}  // namespace

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

}  // namespace promptsweep::cli
