#include "cli/sweep_client.h"

#include <algorithm>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <unistd.h>

#include <CLI/CLI.hpp>

#include "cli/sweep_schema.h"
#include "common/error.h"
#include "common/format.h"

namespace promptsweep::cli {
namespace {

std::string EnvOr(const char* name, std::string fallback) {
  const char* value = std::getenv(name);
  return value != nullptr && *value != '\0' ? std::string(value) : fallback;
}

std::string Number(std::optional<double> value, int precision = 4) {
  if (!value) return "-";
  char text[32];
  std::snprintf(text, sizeof(text), "%.*f", precision, *value);
  return text;
}

std::atomic<bool> g_shutdown{false};
std::atomic<int> g_interrupts{0};

extern "C" void OnShutdownSignal(int signal) {
  if (signal == SIGINT && g_interrupts.fetch_add(1) >= 1) _exit(130);  // second Ctrl-C: now
  g_shutdown.store(true);
}

}  // namespace

void CoordinatorFlags::Add(CLI::App* command) {
  address = EnvOr("PROMPTSWEEP_COORDINATOR", kDefaultCoordinator);
  token = EnvOr("PROMPTSWEEP_TOKEN", "");
  command->add_option("--coordinator", address,
                      "coordinator address HOST:PORT (default $PROMPTSWEEP_COORDINATOR or 127.0.0.1:7878)")
      ->type_name("HOST:PORT");
  command->add_option("--token", token,
                      "shared secret the coordinator requires (default $PROMPTSWEEP_TOKEN; prefer the variable: "
                      "command lines are visible to other users)");
  command->add_option("--tls-ca", tls_ca, "PEM file of the CA that signed the coordinator's certificate (turns on TLS)")
      ->type_name("FILE");
  command->add_option("--reconnect-timeout", reconnect_timeout_seconds,
                      "seconds to keep retrying an unreachable coordinator (default 60)");
}

ClientOptions CoordinatorFlags::Options() const {
  ClientOptions options;
  options.address = address;
  options.token = token;
  options.tls_ca = tls_ca;
  options.reconnect_timeout_seconds = reconnect_timeout_seconds;
  return options;
}

Sweep ReadTrainSweep(const std::string& path) { return ReadSweep(path, TrainSweepSchema()); }

SweepSubmission MakeSubmission(const Sweep& sweep, const std::string& output_dir) {
  SweepSubmission submission;
  submission.name = sweep.name;
  submission.sweep_file = sweep.path;
  std::ifstream in(sweep.path, std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  submission.yaml = text.str();
  submission.metric_name = sweep.metric.name;
  submission.maximize = sweep.metric.goal == MetricGoal::kMaximize;
  submission.output_dir = output_dir;
  for (const SweepParameter& parameter : sweep.parameters) submission.parameters.push_back(parameter.name);
  submission.jobs.reserve(sweep.jobs.size());
  for (const SweepJob& job : sweep.jobs) {
    SweepSubmission::Job j;
    j.id = job.id;
    j.seed = job.seed;
    j.swept = job.swept;
    j.settings = job.settings.values;
    j.verbalizer = job.settings.verbalizer;
    submission.jobs.push_back(std::move(j));
  }
  return submission;
}

std::string ProgressLine(const SweepStatus& s) {
  const int64_t finished = s.succeeded + s.failed + s.diverged + s.cancelled;
  constexpr int kWidth = 24;
  const int filled = s.total > 0 ? static_cast<int>(kWidth * finished / s.total) : 0;
  std::string line = "[" + std::string(filled, '#') + std::string(kWidth - filled, '.') + "] ";
  line += StrCat(finished, "/", s.total, " done (", s.succeeded, " ok");
  if (s.failed > 0) line += StrCat(", ", s.failed, " failed");
  if (s.diverged > 0) line += StrCat(", ", s.diverged, " diverged");
  if (s.cancelled > 0) line += StrCat(", ", s.cancelled, " cancelled");
  line += StrCat(") | ", s.running + s.leased, " running on ", s.live_workers, " workers");
  if (s.best_dev) line += StrCat(" | best ", s.metric_name, " ", Number(s.best_dev), " (", s.best_job, ")");
  line += StrCat(" | ", FormatDuration(s.elapsed_seconds));
  if (!s.done && s.eta_seconds > 0) line += StrCat(", ETA ", FormatDuration(s.eta_seconds));
  return line;
}

void PrintStatusTable(const SweepStatus& s, std::ostream& out) {
  std::vector<std::string> header = {"job", "state", "try", "step", "loss", "best_dev", "test"};
  for (const std::string& p : s.parameters) header.push_back(p);
  header.push_back("seed");
  header.push_back("worker / message");
  std::vector<std::vector<std::string>> rows = {header};
  for (const JobStatusRow& job : s.jobs) {
    std::vector<std::string> row = {job.job_id,
                                    std::string(JobStateName(job.state)),
                                    std::to_string(job.attempts),
                                    job.max_steps > 0 ? StrCat(job.step, "/", job.max_steps) : std::to_string(job.step),
                                    job.step > 0 ? Number(job.train_loss) : "-",
                                    Number(job.best_dev),
                                    Number(job.test)};
    for (const std::string& p : s.parameters) row.push_back(SettingValue(job.swept, p, "-"));
    row.push_back(std::to_string(job.seed));
    std::string tail = job.worker;
    if (!job.message.empty()) tail += (tail.empty() ? "" : ": ") + job.message;
    if (job.has_checkpoint && !IsFinished(job.state)) tail += " (checkpoint)";
    row.push_back(tail);
    rows.push_back(std::move(row));
  }
  out << FormatTable(rows);
  out << ProgressLine(s) << "\n";
}

const std::atomic<bool>& InstallShutdownSignals() {
  struct sigaction action = {};
  action.sa_handler = OnShutdownSignal;
  sigemptyset(&action.sa_mask);
  sigaction(SIGINT, &action, nullptr);
  sigaction(SIGTERM, &action, nullptr);
  sigaction(SIGUSR2, &action, nullptr);
  return g_shutdown;
}

}  // namespace promptsweep::cli
