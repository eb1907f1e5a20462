// What `promptsweep worker` is, whatever starts it: a SweepWorker
// (worker/sweep_worker.h) leasing jobs from the coordinator and running them
// with a TrainJobExecutor, or under mpirun / srun with several ranks one
// worker group (worker/worker_group.h) of MpiContext ranks.
#pragma once

#include <cstdint>
#include <string>

#include "client/coordinator_client.h"
#include "engine/trainer.h"

namespace promptsweep {

// The worker command's settings (README "CLI reference", worker).
struct WorkerProcessOptions {
  ClientOptions client;
  std::string device;
  int64_t threads = 0;
  double memory_budget_gb = 0.0;
  std::string work_dir;
  int64_t max_jobs = 0;
  double idle_exit = 0.0;
  // --pack K: leases held at once (SweepWorkerOptions::slots), which the
  // train executor packs; >= 1, and 1 in an MPI group.
  int64_t pack = 1;
  int64_t verify_every = TrainerConfig{}.verify_every;
};

// Runs the worker until shutdown (SIGINT / SIGTERM / SIGUSR2), --max-jobs,
// --idle-exit or an error, which it throws. Error for bad options.
void RunWorkerProcess(WorkerProcessOptions options);

}  // namespace promptsweep
