// What the engine subcommands (train, eval, generate) share: settings that are
// both command-line flags and job-file keys, loading a model with its
// tokenizer, the task description, and an adapter checked against the model.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "common/job.h"
#include "common/task_data.h"
#include "common/tokenizer.h"
#include "engine/adapter.h"
#include "coordinator/sweep_spec.h"
#include "engine/causal_lm.h"
#include "engine/model_loader.h"
#include "engine/trainer.h"

namespace CLI {
class App;
}  // namespace CLI

namespace promptsweep {

// ---- Trainer options: the registry of TrainerConfig fields by name ----------
// Every hyperparameter by name (the names a job file, a flag or a sweep
// uses): "learning_rate", "num_virtual_tokens", ... `value` is text as it
// comes from YAML or a command line; `where` prefixes errors.
struct TrainerOption {
  std::string name;
  std::string help;
  std::function<void(TrainerConfig&, const std::string& value)> set;  // throws Error on bad values
  std::function<std::string(const TrainerConfig&)> get;
};
const std::vector<TrainerOption>& TrainerOptions();
// The text parsing of the numeric options (whole text, finite numbers), for
// other settings given the same way. Errors say what was expected.
int64_t ParseIntegerSetting(const std::string& text);
double ParseNumberSetting(const std::string& text);
// Sets option `name` ('-' and '_' are the same); Error for an unknown name
// (listing the known ones) or a bad value, prefixed with `where`.
void SetTrainerOption(TrainerConfig& config, const std::string& name, const std::string& value,
                      const std::string& where);

// ---- Settings: flags and job-file keys --------------------------------------
// One setting: `--name-with-dashes` on the command line (or a positional
// argument), `name` in a job file. `set` parses the text values (several only
// for repeatable settings) and throws Error prefixed with `where`.
struct Setting {
  std::string name;
  std::string help;
  std::function<void(const std::vector<std::string>& values, const std::string& where)> set;
  bool repeatable = false;
  bool positional = false;
  // A file or directory: a relative value in a job file is resolved against
  // the job file's directory (on the command line, against the working directory).
  bool path = false;
};

// Registers settings as flags of a subcommand and applies them after parsing:
// job-file values first, then the command line's, so a flag overrides the file.
// Without a command (a worker), it applies a job's settings the same way.
class SettingFlags {
 public:
  void Add(CLI::App* command, std::vector<Setting> settings);
  // Settings that only ApplyJobFile / ApplySettings set (no flags).
  void Add(std::vector<Setting> settings);
  // A YAML mapping of setting names (or with dashes) to scalars, lists of
  // scalars, or for the verbalizer a mapping label: words. Errors name
  // file:line:column; an unknown key is an error that names it.
  void ApplyJobFile(const std::string& path);
  // A job's settings (JobSpec: the keys of a job file, paths already
  // absolute, so taken as they are) and its verbalizer (label -> words), with
  // ApplyJobFile's checks and messages; `where` prefixes them ("job 0123abcd").
  void ApplySettings(const SettingList& values, const SettingList& verbalizer, const std::string& where);
  void ApplyCommandLine();

 private:
  const Setting* Find(const std::string& name) const;
  // Find, or Error "<where>: unknown key '<name>' (known: ...)".
  const Setting& FindKey(const std::string& name, const std::string& where) const;

  std::vector<Setting> settings_;
  // Values given on the command line, by setting name, in order.
  std::shared_ptr<std::map<std::string, std::vector<std::string>>> given_ =
      std::make_shared<std::map<std::string, std::vector<std::string>>>();
};

struct ModelArgs {
  std::string model_dir;
  std::string tokenizer;  // default: the model directory's tokenizer.json
  std::string device = "cpu";
  std::string dtype = "float32";
  int64_t threads = 0;  // 0: all cores
};
// model (positional), --tokenizer, --device, --dtype, --threads.
std::vector<Setting> ModelSettings(ModelArgs& args);

struct TaskArgs {
  std::string task = "classification";
  std::string template_text;
  std::vector<std::pair<std::string, std::string>> verbalizer;
  int64_t max_length = 256;
};
// --task, --template, --verbalizer (repeatable), --max-length.
std::vector<Setting> TaskSettings(TaskArgs& args);

// A loaded model and its tokenizer (the worker's ModelCache holds the same).
using Engine = LoadedModel;
// LibTorch's CPU threads: `threads`, or all cores when 0.
void SetTorchThreads(int64_t threads);

// What LoadModel / ModelCache need of `args` (everything but threads).
ModelSpec ModelSpecOf(const ModelArgs& args);

// Sets LibTorch's thread count, then loads the model and its tokenizer (LoadModel).
Engine LoadEngine(const ModelArgs& args);

// The TaskSpec for `args`; generation targets end with the model's eos.
TaskSpec MakeTaskSpec(const TaskArgs& args, const CausalLM& model);

// The adapter in `dir`, its prompt on the model's device; Error when it does
// not fit the model.
PromptAdapter LoadAdapterFor(const std::string& dir, const CausalLM& model);

// The model's eos ids (generation stops there).
std::vector<int64_t> StopIds(const CausalLM& model);

// An integer setting's value; Error prefixed with `where`.
int64_t ParseInt(const std::string& text, const std::string& where);

// ---- A train job ------------------------------------------------------------
struct TrainJobArgs {
  ModelArgs model;
  TaskArgs task;
  TrainerConfig trainer;
  std::string train_path;
  std::string dev_path;   // optional
  std::string test_path;  // optional
  std::string output;
  std::string resume_from;  // a checkpoint written by an earlier run of this job
  int64_t checkpoint_every = 0;
};

// Every setting of a train job, the keys a `train --config` job file accepts:
// model, task, job (train, dev, test, output, resume_from, checkpoint_every)
// and hyperparameter settings, in that order (the order of `train --help`).
std::vector<Setting> TrainJobSettings(TrainJobArgs& args);

// Error when the settings cannot make a job: no train data, no output, an
// invalid trainer configuration. Cheap, so callers check before loading a model.
void ValidateTrainJob(const TrainJobArgs& args);

// ---- The sweep reader's view of train jobs ----------------------------------
// coordinator/sweep_spec.h is torch-free, so what the trainer accepts is
// injected from here: one place for every command that reads sweeps (plan,
// submit, run).
// A trainer config with every setting of `settings` that is a trainer option
// (the rest at their defaults). Error for a bad value.
TrainerConfig TrainerConfigOf(const JobSettings& settings);

// The options, defaults and checks of `promptsweep train` job files: trainer
// options by the trainer's own parsing and ranges, device and dtype, task and
// max_length; each job as a whole by ValidateTrainerConfig.
SweepSchema TrainSweepSchema();

// Reads and validates a sweep file with TrainSweepSchema (plan, submit, run).
Sweep ReadTrainSweep(const std::string& path);

// ---- Job files ----------------------------------------------------------------
// A `promptsweep train --config` job file: every setting plus `output`, values
// double-quoted unless plain numbers, so the reader (SettingFlags::ApplyJobFile)
// gets back the same texts and so the same job.
std::string JobFileYaml(const JobSettings& settings, const std::string& output);

// The file next to an adapter's PEFT files (which it leaves untouched) that
// records the task the prompt was trained for, as job-file keys: task,
// template, verbalizer, max_length. `eval` and `generate` read it (with
// SettingFlags::ApplyJobFile, so flags override it): the adapter alone says
// how its prompt is meant to be used.
inline constexpr char kAdapterTaskFile[] = "promptsweep_task.yaml";
std::string TaskFileYaml(const TaskArgs& task);

// `--adapter` values: each an adapter directory (adapter_config.json), or a
// directory of adapters (e.g. a sweep's adapters/: the subdirectories that
// hold adapter_config.json, in name order). Error for a path that is neither.
std::vector<std::string> ExpandAdapterDirs(const std::vector<std::string>& paths);

// The task settings that apply to each adapter: `task` reset to the
// defaults, the adapter's kAdapterTaskFile (when it has one) applied to
// `flags`, then the command line, which overrides it. All adapters must come
// out the same: Error naming two that differ (and how) otherwise. `flags`
// must hold TaskSettings(task).
TaskArgs AdaptersTask(const std::vector<std::string>& adapter_dirs, SettingFlags& flags, TaskArgs& task);

}  // namespace promptsweep
