// `promptsweep run SWEEP.yaml --workers N`: a whole sweep in one command. A
// coordinator runs in this process on a loopback port with a one-time token;
// N `promptsweep worker` processes (each holding its model loaded across
// jobs) train the jobs; the state lives in the output directory, so running
// the same command again after Ctrl-C, a crash or a reboot resumes the sweep.
#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>
#include <random>
#include <sstream>
#include <thread>

#include <CLI/CLI.hpp>

#include "cli/commands.h"
#include "client/coordinator_flags.h"
#include "client/status_text.h"
#include "client/submission.h"
#include "common/signals.h"
#include "engine/job_settings.h"
#include "common/error.h"
#include "common/file_util.h"
#include "common/log.h"
#include "coordinator/coordinator_server.h"

extern char** environ;

namespace promptsweep::cli {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

struct RunArgs {
  std::string sweep_path;
  int64_t workers = 2;
  std::string output;
  int64_t threads = 0;
  int64_t pack = 1;
  std::string device;
  double lease_timeout = 30.0;
  int64_t max_attempts = 3;
  bool quiet = false;
};

// A fresh random token, so only our workers can talk to our coordinator.
std::string RandomToken() {
  std::random_device device;
  std::string token;
  for (int i = 0; i < 4; ++i) {
    char part[17];
    std::snprintf(part, sizeof(part), "%08x%08x", device(), device());
    token += part;
  }
  return token;
}

class WorkerProcesses {
 public:
  WorkerProcesses(std::vector<std::string> base_args, fs::path log_dir, std::string token)
      : base_args_(std::move(base_args)), log_dir_(std::move(log_dir)), token_(std::move(token)) {}
  ~WorkerProcesses() { StopAll(10.0); }

  void Start(std::size_t index) {
    if (pids_.size() <= index) pids_.resize(index + 1, 0);
    std::vector<std::string> args = base_args_;
    args.push_back("--work-dir");
    args.push_back((log_dir_.parent_path() / ".work" / StrCat("worker-", index)).string());
    std::vector<char*> argv;
    for (std::string& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    std::vector<std::string> env_strings;
    for (char** e = environ; *e != nullptr; ++e) {
      if (std::string(*e).rfind("PROMPTSWEEP_TOKEN=", 0) != 0) env_strings.emplace_back(*e);
    }
    env_strings.push_back("PROMPTSWEEP_TOKEN=" + token_);  // not on the command line: ps shows those
    std::vector<char*> envp;
    for (std::string& e : env_strings) envp.push_back(e.data());
    envp.push_back(nullptr);

    const std::string log = (log_dir_ / StrCat("worker-", index, ".log")).string();
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    posix_spawn_file_actions_adddup2(&actions, STDOUT_FILENO, STDERR_FILENO);
    posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
    pid_t pid = 0;
    const int error = posix_spawn(&pid, "/proc/self/exe", &actions, nullptr, argv.data(), envp.data());
    posix_spawn_file_actions_destroy(&actions);
    if (error != 0) throw Error(StrCat("cannot start a worker process: ", ErrnoText(error)));
    pids_[index] = pid;
  }

  // Indices of workers that exited since the last call, with how.
  std::vector<std::pair<std::size_t, std::string>> Reap() {
    std::vector<std::pair<std::size_t, std::string>> exited;
    for (std::size_t i = 0; i < pids_.size(); ++i) {
      if (pids_[i] <= 0) continue;
      int status = 0;
      if (waitpid(pids_[i], &status, WNOHANG) == pids_[i]) {
        pids_[i] = 0;
        exited.emplace_back(i, WIFSIGNALED(status) ? StrCat("killed by signal ", WTERMSIG(status))
                                                   : StrCat("exit code ", WEXITSTATUS(status)));
      }
    }
    return exited;
  }

  // SIGTERM (workers hand their running job back with a checkpoint), then
  // SIGKILL after `grace` seconds.
  void StopAll(double grace) {
    for (pid_t pid : pids_) {
      if (pid > 0) kill(pid, SIGTERM);
    }
    const auto give_up = Clock::now() + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(grace));
    while (Running() > 0 && Clock::now() < give_up) {
      Reap();
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    for (pid_t& pid : pids_) {
      if (pid > 0) {
        kill(pid, SIGKILL);
        waitpid(pid, nullptr, 0);
        pid = 0;
      }
    }
  }

  int64_t Running() const {
    int64_t n = 0;
    for (pid_t pid : pids_) n += pid > 0 ? 1 : 0;
    return n;
  }

 private:
  std::vector<std::string> base_args_;
  fs::path log_dir_;
  std::string token_;
  std::vector<pid_t> pids_;
};

std::string LastLines(const fs::path& file, int n) {
  std::ifstream in(file);
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  std::string text;
  for (std::size_t i = lines.size() > static_cast<std::size_t>(n) ? lines.size() - n : 0; i < lines.size(); ++i) {
    text += "  " + lines[i] + "\n";
  }
  return text;
}

void Run(const RunArgs& args) {
  if (args.workers < 1) throw Error("--workers must be >= 1");
  if (args.pack < 1) throw Error(StrCat("--pack must be >= 1, got ", args.pack));
  const Sweep sweep = ReadTrainSweep(args.sweep_path);  // invalid: nothing starts
  const fs::path output =
      fs::absolute(args.output.empty() ? fs::path("runs") / sweep.name : fs::path(args.output)).lexically_normal();
  const fs::path log_dir = output / "logs";
  std::error_code ec;
  fs::create_directories(log_dir, ec);
  if (ec) throw Error(StrCat(log_dir.string(), ": cannot create directory: ", ec.message()));

  SchedulerOptions options;
  options.state_dir = output.string();
  options.lease_timeout_seconds = args.lease_timeout;
  options.max_attempts = args.max_attempts;
  Scheduler scheduler(options);
  const SubmitResult submitted = scheduler.Submit(MakeSubmission(sweep, output.string()));
  SweepStatus status = scheduler.Status(sweep.name);
  std::cerr << "sweep " << sweep.name << ": " << SweepSummary(sweep) << "\n  " << submitted.added << " new, "
            << submitted.existing << " from an earlier run ("
            << status.finished() << " finished); output in "
            << output.string() << std::endl;
  for (const std::string& warning : sweep.warnings) std::cerr << "promptsweep: warning: " << warning << "\n";

  const std::atomic<bool>& shutdown = InstallShutdownSignals();
  bool interrupted = false;
  if (!status.done) {
    const std::string token = RandomToken();
    ServerOptions server_options;
    server_options.listen = "127.0.0.1:0";
    server_options.token = token;
    CoordinatorServer server(scheduler, server_options);

    const int64_t cores = std::max<int64_t>(1, static_cast<int64_t>(std::thread::hardware_concurrency()));
    const int64_t threads = args.threads > 0 ? args.threads : std::max<int64_t>(1, cores / args.workers);
    std::vector<std::string> worker_args = {"promptsweep", "--log-level", LogLevelName(), "worker", "--coordinator",
                                            StrCat("127.0.0.1:", server.port()), "--threads", std::to_string(threads)};
    if (!args.device.empty()) {
      worker_args.push_back("--device");
      worker_args.push_back(args.device);
    }
    if (args.pack != 1) {
      worker_args.push_back("--pack");
      worker_args.push_back(std::to_string(args.pack));
    }
    WorkerProcesses workers(worker_args, log_dir, token);
    for (int64_t i = 0; i < args.workers; ++i) workers.Start(static_cast<std::size_t>(i));
    Logger("run").info("started {} workers × {} threads{} (logs: {}/worker-*.log)", args.workers, threads,
                       args.pack > 1 ? StrCat(", up to ", args.pack, " jobs packed each") : std::string(),
                       log_dir.string());

    const bool tty = isatty(STDERR_FILENO) != 0;
    int64_t restarts = 0;
    auto last_print = Clock::now() - std::chrono::hours(1);
    std::string last_counts;
    while (true) {
      status = scheduler.Status(sweep.name, /*with_jobs=*/false);
      const std::string line = ProgressLine(status);
      if (!args.quiet) {
        if (tty) {
          std::cerr << "\r\033[K" << line << std::flush;
        } else if (const std::string counts =
                       StrCat(status.finished(), "/",
                              status.running + status.leased);
                   (counts != last_counts && Clock::now() - last_print >= std::chrono::seconds(2)) ||
                   Clock::now() - last_print >= std::chrono::seconds(60)) {
          // A log file gets a line when jobs finish or start, else once a minute.
          last_counts = counts;
          Logger("run").info("{}", line);
          last_print = Clock::now();
        }
      }
      if (status.done) break;
      if (shutdown.load()) {
        interrupted = true;
        break;
      }
      // A worker that died (OOM killer, a crash) is replaced; its job comes
      // back when its lease runs out.
      for (const auto& [index, how] : workers.Reap()) {
        const fs::path log = log_dir / StrCat("worker-", index, ".log");
        if (++restarts > 2 * args.workers) {
          throw Error(StrCat("workers keep dying (", restarts, " times); last: worker ", index, " ", how, "; see ",
                             log.string(), ":\n", LastLines(log, 5),
                             "run the same command again to resume the sweep"));
        }
        if (tty && !args.quiet) std::cerr << "\n";  // off the progress bar
        Logger("run").warn("worker {} {}; starting another (log {})", index, how, log.string());
        workers.Start(index);
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(250));
    }
    if (tty && !args.quiet) std::cerr << "\n";
    if (interrupted) Logger("run").info("stopping the workers; running jobs hand back checkpoints");
    workers.StopAll(interrupted ? 120.0 : 10.0);
    server.Shutdown();
    status = scheduler.Status(sweep.name);
  }

  PrintStatusTable(status, std::cout);
  std::cout << "results: " << (output / "results.csv").string() << "\nper-step metrics: "
            << (output / "metrics.csv").string() << "\nadapters: " << (output / "adapters").string() << "/<job>\n";
  if (interrupted) {
    std::cerr << "promptsweep: interrupted; run the same command again to resume (finished jobs are kept)\n";
    throw CLI::RuntimeError(130);
  }
  if (status.unsuccessful() > 0) throw CLI::RuntimeError(2);
}

}  // namespace

void AddRunCommand(CLI::App& app) {
  auto args = std::make_shared<RunArgs>();
  CLI::App* cmd = app.add_subcommand(
      "run",
      "Run a whole sweep on this machine: a coordinator in this process (loopback, one-time token) and --workers "
      "worker processes that keep the model loaded between jobs. State, adapters/, results.csv, metrics.csv and "
      "worker logs go to --output; running the same command again resumes (finished jobs are never rerun). "
      "Ctrl-C stops the workers, which hand their running jobs back with a checkpoint. Exit code 0 when every job "
      "succeeded or were stopped early, 2 when some failed, diverged or were cancelled, 130 when interrupted.");
  cmd->add_option("sweep", args->sweep_path, "sweep YAML file")->required()->type_name("SWEEP.yaml");
  cmd->add_option("-n,--workers", args->workers, "worker processes (default 2)");
  cmd->add_option("-o,--output", args->output, "output and state directory (default runs/<sweep name>)")
      ->type_name("DIR");
  cmd->add_option("--threads", args->threads, "LibTorch threads per worker (default: cores / workers)");
  cmd->add_option("--device", args->device, "device for every job: cpu, cuda, cuda:N (default: the sweep's)");
  cmd->add_option("--pack", args->pack, kPackHelp)->type_name("K");
  cmd->add_option("--lease-timeout", args->lease_timeout,
                  "seconds without a heartbeat before a job goes back to the queue (default 30)");
  cmd->add_option("--max-attempts", args->max_attempts, "attempts per job before it is failed (default 3)");
  cmd->add_flag("-q,--quiet", args->quiet, "no progress bar");
  cmd->callback([args] { Run(*args); });
}

}  // namespace promptsweep::cli
