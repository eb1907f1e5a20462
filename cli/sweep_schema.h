// The sweep reader's view of `promptsweep train` (coordinator/sweep_spec.h
// is torch-free, so what the trainer accepts is injected from here): one
// place for every command that reads sweeps (plan, submit, run).
#pragma once

#include "coordinator/sweep_spec.h"
#include "worker/trainer.h"

namespace promptsweep::cli {

// A trainer config with every setting of `settings` that is a trainer option
// (the rest at their defaults). Error for a bad value.
TrainerConfig TrainerConfigOf(const JobSettings& settings);

// The options, defaults and checks of `promptsweep train` job files: trainer
// options by the trainer's own parsing and ranges, device and dtype, task and
// max_length; each job as a whole by ValidateTrainerConfig.
SweepSchema TrainSweepSchema();

}  // namespace promptsweep::cli
