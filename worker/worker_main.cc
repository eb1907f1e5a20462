#include "worker/worker_main.h"

#include <sched.h>
#include <unistd.h>

#include <filesystem>
#include <memory>

#include "common/error.h"
#include "common/log.h"
#include "common/signals.h"
#include "worker/model_cache.h"
#include "worker/mpi_context.h"
#include "worker/sweep_worker.h"
#include "worker/train_executor.h"
#include "worker/worker_group.h"

namespace promptsweep {
namespace {

namespace fs = std::filesystem;

std::string HostName() {
  char name[256] = {};
  if (gethostname(name, sizeof(name) - 1) != 0) return "unknown";
  return name;
}

// LibTorch threads of each rank of a group: --threads, else 1 (one rank per
// core, what mpirun's default binding expects). Warns when the rank is bound
// to fewer cores than it runs threads.
int64_t ThreadsPerRank(const MpiContext& mpi, int64_t threads) {
  if (threads <= 0) threads = 1;
  cpu_set_t cores;
  CPU_ZERO(&cores);
  if (sched_getaffinity(0, sizeof(cores), &cores) == 0 && CPU_COUNT(&cores) < threads) {
    Logger(StrCat("worker rank ", mpi.rank()))
        .warn("{} threads on the {} core(s) this rank is bound to; start mpirun with --bind-to none (or "
              "--map-by slot:PE={}, srun with --cpus-per-task={})",
              threads, CPU_COUNT(&cores), threads, threads);
  }
  return threads;
}

}  // namespace

void RunWorkerProcess(WorkerProcessOptions args) {
  const std::atomic<bool>& shutdown = InstallShutdownSignals();
  if (args.verify_every < 0) throw Error("--verify-every must be >= 0");
  if (args.pack < 1) throw Error(StrCat("--pack must be >= 1, got ", args.pack));
  // Started by mpirun/srun with several ranks: this process is one rank of a
  // worker group (cli/worker_group.h). A plain worker never starts MPI.
  std::unique_ptr<MpiContext> mpi;
  if (MpiContext::LaunchedUnderMpi()) mpi = std::make_unique<MpiContext>();
  const bool group = mpi != nullptr && mpi->size() > 1;
  // Every rank refuses, so none waits for the others.
  if (group && args.pack > 1) {
    throw Error(StrCat("--pack ", args.pack, ": MPI worker groups train one job at a time; drop --pack or run "
                       "workers without mpirun"));
  }
  if (group) args.threads = ThreadsPerRank(*mpi, args.threads);

  TrainJobExecutor::Options executor_options;
  executor_options.memory_budget_bytes = args.memory_budget_gb > 0
                                             ? static_cast<int64_t>(args.memory_budget_gb * (1 << 30))
                                             : DefaultModelMemoryBudget() / (group ? mpi->local_size() : 1);
  const fs::path scratch = args.work_dir.empty() ? fs::temp_directory_path() / StrCat("promptsweep-worker-", getpid())
                                                 : fs::path(args.work_dir);
  // Ranks may share a node and a --work-dir: each has its own corner of it.
  executor_options.work_dir = (group ? scratch / StrCat("rank-", mpi->rank()) : scratch).string();
  executor_options.collective = group ? &mpi->collective() : nullptr;
  executor_options.verify_every = args.verify_every;
  // How many jobs the SweepWorker runs at once (its slots): the executor's
  // Run is called from up to this many threads concurrently, and it trains
  // the jobs of one model in one pack (one forward/backward per step).
  const int64_t pack = args.pack;
  executor_options.pack = pack;
  TrainJobExecutor executor(executor_options);
  // The job's own device applies unless the worker was given one.
  JobExecutor run_job = [&](const JobSpec& job, const JobContext& context) {
    JobContext local = context;
    if (args.device.empty()) local.device.clear();
    return executor.Run(job, local);
  };
  auto loaded_models = [&] { return executor.LoadedModels(); };

  SweepWorkerOptions options;
  options.client = args.client;
  options.info.host = HostName();
  options.info.device = args.device.empty() ? "cpu" : args.device;
  options.info.threads = args.threads;
  options.info.memory_bytes = executor_options.memory_budget_bytes;
  options.info.pid = getpid();
  options.slots = pack;
  options.max_jobs = args.max_jobs;
  options.idle_exit_seconds = args.idle_exit;
  if (!group) {
    SweepWorker worker(options, run_job, loaded_models);
    worker.Run(shutdown);
  } else if (mpi->rank() == 0) {
    Logger("worker").info("a group of {} MPI ranks, {} LibTorch thread(s) per rank", mpi->size(), args.threads);
    WorkerGroup(*mpi, run_job).RunLeader(options, loaded_models, shutdown);
  } else {
    JobContext context;  // no stop flag: rank 0's stop reaches this rank through the trainer
    context.device = options.info.device;
    context.threads = args.threads;
    WorkerGroup(*mpi, run_job).RunFollower(context);
  }
  std::error_code ec;
  if (args.work_dir.empty()) fs::remove_all(scratch, ec);
}

}  // namespace promptsweep
