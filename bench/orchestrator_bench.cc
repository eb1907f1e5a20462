// Scheduling overhead of the orchestrator alone: J built-in `sleep` jobs of
// S seconds on W workers with real gRPC clients over 127.0.0.1. The
// coordinator (scheduler + SQLite + gRPC server) runs in this process; the
// workers run as W threads of a second process forked before gRPC starts, so
// the coordinator's peak RSS is its own. Makespan is measured from the
// submit to the last result; the ideal is ceil(J / W) × S.
//
//   orchestrator_bench [--jobs 10000] [--workers 100] [--seconds 1] [--state DIR]
//
// Prints one JSON object (bench/run_orchestrator_bench.sh turns it into the
// README table).
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <string>
#include <thread>
#include <vector>

#include <CLI/CLI.hpp>

#include "common/error.h"
#include "client/coordinator_client.h"
#include "coordinator/coordinator_server.h"
#include "coordinator/scheduler.h"
#include "worker/sweep_worker.h"

namespace {

using Clock = std::chrono::steady_clock;
namespace fs = std::filesystem;

int64_t PeakRssKb() {
  std::ifstream status("/proc/self/status");
  for (std::string line; std::getline(status, line);) {
    if (line.rfind("VmHWM:", 0) == 0) return std::stoll(line.substr(6));
  }
  return 0;
}

double CpuSeconds() {
  return static_cast<double>(std::clock()) / CLOCKS_PER_SEC;
}

promptsweep::SweepSubmission SleepSweep(int64_t jobs, double seconds) {
  promptsweep::SweepSubmission sweep;
  sweep.name = "sleep-bench";
  sweep.metric_name = "loss";
  sweep.maximize = false;
  sweep.parameters = {"index"};
  sweep.jobs.reserve(static_cast<std::size_t>(jobs));
  char seconds_text[32];
  std::snprintf(seconds_text, sizeof(seconds_text), "%g", seconds);
  for (int64_t i = 0; i < jobs; ++i) {
    promptsweep::SweepSubmission::Job job;
    char id[17];
    std::snprintf(id, sizeof(id), "%016llx", static_cast<unsigned long long>(i + 1));
    job.id = id;
    job.kind = std::string(promptsweep::kSleepJob);
    job.swept = {{"index", std::to_string(i)}};
    job.settings = {{"seconds", seconds_text}, {"index", std::to_string(i)}};
    sweep.jobs.push_back(std::move(job));
  }
  return sweep;
}

// The workers' process: W SweepWorker threads until the sweep is done.
int RunWorkers(int port, int64_t workers) {
  std::atomic<bool> shutdown{false};
  std::vector<std::thread> threads;
  const std::string address = "127.0.0.1:" + std::to_string(port);
  for (int64_t w = 0; w < workers; ++w) {
    threads.emplace_back([&] {
      promptsweep::SweepWorkerOptions options;
      options.client.address = address;
      options.lease_wait_ms = 1000;
      options.log = [](const std::string&) {};
      promptsweep::SweepWorker worker(options, nullptr, nullptr);
      worker.Run(shutdown);
    });
  }
  promptsweep::ClientOptions options;
  options.address = address;
  promptsweep::CoordinatorClient client(options);
  while (true) {
    try {
      if (client.Status("sleep-bench", false).done) break;
    } catch (const promptsweep::Error&) {
      // not submitted yet
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  shutdown = true;
  for (std::thread& t : threads) t.join();
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Scheduling overhead of promptsweep's coordinator with sleep jobs"};
  int64_t jobs = 10000;
  int64_t workers = 100;
  double seconds = 1.0;
  std::string state = "";
  app.add_option("--jobs", jobs, "jobs");
  app.add_option("--workers", workers, "worker threads (real gRPC clients, in a second process)");
  app.add_option("--seconds", seconds, "seconds each job sleeps");
  app.add_option("--state", state, "state directory (default: a fresh temporary one)");
  CLI11_PARSE(app, argc, argv);
  if (state.empty()) state = (fs::temp_directory_path() / ("promptsweep-bench-" + std::to_string(getpid()))).string();
  fs::remove_all(state);

  int pipe_fds[2];
  if (pipe(pipe_fds) != 0) return 1;
  const pid_t child = fork();  // before gRPC starts in either process
  if (child == 0) {
    close(pipe_fds[1]);
    int port = 0;
    if (read(pipe_fds[0], &port, sizeof(port)) != sizeof(port)) return 1;
    return RunWorkers(port, workers);
  }
  close(pipe_fds[0]);

  promptsweep::SchedulerOptions options;
  options.state_dir = state;
  options.lease_timeout_seconds = 30.0;
  promptsweep::Scheduler scheduler(options);
  promptsweep::ServerOptions server_options;
  server_options.listen = "127.0.0.1:0";
  promptsweep::CoordinatorServer server(scheduler, server_options);
  const int port = server.port();
  // Workers connect and long-poll before the jobs arrive, as in a real cluster.
  if (write(pipe_fds[1], &port, sizeof(port)) != sizeof(port)) return 1;
  std::this_thread::sleep_for(std::chrono::seconds(2));

  const double cpu_start = CpuSeconds();
  const auto start = Clock::now();
  scheduler.Submit(SleepSweep(jobs, seconds));
  const double submit_seconds = std::chrono::duration<double>(Clock::now() - start).count();
  while (!scheduler.Status("sleep-bench", false).done) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  const double makespan = std::chrono::duration<double>(Clock::now() - start).count();
  const double cpu = CpuSeconds() - cpu_start;
  const promptsweep::SweepStatus status = scheduler.Status("sleep-bench");
  int child_status = 0;
  waitpid(child, &child_status, 0);
  server.Shutdown();

  const double ideal = std::ceil(static_cast<double>(jobs) / static_cast<double>(workers)) * seconds;
  std::printf(
      "{\"jobs\": %lld, \"workers\": %lld, \"seconds\": %g, \"succeeded\": %lld, \"makespan_s\": %.3f, "
      "\"ideal_s\": %.3f, \"overhead_pct\": %.3f, \"jobs_per_s\": %.1f, \"submit_s\": %.3f, "
      "\"coordinator_cpu_s\": %.2f, \"coordinator_peak_rss_mb\": %.1f, \"results_rows\": %lld}\n",
      static_cast<long long>(jobs), static_cast<long long>(workers), seconds,
      static_cast<long long>(status.succeeded), makespan, ideal, ideal > 0 ? 100.0 * (makespan - ideal) / ideal : 0.0,
      static_cast<double>(jobs) / makespan, submit_seconds, cpu, static_cast<double>(PeakRssKb()) / 1024.0,
      [&] {
        std::ifstream csv(status.output_dir + "/results.csv");
        long long rows = -1;  // header
        for (std::string line; std::getline(csv, line);) ++rows;
        return rows;
      }());
  fs::remove_all(state);
  return status.succeeded == jobs ? 0 : 1;
}
