// The orchestration subcommands that talk to (or are) a coordinator:
// `coordinator`, `worker`, `submit`, `status`, `cancel`, `wait`. `run`
// (all of it in one command) is in run_command.cc.
#include <sched.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <iostream>
#include <memory>
#include <thread>

#include <CLI/CLI.hpp>

#include "cli/commands.h"
#include "cli/sweep_client.h"
#include "cli/train_executor.h"
#include "cli/worker_group.h"
#include "common/error.h"
#include "common/file_util.h"
#include "common/version.h"
#include "coordinator/coordinator_server.h"
#include "worker/mpi_context.h"
#include "worker/sweep_worker.h"
#include "worker/trainer.h"

namespace promptsweep::cli {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

std::string HostName() {
  char name[256] = {};
  if (gethostname(name, sizeof(name) - 1) != 0) return "unknown";
  return name;
}

// ---- coordinator ----------------------------------------------------------

struct CoordinatorArgs {
  std::string listen = "127.0.0.1:7878";
  std::string state_dir = "promptsweep-state";
  std::string token;
  std::string tls_cert;
  std::string tls_key;
  double lease_timeout = 30.0;
  int64_t max_attempts = 3;
  std::string port_file;
};

void RunCoordinator(CoordinatorArgs& args) {
  if (args.token.empty()) {
    if (const char* token = std::getenv("PROMPTSWEEP_TOKEN")) args.token = token;
  }
  if (args.lease_timeout <= 0) throw Error("--lease-timeout must be > 0 seconds");
  if (args.max_attempts < 1) throw Error("--max-attempts must be >= 1");
  SchedulerOptions options;
  options.state_dir = fs::absolute(args.state_dir).lexically_normal().string();
  options.lease_timeout_seconds = args.lease_timeout;
  options.max_attempts = args.max_attempts;
  Scheduler scheduler(options);
  const std::atomic<bool>& shutdown = InstallShutdownSignals();
  ServerOptions server_options;
  server_options.listen = args.listen;
  server_options.token = args.token;
  server_options.tls_cert = args.tls_cert;
  server_options.tls_key = args.tls_key;
  CoordinatorServer server(scheduler, server_options);
  const std::string host = args.listen.substr(0, args.listen.rfind(':'));
  std::cerr << "promptsweep coordinator " << kVersion << " listening on " << host << ":" << server.port()
            << (args.tls_cert.empty() ? "" : " (TLS)") << (args.token.empty() ? "" : " (token required)")
            << ", state in " << options.state_dir << " (" << scheduler.SweepNames().size() << " sweeps)"
            << std::endl;
  if (args.token.empty() && host != "127.0.0.1" && host != "localhost" && host != "[::1]") {
    std::cerr << "promptsweep: warning: listening beyond loopback without a token: anyone who can reach "
              << args.listen << " can submit and lease jobs (set PROMPTSWEEP_TOKEN)" << std::endl;
  }
  if (!args.port_file.empty()) WriteFileAtomically(args.port_file, std::to_string(server.port()) + "\n");
  while (!shutdown.load()) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  std::cerr << "promptsweep coordinator: shutting down (state is saved; start it again to continue)" << std::endl;
  server.Shutdown();
}

// ---- worker ---------------------------------------------------------------

struct WorkerArgs {
  CoordinatorFlags coordinator;
  std::string device;
  int64_t threads = 0;
  double memory_budget_gb = 0.0;
  std::string work_dir;
  int64_t max_jobs = 0;
  double idle_exit = 0.0;
  int64_t verify_every = TrainerConfig{}.verify_every;
};

// LibTorch threads of each rank of a group: --threads, else 1 (one rank per
// core, what mpirun's default binding expects). Warns when the rank is bound
// to fewer cores than it runs threads.
int64_t ThreadsPerRank(const MpiContext& mpi, int64_t threads) {
  if (threads <= 0) threads = 1;
  cpu_set_t cores;
  CPU_ZERO(&cores);
  if (sched_getaffinity(0, sizeof(cores), &cores) == 0 && CPU_COUNT(&cores) < threads) {
    std::cerr << "promptsweep worker rank " << mpi.rank() << ": warning: " << threads << " threads on the "
              << CPU_COUNT(&cores) << " core(s) this rank is bound to; start mpirun with --bind-to none (or "
              << "--map-by slot:PE=" << threads << ", srun with --cpus-per-task=" << threads << ")" << std::endl;
  }
  return threads;
}

void RunWorker(WorkerArgs& args) {
  const std::atomic<bool>& shutdown = InstallShutdownSignals();
  if (args.verify_every < 0) throw Error("--verify-every must be >= 0");
  // Started by mpirun/srun with several ranks: this process is one rank of a
  // worker group (cli/worker_group.h). A plain worker never starts MPI.
  std::unique_ptr<MpiContext> mpi;
  if (MpiContext::LaunchedUnderMpi()) mpi = std::make_unique<MpiContext>();
  const bool group = mpi != nullptr && mpi->size() > 1;
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
  TrainJobExecutor executor(executor_options);
  // The job's own device applies unless the worker was given one.
  JobExecutor run_job = [&](const JobSpec& job, const JobContext& context) {
    JobContext local = context;
    if (args.device.empty()) local.device.clear();
    return executor.Run(job, local);
  };
  auto loaded_models = [&] { return executor.LoadedModels(); };

  SweepWorkerOptions options;
  options.client = args.coordinator.Options();
  options.info.host = HostName();
  options.info.device = args.device.empty() ? "cpu" : args.device;
  options.info.threads = args.threads;
  options.info.memory_bytes = executor_options.memory_budget_bytes;
  options.info.pid = getpid();
  options.max_jobs = args.max_jobs;
  options.idle_exit_seconds = args.idle_exit;
  if (!group) {
    SweepWorker worker(options, run_job, loaded_models);
    worker.Run(shutdown);
  } else if (mpi->rank() == 0) {
    std::cerr << "promptsweep worker: a group of " << mpi->size() << " MPI ranks, " << args.threads
              << " LibTorch thread(s) per rank" << std::endl;
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

// ---- submit / status / cancel / wait -------------------------------------

struct SubmitArgs {
  CoordinatorFlags coordinator;
  std::string sweep_path;
  std::string output;
  int64_t max_attempts = 0;
};

void RunSubmit(SubmitArgs& args) {
  const Sweep sweep = ReadTrainSweep(args.sweep_path);  // invalid: nothing is sent
  const std::string output = args.output.empty() ? "" : fs::absolute(args.output).lexically_normal().string();
  SweepSubmission submission = MakeSubmission(sweep, output);
  submission.max_attempts = args.max_attempts;
  CoordinatorClient client(args.coordinator.Options());
  client.Handshake();
  const SubmitResult result = client.Submit(submission);
  std::cout << "sweep " << result.sweep << ": " << SweepSummary(sweep) << "; " << result.added << " new, "
            << result.existing << " already known\nresults: " << result.output_dir << "/results.csv\n";
  for (const std::string& warning : sweep.warnings) std::cerr << "promptsweep: warning: " << warning << "\n";
}

struct StatusArgs {
  CoordinatorFlags coordinator;
  std::string sweep;
  bool watch = false;
  double interval = 2.0;
};

void RunStatus(StatusArgs& args) {
  CoordinatorClient client(args.coordinator.Options());
  client.Handshake();
  if (args.sweep.empty()) {
    const std::vector<std::string> names = client.SweepNames();
    if (names.empty()) std::cout << "no sweeps (submit one with promptsweep submit SWEEP.yaml)\n";
    for (const std::string& name : names) std::cout << name << "  " << ProgressLine(client.Status(name, false)) << "\n";
    return;
  }
  if (!args.watch) {
    PrintStatusTable(client.Status(args.sweep, /*with_jobs=*/true), std::cout);
    return;
  }
  const std::atomic<bool>& shutdown = InstallShutdownSignals();
  const bool tty = isatty(STDOUT_FILENO) != 0;
  while (!shutdown.load()) {
    const SweepStatus status = client.Status(args.sweep, false);
    std::cout << (tty ? "\r\033[K" : "") << ProgressLine(status) << (tty ? "" : "\n") << std::flush;
    if (status.done) break;
    std::this_thread::sleep_for(std::chrono::duration<double>(args.interval));
  }
  if (tty) std::cout << "\n";
}

struct CancelArgs {
  CoordinatorFlags coordinator;
  std::string sweep;
  std::vector<std::string> jobs;
};

void RunCancel(CancelArgs& args) {
  CoordinatorClient client(args.coordinator.Options());
  client.Handshake();
  const int64_t n = client.Cancel(args.sweep, args.jobs);
  std::cout << "cancelled " << n << " job" << (n == 1 ? "" : "s") << " of sweep " << args.sweep << "\n";
}

struct WaitArgs {
  CoordinatorFlags coordinator;
  std::string sweep;
  double timeout = 0.0;
  double interval = 5.0;
};

// Exit code 0 when every job succeeded, 2 when the sweep finished with
// failed, diverged or cancelled jobs, 124 on --timeout.
void RunWait(WaitArgs& args) {
  CoordinatorClient client(args.coordinator.Options());
  client.Handshake();
  const auto start = Clock::now();
  std::string last;
  while (true) {
    const SweepStatus status = client.Status(args.sweep, false);
    const std::string line = ProgressLine(status);
    if (status.done) {
      std::cout << line << "\nresults: " << status.output_dir << "/results.csv\n";
      if (status.failed + status.diverged + status.cancelled > 0) throw CLI::RuntimeError(2);
      return;
    }
    if (line != last) std::cerr << line << std::endl;
    last = line;
    if (args.timeout > 0 && std::chrono::duration<double>(Clock::now() - start).count() >= args.timeout) {
      std::cerr << "promptsweep: wait: timed out after " << args.timeout << " s; the sweep goes on\n";
      throw CLI::RuntimeError(124);
    }
    std::this_thread::sleep_for(std::chrono::duration<double>(args.interval));
  }
}

}  // namespace

void AddCoordinatorCommand(CLI::App& app) {
  auto args = std::make_shared<CoordinatorArgs>();
  CLI::App* cmd = app.add_subcommand(
      "coordinator",
      "Run the coordinator: keeps sweeps and jobs in STATE_DIR/promptsweep.db (SQLite, WAL), hands jobs to "
      "workers over gRPC, takes back leases that are not renewed, writes each sweep's adapters, results.csv and "
      "metrics.csv. Killed and started again on the same --state-dir, it continues where it was: finished jobs "
      "are never rerun. Ctrl-C / SIGTERM stops it.");
  cmd->add_option("--listen", args->listen,
                  "address to listen on (default 127.0.0.1:7878: loopback only; 0.0.0.0:PORT for other machines, "
                  "then with a token); port 0 picks a free port")
      ->type_name("HOST:PORT");
  cmd->add_option("--state-dir", args->state_dir,
                  "state directory: promptsweep.db, and sweeps/<name>/ for sweeps submitted without --output "
                  "(default ./promptsweep-state)")
      ->type_name("DIR");
  cmd->add_option("--token", args->token, "shared secret every call must carry (default $PROMPTSWEEP_TOKEN)");
  cmd->add_option("--tls-cert", args->tls_cert, "TLS certificate chain (PEM); with --tls-key turns on TLS")
      ->type_name("FILE");
  cmd->add_option("--tls-key", args->tls_key, "TLS private key (PEM)")->type_name("FILE");
  cmd->add_option("--lease-timeout", args->lease_timeout,
                  "seconds without a heartbeat before a worker's job goes back to the queue (default 30)");
  cmd->add_option("--max-attempts", args->max_attempts,
                  "attempts per job (lost leases, retryable failures) before it is failed (default 3)");
  cmd->add_option("--port-file", args->port_file, "write the bound port to FILE (useful with port 0)")
      ->type_name("FILE");
  cmd->callback([args] { RunCoordinator(*args); });
}

void AddWorkerCommand(CLI::App& app) {
  auto args = std::make_shared<WorkerArgs>();
  CLI::App* cmd = app.add_subcommand(
      "worker",
      "Run a worker: leases jobs from the coordinator one after another and trains them, keeping frozen models "
      "loaded between jobs (up to --memory-budget-gb). SIGTERM, SIGUSR2 or Ctrl-C preempt it: the running job's "
      "checkpoint goes to the coordinator and the job resumes on the next worker. Reconnects with backoff while "
      "the coordinator is away.\n\n"
      "Under mpirun -np R (or srun -n R with an MPI plugin) the R processes are one worker (a group of R ranks): "
      "rank 0 talks to the coordinator and every rank trains each job on its share of every batch, with the same "
      "result as one process (up to float summation order). --threads applies per rank (default 1 in a group): "
      "run mpirun with --bind-to none, or bind each rank to as many cores as it runs threads "
      "(--map-by slot:PE=T). Preempt a group with SIGUSR2 to mpirun (it forwards SIGUSR1/2; on SIGTERM it kills "
      "the ranks after a few seconds). A rank that dies ends the whole group (mpirun kills the others); the "
      "coordinator re-queues its job when the lease expires, as for any lost worker.");
  args->coordinator.Add(cmd);
  cmd->add_option("--device", args->device, "cpu, cuda or cuda:N for every job (default: the job's own device)");
  cmd->add_option("--threads", args->threads,
                  "LibTorch CPU threads (default: the job's, else all cores; in an MPI group: per rank, default 1)");
  cmd->add_option("--memory-budget-gb", args->memory_budget_gb,
                  "memory for loaded models; least recently used ones are evicted beyond it (default 75% of RAM or "
                  "of the cgroup limit, shared by the ranks of an MPI group on one node)");
  cmd->add_option("--work-dir", args->work_dir, "scratch directory for job outputs (default: a temporary one)")
      ->type_name("DIR");
  cmd->add_option("--max-jobs", args->max_jobs, "exit after this many jobs (default: no limit)");
  cmd->add_option("--idle-exit", args->idle_exit,
                  "exit after this many seconds without a job (default: never; handy in SLURM job arrays)");
  cmd->add_option("--verify-every", args->verify_every,
                  "MPI groups: the ranks check that their prompts are identical every this many steps and fail the "
                  "job if not (default 50; 0: never)");
  cmd->callback([args] { RunWorker(*args); });
}

void AddSubmitCommand(CLI::App& app) {
  auto args = std::make_shared<SubmitArgs>();
  CLI::App* cmd = app.add_subcommand(
      "submit",
      "Read and validate a sweep YAML (nothing is sent if it is invalid) and submit its jobs to the coordinator. "
      "Submitting the same sweep again adds only the jobs the coordinator does not have: job ids are a hash of "
      "every setting.");
  args->coordinator.Add(cmd);
  cmd->add_option("sweep", args->sweep_path, "sweep YAML file")->required()->type_name("SWEEP.yaml");
  cmd->add_option("--output", args->output,
                  "output directory for adapters/, results.csv and metrics.csv, as a path on the coordinator's "
                  "machine (default: the coordinator's STATE_DIR/sweeps/<name>)")
      ->type_name("DIR");
  cmd->add_option("--max-attempts", args->max_attempts, "attempts per job (default: the coordinator's)");
  cmd->callback([args] { RunSubmit(*args); });
}

void AddStatusCommand(CLI::App& app) {
  auto args = std::make_shared<StatusArgs>();
  CLI::App* cmd = app.add_subcommand(
      "status",
      "Show a sweep: one line per job (state, attempt, step, loss, best dev metric, swept values, worker) and a "
      "progress bar with the best metric so far and an ETA. Without a sweep name: every sweep's progress bar.");
  args->coordinator.Add(cmd);
  cmd->add_option("sweep", args->sweep, "sweep name")->type_name("SWEEP");
  cmd->add_flag("-w,--watch", args->watch, "redraw the progress bar until the sweep is done");
  cmd->add_option("--interval", args->interval, "seconds between redraws (default 2)");
  cmd->callback([args] { RunStatus(*args); });
}

void AddCancelCommand(CLI::App& app) {
  auto args = std::make_shared<CancelArgs>();
  CLI::App* cmd = app.add_subcommand(
      "cancel", "Cancel a sweep's unfinished jobs (or only --job ID ...). Running jobs stop at their next heartbeat.");
  args->coordinator.Add(cmd);
  cmd->add_option("sweep", args->sweep, "sweep name")->required()->type_name("SWEEP");
  cmd->add_option("--job", args->jobs, "job id to cancel (repeatable)")->type_name("ID");
  cmd->callback([args] { RunCancel(*args); });
}

void AddWaitCommand(CLI::App& app) {
  auto args = std::make_shared<WaitArgs>();
  CLI::App* cmd = app.add_subcommand(
      "wait",
      "Wait until every job of a sweep has finished, printing progress on stderr. Exit code 0 when all "
      "succeeded, 2 when some failed, diverged or were cancelled, 124 after --timeout.");
  args->coordinator.Add(cmd);
  cmd->add_option("sweep", args->sweep, "sweep name")->required()->type_name("SWEEP");
  cmd->add_option("--timeout", args->timeout, "give up after this many seconds (default: never)");
  cmd->add_option("--interval", args->interval, "seconds between polls (default 5)");
  cmd->callback([args] { RunWait(*args); });
}

}  // namespace promptsweep::cli
