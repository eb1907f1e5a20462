// `promptsweep worker`: flags; the process itself is worker/worker_main.h.
#include <chrono>
#include <filesystem>
#include <iostream>
#include <memory>
#include <thread>

#include <CLI/CLI.hpp>

#include "cli/commands.h"
#include "client/coordinator_flags.h"
#include "worker/worker_main.h"

namespace promptsweep::cli {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

struct WorkerArgs {
  CoordinatorFlags coordinator;
  WorkerProcessOptions process;
};

}  // namespace

void AddWorkerCommand(CLI::App& app) {
  auto args = std::make_shared<WorkerArgs>();
  CLI::App* cmd = app.add_subcommand(
      "worker",
      "Run a worker: leases jobs from the coordinator one after another (with --pack K: up to K at once) and "
      "trains them, keeping frozen models loaded between jobs (up to --memory-budget-gb). SIGTERM, SIGUSR2 or "
      "Ctrl-C preempt it: each running job's checkpoint goes to the coordinator and the job resumes on the next "
      "worker. Reconnects with backoff while "
      "the coordinator is away.\n\n"
      "Under mpirun -np R (or srun -n R with an MPI plugin) the R processes are one worker (a group of R ranks): "
      "rank 0 talks to the coordinator and every rank trains each job on its share of every batch, with the same "
      "result as one process (up to float summation order). --threads applies per rank (default 1 in a group): "
      "run mpirun with --bind-to none, or bind each rank to as many cores as it runs threads "
      "(--map-by slot:PE=T). Preempt a group with SIGUSR2 to mpirun (it forwards SIGUSR1/2; on SIGTERM it kills "
      "the ranks after a few seconds). A rank that dies ends the whole group (mpirun kills the others); the "
      "coordinator re-queues its job when the lease expires, as for any lost worker.");
  args->coordinator.Add(cmd);
  cmd->add_option("--device", args->process.device, "cpu, cuda or cuda:N for every job (default: the job's own device)");
  cmd->add_option("--threads", args->process.threads,
                  "LibTorch CPU threads (default: the job's, else all cores; in an MPI group: per rank, default 1)");
  cmd->add_option("--memory-budget-gb", args->process.memory_budget_gb,
                  "memory for loaded models; least recently used ones are evicted beyond it (default 75% of RAM or "
                  "of the cgroup limit, shared by the ranks of an MPI group on one node)");
  cmd->add_option("--work-dir", args->process.work_dir, "scratch directory for job outputs (default: a temporary one)")
      ->type_name("DIR");
  cmd->add_option("--pack", args->process.pack, kPackHelp)->type_name("K");
  cmd->add_option("--max-jobs", args->process.max_jobs, "exit after this many jobs (default: no limit)");
  cmd->add_option("--idle-exit", args->process.idle_exit,
                  "exit after this many seconds without a job (default: never; handy in SLURM job arrays)");
  cmd->add_option("--verify-every", args->process.verify_every,
                  "MPI groups: the ranks check that their prompts are identical every this many steps and fail the "
                  "job if not (default 50; 0: never)");
  cmd->callback([args] {
    args->process.client = args->coordinator.Options();
    RunWorkerProcess(args->process);
  });
}

}  // namespace promptsweep::cli
