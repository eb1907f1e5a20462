// `promptsweep plan SWEEP.yaml [--json] [--write-jobs DIR]`: reads and
// validates a sweep (coordinator/sweep_spec.h) and shows its jobs without
// running anything; --write-jobs writes one `train --config` job file per job.
#include <algorithm>
#include <filesystem>
#include <iostream>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "engine/job_settings.h"
#include "common/early_termination.h"
#include "common/error.h"
#include "common/format.h"
#include "common/file_util.h"
#include "common/job.h"
#include "coordinator/sweep_spec.h"

namespace promptsweep::cli {
namespace {

namespace fs = std::filesystem;

struct PlanArgs {
  std::string sweep_path;
  bool json = false;
  std::string write_jobs;
};

void PrintTable(const Sweep& sweep) {
  std::vector<std::string> header = {"job"};
  for (const SweepParameter& p : sweep.parameters) header.push_back(p.name);
  header.push_back("seed");
  std::vector<std::vector<std::string>> rows = {header};
  for (const SweepJob& job : sweep.jobs) {
    std::vector<std::string> row = {job.id};
    for (const auto& [name, value] : job.swept) row.push_back(value);
    row.push_back(std::to_string(job.seed));
    rows.push_back(std::move(row));
  }
  std::cout << FormatTable(rows);
}

// "50, 150, 450"; a long list keeps its first three and its last.
std::string ListText(const std::vector<int64_t>& values) {
  std::string text;
  for (std::size_t i = 0; i < values.size(); ++i) {
    if (values.size() > 6 && i >= 3 && i + 1 < values.size()) {
      if (i == 3) text += ", …";
      continue;
    }
    text += StrCat(i == 0 ? "" : ", ", values[i]);
  }
  return text;
}

// The early_terminate line(s): the policy, then its rungs in evaluations and
// steps for each distinct (eval_every, max_steps) of the jobs, per bracket
// (asha). One line when there is one of each:
//   early termination: hyperband (eta 3, strict): rungs at evaluations 1, 3 = steps 50, 150 (of 450; eval_every 50)
std::string EarlyTerminationText(const Sweep& sweep) {
  const EarlyTermination& config = sweep.early_terminate;
  // The rungs shown are the jobs' own (DescribeEarlyTermination's list has no evaluation limit).
  const std::string policy = DescribeEarlyTerminationPolicy(config);
  std::vector<std::pair<int64_t, int64_t>> shapes;  // (eval_every, max_steps), in job order
  for (const SweepJob& job : sweep.jobs) {
    const SettingList& settings = job.settings.values;
    const std::pair<int64_t, int64_t> shape = {ParseInteger(SettingValue(settings, "eval_every")).value_or(0),
                                               ParseInteger(SettingValue(settings, "max_steps")).value_or(0)};
    if (shape.first > 0 && std::find(shapes.begin(), shapes.end(), shape) == shapes.end()) shapes.push_back(shape);
  }
  const int64_t brackets = BracketCount(config);
  std::vector<std::string> lines;
  for (const auto& [eval_every, max_steps] : shapes) {
    const int64_t evaluations = max_steps / eval_every;
    for (int64_t bracket = 0; bracket < brackets; ++bracket) {
      const std::vector<int64_t> rungs = RungIterations(config, evaluations, bracket);
      std::vector<int64_t> steps;
      for (const int64_t rung : rungs) steps.push_back(rung * eval_every);
      std::string text = brackets > 1 ? StrCat("bracket ", bracket, ": ") : "";
      const char* plural = rungs.size() == 1 ? "" : "s";
      if (rungs.empty()) {
        text += StrCat("no rung within ", evaluations, " evaluations, its jobs run to the end");
      } else if (config.type == EarlyTerminationType::kMedian) {
        text += StrCat("every evaluation", config.warmup_evals > 0 ? StrCat(" after ", config.warmup_evals) : "",
                       " = step", plural, " ", ListText(steps));
      } else {
        text += StrCat("rung", plural, " at evaluation", plural, " ", ListText(rungs), " = step", plural, " ",
                       ListText(steps));
      }
      lines.push_back(StrCat(text, " (of ", max_steps, "; eval_every ", eval_every, ")"));
    }
  }
  if (lines.size() == 1) return StrCat("early termination: ", policy, ": ", lines[0], "\n");
  std::string text = StrCat("early termination: ", policy, ":\n");
  for (const std::string& line : lines) text += StrCat("  ", line, "\n");
  return text;
}

nlohmann::ordered_json PlanJson(const Sweep& sweep) {
  nlohmann::ordered_json jobs = nlohmann::ordered_json::array();
  for (const SweepJob& job : sweep.jobs) {
    nlohmann::ordered_json swept = nlohmann::ordered_json::object();
    for (const auto& [name, value] : job.swept) swept[name] = value;
    nlohmann::ordered_json settings = nlohmann::ordered_json::object();
    for (const auto& [name, value] : job.settings.values) settings[name] = value;
    if (!job.settings.verbalizer.empty()) {
      nlohmann::ordered_json verbalizer = nlohmann::ordered_json::object();
      for (const auto& [label, words] : job.settings.verbalizer) verbalizer[label] = words;
      settings["verbalizer"] = verbalizer;
    }
    jobs.push_back({{"id", job.id}, {"seed", job.seed}, {"swept", swept}, {"settings", settings}});
  }
  nlohmann::ordered_json plan = {
      {"name", sweep.name},
      {"sweep_file", sweep.path},
      {"method", sweep.method == SweepMethod::kGrid ? "grid" : "random"},
      {"metric", {{"name", sweep.metric.name},
                  {"goal", sweep.metric.goal == MetricGoal::kMaximize ? "maximize" : "minimize"}}}};
  if (sweep.early_terminate.enabled()) {
    plan["early_terminate"] = nlohmann::ordered_json::parse(EarlyTerminationToJson(sweep.early_terminate));
  }
  plan["summary"] = SweepSummary(sweep);
  plan["warnings"] = sweep.warnings;
  plan["jobs"] = jobs;
  return plan;
}

void WriteJobs(const Sweep& sweep, const std::string& dir) {
  const fs::path root = fs::absolute(dir).lexically_normal();
  for (const SweepJob& job : sweep.jobs) {
    const fs::path job_dir = root / job.id;
    std::error_code ec;
    fs::create_directories(job_dir, ec);
    if (ec) throw Error(StrCat(job_dir.string(), ": cannot create directory: ", ec.message()));
    WriteFileAtomically((job_dir / "job.yaml").string(),
                        StrCat("# Job ", job.id, " of sweep ", sweep.name, " (", sweep.path,
                               ").\n# Run: promptsweep train --config ", (job_dir / "job.yaml").string(), "\n",
                               JobFileYaml(job.settings, job_dir.string())));
  }
}

void Run(const PlanArgs& args) {
  const Sweep sweep = ReadSweep(args.sweep_path, TrainSweepSchema());
  if (!args.write_jobs.empty()) WriteJobs(sweep, args.write_jobs);
  if (args.json) {
    std::cout << PlanJson(sweep).dump(2) << "\n";
  } else {
    PrintTable(sweep);
    std::cout << "\n" << SweepSummary(sweep) << "\n";
    if (sweep.early_terminate.enabled()) std::cout << EarlyTerminationText(sweep);
    for (const std::string& warning : sweep.warnings) std::cout << "warning: " << warning << "\n";
    if (!args.write_jobs.empty()) {
      std::cout << "wrote " << sweep.jobs.size() << " job files: " << args.write_jobs
                << "/<job>/job.yaml (run one with promptsweep train --config FILE)\n";
    }
  }
  for (const std::string& warning : sweep.warnings) {
    if (args.json) std::cerr << "promptsweep: warning: " << warning << "\n";
  }
}

}  // namespace

void AddPlanCommand(CLI::App& app) {
  auto args = std::make_shared<PlanArgs>();
  CLI::App* cmd = app.add_subcommand(
      "plan",
      "Read and validate a sweep YAML and list its jobs (nothing runs): a table of job id, swept values and seed, "
      "and the total. The sweep file has name, method (grid | random), metric {name, goal}, run_cap, seeds, "
      "sample_seed, model {path, tokenizer, device, dtype}, task {file, task, template, verbalizer, max_length, "
      "train, dev, test}, train {trainer settings} and parameters {setting: {values: [...]} | {value: V} | "
      "{min, max, distribution, q}}; values may be mappings of several settings with a label; early_terminate "
      "{type: hyperband | asha | median, ...} stops weak jobs at dev evaluations (the plan shows its rungs in "
      "steps). Relative paths "
      "resolve against the file that names them. Job ids are a hash of every setting: the same sweep gives the "
      "same ids. Full reference: README.md, section \"Sweep YAML reference\".");
  cmd->add_option("sweep", args->sweep_path, "sweep YAML file")->required()->type_name("SWEEP.yaml");
  cmd->add_flag("--json", args->json, "print the jobs (id, seed, swept values, every setting) as JSON");
  cmd->add_option("--write-jobs", args->write_jobs,
                  "write DIR/<job id>/job.yaml for each job: a `promptsweep train --config` file with every "
                  "setting and output: DIR/<job id>")
      ->type_name("DIR");
  cmd->callback([args] { Run(*args); });
}

}  // namespace promptsweep::cli
