#include "cli/sweep_schema.h"

#include <string>

#include "cli/engine_options.h"
#include "common/error.h"
#include "worker/causal_lm.h"

namespace promptsweep::cli {

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

}  // namespace promptsweep::cli
