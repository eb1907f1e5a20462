// Replays early termination offline on a finished sweep's recorded dev
// curves, with the coordinator's own rule (coordinator/early_stopper.h):
// what a policy would have stopped, the optimizer steps it would have saved,
// and whether it would have kept the best job and the best setting.
//
//   early_termination_replay STATE_DIR [--sweep NAME] [--type hyperband --min-iter 1 --eta 3 ...]
//
// STATE_DIR is a `promptsweep run` output directory (or a coordinator's state
// directory) whose sweep ran without early termination. Jobs are replayed one
// after another in the order they finished (a run with one worker: the order
// they ran), each through its evaluations until the rule stops it, as the job
// table would have decided them live. A stopped job's result is its best dev
// so far; its test figure is unknown (it would have been the best prompt's).
// Prints a Markdown summary.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <iostream>
#include <map>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "common/early_termination.h"
#include "common/error.h"
#include "common/format.h"
#include "coordinator/early_stopper.h"
#include "coordinator/sqlite_store.h"

namespace promptsweep::bench {
namespace {

struct Job {
  std::string id;
  std::string setting;  // the swept values except the seed, "k=v k=v"
  int64_t max_steps = 0;
  std::vector<std::pair<int64_t, double>> dev;  // (step, metric), in step order
  std::optional<double> best_dev, test;
  int64_t finish_seq = 0;
};

struct Outcome {
  bool stopped = false;
  int64_t steps = 0;
  double best = 0.0;
  std::string reason;
};

std::string Fixed(double value, int digits = 4) {
  char text[32];
  std::snprintf(text, sizeof(text), "%.*f", digits, value);
  return text;
}

int Main(int argc, char** argv) {
  CLI::App app{"Replays early termination on a finished sweep's dev curves (coordinator/early_stopper.h)"};
  std::string state_dir, sweep_name, type = "hyperband";
  EarlyTermination flags;
  bool strict = true;
  app.add_option("state_dir", state_dir, "a `promptsweep run` output directory")->required();
  app.add_option("--sweep", sweep_name, "sweep name (default: the only one)");
  app.add_option("--type", type, "hyperband, asha or median");
  app.add_option("--min-iter", flags.min_iter, "hyperband");
  app.add_option("--max-iter", flags.max_iter, "hyperband");
  app.add_option("--s", flags.s, "hyperband");
  app.add_option("--eta", flags.eta, "hyperband eta / asha reduction_factor (default 3 / 4)");
  app.add_option("--strict", strict, "hyperband: compare the value at the rung (true) or the best so far");
  app.add_option("--grace-period", flags.grace_period, "asha");
  app.add_option("--max-t", flags.max_t, "asha");
  app.add_option("--brackets", flags.brackets, "asha");
  app.add_option("--warmup-evals", flags.warmup_evals, "median");
  app.add_option("--min-jobs", flags.min_jobs, "median");
  CLI11_PARSE(app, argc, argv);

  EarlyTermination config = DefaultEarlyTermination(ParseEarlyTerminationType(type));
  if (config.type == EarlyTerminationType::kHyperband) {
    config.min_iter = flags.min_iter > 0 || flags.max_iter > 0 ? flags.min_iter : 1;
    config.max_iter = flags.max_iter;
    config.s = flags.s;
    config.strict = strict;
  }
  if (app.count("--eta") > 0) config.eta = flags.eta;
  config.grace_period = flags.grace_period;
  config.max_t = flags.max_t;
  config.brackets = flags.brackets;
  config.warmup_evals = flags.warmup_evals;
  config.min_jobs = flags.min_jobs;
  ValidateEarlyTermination(config);

  SqliteStore store(state_dir);
  const StoredState state = store.Load();
  if (state.sweeps.empty()) throw Error(StrCat(state_dir, ": no sweep"));
  const StoredSweep* sweep = nullptr;
  for (const StoredSweep& s : state.sweeps) {
    if (sweep_name.empty() ? state.sweeps.size() == 1 : s.name == sweep_name) sweep = &s;
  }
  if (sweep == nullptr) throw Error(StrCat(state_dir, ": give --sweep (", state.sweeps.size(), " sweeps)"));
  const std::string& metric = sweep->metric_name;

  std::map<std::string, Job> jobs;
  for (const StoredJob& stored : state.jobs) {
    if (stored.sweep != sweep->name || !IsSuccess(stored.durable.state)) continue;
    Job& job = jobs[stored.id];
    job.id = stored.id;
    for (const auto& [name, value] : stored.swept) {
      if (name != "seed") job.setting += StrCat(job.setting.empty() ? "" : " ", name, "=", value);
    }
    job.max_steps = ParseInteger(SettingValue(stored.settings, "max_steps")).value_or(0);
    job.best_dev = stored.durable.best_dev;
    job.test = stored.durable.test;
    job.finish_seq = stored.durable.finish_seq;
  }
  for (const auto& [id, row] : store.LoadMetrics(sweep->name)) {
    auto found = jobs.find(id);
    if (found != jobs.end() && row.split == "dev" && row.metric == metric) found->second.dev.emplace_back(row.step, row.value);
  }
  std::vector<Job*> order;
  for (auto& [id, job] : jobs) order.push_back(&job);
  std::sort(order.begin(), order.end(), [](const Job* a, const Job* b) { return a->finish_seq < b->finish_seq; });
  if (order.empty()) throw Error(StrCat(state_dir, ": no finished jobs in sweep ", sweep->name));

  const double sign = sweep->maximize ? 1.0 : -1.0;
  std::map<std::pair<int64_t, int64_t>, std::vector<double>> rungs;  // (bracket, iteration) -> recorded values
  std::map<std::string, Outcome> outcomes;
  int64_t steps_full = 0, steps_replay = 0, stopped = 0;
  for (Job* job : order) {
    Outcome& out = outcomes[job->id];
    const int64_t eval_every = job->dev.empty() ? 0 : job->dev.front().first;
    const int64_t evaluations = eval_every > 0 ? job->max_steps / eval_every : 0;
    out.steps = job->max_steps;
    out.best = -sign * 1e300;
    for (const auto& [step, value] : job->dev) {
      out.best = sign * value > sign * out.best ? value : out.best;
      if (eval_every <= 0 || step % eval_every != 0) continue;
      const RungReport report{step / eval_every, step, evaluations, RungValue(config, value, out.best)};
      const int64_t bracket = BracketOf(config, job->id);
      std::vector<double>& at_rung = rungs[{bracket, report.iteration}];
      const RungDecision decision = DecideAtRung(config, metric, sweep->maximize, report, at_rung, bracket);
      if (decision.rung) at_rung.push_back(report.value);
      if (decision.stop) {
        out.stopped = true;
        out.steps = step;
        out.reason = decision.reason;
        break;
      }
    }
    steps_full += job->max_steps;
    steps_replay += out.steps;
    stopped += out.stopped ? 1 : 0;
  }

  // The best job: by best dev in the full run, and among the replay's results.
  const auto better = [&](double a, double b) { return sign * a > sign * b; };
  const Job* best_full = nullptr;
  const Job* best_replay = nullptr;
  for (const Job* job : order) {
    if (job->best_dev && (best_full == nullptr || better(*job->best_dev, *best_full->best_dev))) best_full = job;
    const Outcome& out = outcomes[job->id];
    if (best_replay == nullptr || better(out.best, outcomes[best_replay->id].best)) best_replay = job;
  }
  // The best setting: the highest mean test over seeds in the full run; how
  // many of its jobs the replay finished.
  std::map<std::string, std::vector<const Job*>> by_setting;
  for (const Job* job : order) by_setting[job->setting].push_back(job);
  std::string best_setting;
  double best_setting_test = -sign * 1e300;
  for (const auto& [setting, members] : by_setting) {
    double sum = 0;
    int64_t count = 0;
    for (const Job* job : members) {
      if (job->test) {
        sum += *job->test;
        ++count;
      }
    }
    if (count > 0 && better(sum / static_cast<double>(count), best_setting_test)) {
      best_setting_test = sum / static_cast<double>(count);
      best_setting = setting;
    }
  }
  int64_t best_setting_finished = 0;
  for (const Job* job : by_setting[best_setting]) best_setting_finished += outcomes[job->id].stopped ? 0 : 1;

  std::cout << "## Early-termination replay: " << sweep->name << " (" << order.size() << " jobs)\n\n"
            << "Policy: " << DescribeEarlyTermination(config) << "\n\n"
            << "| | full run | replay |\n|---|---|---|\n"
            << "| jobs run to the end | " << order.size() << " | " << order.size() - stopped << " |\n"
            << "| optimizer steps | " << steps_full << " | " << steps_replay << " ("
            << Fixed(static_cast<double>(steps_full) / static_cast<double>(std::max<int64_t>(1, steps_replay)), 2)
            << "× fewer) |\n"
            << "| best job (best dev " << metric << ") | " << best_full->id << " " << Fixed(*best_full->best_dev) << " (test "
            << (best_full->test ? Fixed(*best_full->test) : "-") << ") | " << best_replay->id << " "
            << Fixed(outcomes[best_replay->id].best) << " (test " << (best_replay->test ? Fixed(*best_replay->test) : "-")
            << (outcomes[best_replay->id].stopped ? ", of its full run" : "") << ") |\n"
            << "| full run's best job kept | yes | "
            << (outcomes[best_full->id].stopped ? "no: " + outcomes[best_full->id].reason : std::string("yes")) << " |\n"
            << "| best setting by mean test (" << best_setting << ", " << Fixed(best_setting_test) << ") | "
            << by_setting[best_setting].size() << "/" << by_setting[best_setting].size() << " seeds | "
            << best_setting_finished << "/" << by_setting[best_setting].size() << " seeds run to the end |\n";
  return 0;
}

}  // namespace
}  // namespace promptsweep::bench

int main(int argc, char** argv) {
  try {
    return promptsweep::bench::Main(argc, argv);
  } catch (const std::exception& e) {
    std::cerr << "early_termination_replay: " << e.what() << "\n";
    return 1;
  }
}
