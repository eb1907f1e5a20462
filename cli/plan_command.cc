// `promptsweep plan SWEEP.yaml [--json] [--write-jobs DIR]`: reads and
// validates a sweep (coordinator/sweep_spec.h) and shows its jobs without
// running anything; --write-jobs writes one `train --config` job file per job.
#include <algorithm>
#include <filesystem>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "engine/job_settings.h"
#include "common/error.h"
#include "common/format.h"
#include "common/file_util.h"
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
  return {{"name", sweep.name},
          {"sweep_file", sweep.path},
          {"method", sweep.method == SweepMethod::kGrid ? "grid" : "random"},
          {"metric", {{"name", sweep.metric.name},
                      {"goal", sweep.metric.goal == MetricGoal::kMaximize ? "maximize" : "minimize"}}},
          {"summary", SweepSummary(sweep)},
          {"warnings", sweep.warnings},
          {"jobs", jobs}};
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
      "{min, max, distribution, q}}; values may be mappings of several settings with a label. Relative paths "
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
