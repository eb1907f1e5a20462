// Scheduling overhead of the orchestrator alone: J built-in `sleep` jobs of
// S seconds on W workers with real gRPC clients over 127.0.0.1. The
// coordinator is the real `promptsweep coordinator` process (scheduler +
// SQLite + gRPC server), started by this benchmark; its CPU time and peak RSS
// are read from /proc. The workers are W SweepWorker threads in this process,
// which submits the sweep through the client API (sleep jobs have no YAML).
// Makespan is measured from the submit to the last result; the ideal is
// ceil(J / W) × S.
//
//   orchestrator_bench --promptsweep BIN [--jobs 10000] [--workers 100] [--seconds 1] [--state DIR]
//
// Prints one JSON object (bench/run_orchestrator_bench.sh turns it into the
// README table).
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <iterator>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <CLI/CLI.hpp>

#include "common/error.h"
#include "client/coordinator_client.h"
#include "worker/sweep_worker.h"

namespace {

using Clock = std::chrono::steady_clock;
namespace fs = std::filesystem;

// VmHWM of process `pid`, in kB.
int64_t PeakRssKb(pid_t pid) {
  std::ifstream status("/proc/" + std::to_string(pid) + "/status");
  for (std::string line; std::getline(status, line);) {
    if (line.rfind("VmHWM:", 0) == 0) return std::stoll(line.substr(6));
  }
  return 0;
}

// User + system CPU seconds of process `pid` (/proc/PID/stat fields 14, 15).
double CpuSeconds(pid_t pid) {
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string text((std::istreambuf_iterator<char>(stat)), std::istreambuf_iterator<char>());
  std::istringstream fields(text.substr(text.rfind(')') + 2));  // after "pid (comm) "
  std::string field;
  double ticks = 0;
  for (int i = 3; i <= 15 && fields >> field; ++i) {
    if (i >= 14) ticks += std::stod(field);
  }
  return ticks / static_cast<double>(sysconf(_SC_CLK_TCK));
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

// W SweepWorker threads until `shutdown`.
std::vector<std::thread> StartWorkers(const std::string& address, const std::string& token, int64_t workers,
                                      std::atomic<bool>& shutdown) {
  std::vector<std::thread> threads;
  for (int64_t w = 0; w < workers; ++w) {
    threads.emplace_back([&shutdown, address, token] {
      promptsweep::SweepWorkerOptions options;
      options.client.address = address;
      options.client.token = token;
      options.lease_wait_ms = 1000;
      options.log = [](const std::string&) {};
      promptsweep::SweepWorker worker(options, nullptr, nullptr);
      worker.Run(shutdown);
    });
  }
  return threads;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Scheduling overhead of promptsweep's coordinator with sleep jobs"};
  std::string binary;
  int64_t jobs = 10000;
  int64_t workers = 100;
  double seconds = 1.0;
  std::string state = "";
  app.add_option("--promptsweep", binary, "the promptsweep binary (runs the coordinator)")->required();
  app.add_option("--jobs", jobs, "jobs");
  app.add_option("--workers", workers, "worker threads (real gRPC clients)");
  app.add_option("--seconds", seconds, "seconds each job sleeps");
  app.add_option("--state", state, "state directory, kept afterwards (default: a fresh temporary one, removed)");
  CLI11_PARSE(app, argc, argv);
  const bool keep_state = !state.empty();  // e.g. for `promptsweep report STATE/coordinator/sweeps/sleep-bench`
  if (state.empty()) state = (fs::temp_directory_path() / ("promptsweep-bench-" + std::to_string(getpid()))).string();
  fs::remove_all(state);
  fs::create_directories(state);
  const std::string port_file = state + "/port";
  const std::string token = "bench-" + std::to_string(getpid());

  const pid_t coordinator = fork();  // before gRPC starts here
  if (coordinator == 0) {
    const std::string state_dir = state + "/coordinator";
    execl(binary.c_str(), binary.c_str(), "--log-level", "warn", "coordinator", "--listen", "127.0.0.1:0",
          "--port-file", port_file.c_str(), "--state-dir", state_dir.c_str(), "--token", token.c_str(),
          "--lease-timeout", "30", static_cast<char*>(nullptr));
    std::perror("exec promptsweep coordinator");
    _exit(127);
  }
  std::string port;
  for (int i = 0; i < 300 && port.empty(); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    std::ifstream in(port_file);
    std::getline(in, port);
  }
  if (port.empty()) {
    std::fprintf(stderr, "orchestrator_bench: the coordinator did not start (no %s)\n", port_file.c_str());
    kill(coordinator, SIGKILL);
    return 1;
  }
  const std::string address = "127.0.0.1:" + port;
  std::atomic<bool> shutdown{false};
  std::vector<std::thread> threads = StartWorkers(address, token, workers, shutdown);
  promptsweep::ClientOptions client_options;
  client_options.address = address;
  client_options.token = token;
  promptsweep::CoordinatorClient client(client_options);
  // Workers connect and long-poll before the jobs arrive, as in a real cluster.
  std::this_thread::sleep_for(std::chrono::seconds(2));

  const double cpu_start = CpuSeconds(coordinator);
  const auto start = Clock::now();
  client.Submit(SleepSweep(jobs, seconds));
  const double submit_seconds = std::chrono::duration<double>(Clock::now() - start).count();
  while (!client.Status("sleep-bench", false).done) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  const double makespan = std::chrono::duration<double>(Clock::now() - start).count();
  const double cpu = CpuSeconds(coordinator) - cpu_start;
  const int64_t peak_rss_kb = PeakRssKb(coordinator);
  const promptsweep::SweepStatus status = client.Status("sleep-bench", false);
  shutdown = true;
  for (std::thread& t : threads) t.join();
  kill(coordinator, SIGTERM);
  int child_status = 0;
  waitpid(coordinator, &child_status, 0);

  const double ideal = std::ceil(static_cast<double>(jobs) / static_cast<double>(workers)) * seconds;
  std::printf(
      "{\"jobs\": %lld, \"workers\": %lld, \"seconds\": %g, \"succeeded\": %lld, \"makespan_s\": %.3f, "
      "\"ideal_s\": %.3f, \"overhead_pct\": %.3f, \"jobs_per_s\": %.1f, \"submit_s\": %.3f, "
      "\"coordinator_cpu_s\": %.2f, \"coordinator_peak_rss_mb\": %.1f, \"results_rows\": %lld}\n",
      static_cast<long long>(jobs), static_cast<long long>(workers), seconds,
      static_cast<long long>(status.succeeded), makespan, ideal, ideal > 0 ? 100.0 * (makespan - ideal) / ideal : 0.0,
      static_cast<double>(jobs) / makespan, submit_seconds, cpu, static_cast<double>(peak_rss_kb) / 1024.0,
      [&] {
        std::ifstream csv(status.output_dir + "/results.csv");
        long long rows = -1;  // header
        for (std::string line; std::getline(csv, line);) ++rows;
        return rows;
      }());
  if (!keep_state) fs::remove_all(state);
  return status.succeeded == jobs ? 0 : 1;
}
