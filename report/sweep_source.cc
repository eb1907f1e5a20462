#include "report/sweep_source.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <map>
#include <memory>
#include <set>
#include <unordered_map>
#include <utility>

#include <nlohmann/json.hpp>
#include <yaml-cpp/yaml.h>

#include "common/csv.h"
#include "common/error.h"
#include "common/file_util.h"
#include "common/format.h"
#include "common/json_util.h"
#include "common/log.h"
#include "coordinator/job_table.h"
#include "coordinator/sqlite_store.h"

namespace promptsweep {
namespace {

namespace fs = std::filesystem;

// What the report takes from the sweep YAML: the task file it names
// (task: {file: ...}, resolved against the sweep file's directory) and the
// parameters it samples log-uniformly (distribution: log_uniform_values).
// Nothing when it does not parse: the coordinator read it once, a report
// only decorates with it.
void ReadSweepYaml(const std::string& yaml, SweepSource& source) {
  try {
    const YAML::Node root = YAML::Load(yaml);
    const YAML::Node task = root["task"];
    const YAML::Node file = task && task.IsMap() ? task["file"] : YAML::Node();
    if (file && file.IsScalar()) {
      fs::path path = file.as<std::string>();
      if (path.is_relative() && !source.sweep_file.empty()) path = fs::path(source.sweep_file).parent_path() / path;
      source.task = path.lexically_normal().string();
    }
    const YAML::Node parameters = root["parameters"];
    if (parameters && parameters.IsMap()) {
      for (const auto& entry : parameters) {
        const YAML::Node distribution = entry.second.IsMap() ? entry.second["distribution"] : YAML::Node();
        if (distribution && distribution.IsScalar() && distribution.as<std::string>().find("log") != std::string::npos) {
          source.log_parameters.insert(entry.first.as<std::string>());
        }
      }
    }
  } catch (const YAML::Exception&) {
  }
}

// The state database for `dir`: `dir`/promptsweep.db (a `run` output
// directory), else STATE_DIR/promptsweep.db when `dir` is STATE_DIR/sweeps/<name>.
std::string FindStateDb(const fs::path& dir) {
  const fs::path own = dir / SqliteStore::kDbFile;
  if (fs::is_regular_file(own)) return own.string();
  if (dir.has_parent_path() && dir.parent_path().filename() == "sweeps") {
    const fs::path coordinator = dir.parent_path().parent_path() / SqliteStore::kDbFile;
    if (fs::is_regular_file(coordinator)) return coordinator.string();
  }
  return "";
}

// The attempts of a state from before the attempt log: one per finished job
// with a wall time, ending at its finish.
std::vector<StoredAttempt> ReconstructAttempts(const SweepSource& source) {
  std::vector<StoredAttempt> attempts;
  for (const SourceJob& job : source.jobs) {
    if (!job.finished_at || !job.row.wall_seconds || !std::isfinite(*job.row.wall_seconds)) continue;
    StoredAttempt& attempt = attempts.emplace_back();
    attempt.sweep = source.name;
    attempt.job_id = job.row.job_id;
    attempt.attempt = std::max<int64_t>(1, job.row.attempts);
    attempt.worker = job.row.worker;
    attempt.started = *job.finished_at - *job.row.wall_seconds;
    attempt.ended = job.finished_at;
    attempt.outcome = job.row.status;
    attempt.end_step = job.row.steps.value_or(0);
  }
  return attempts;
}

SweepSource LoadSweepSqlite(const std::string& dir, const std::string& db_path) {
  std::unique_ptr<SqliteStore> store = SqliteStore::OpenForReading(db_path);
  const StoredState state = store->Load();
  const StoredSweep* sweep = nullptr;
  std::string known;
  for (const StoredSweep& candidate : state.sweeps) {
    if (candidate.output_dir == dir) sweep = &candidate;
    known += StrCat(known.empty() ? "" : ", ", candidate.name, " (", candidate.output_dir, ")");
  }
  if (sweep == nullptr) {
    throw Error(StrCat(db_path, ": no sweep writes to ", dir, " (",
                       known.empty() ? std::string("no sweeps") : "sweeps: " + known,
                       "); pass a sweep's output directory"));
  }
  SweepSource source;
  source.dir = dir;
  source.kind = "sqlite";
  source.state_path = db_path;
  source.name = sweep->name;
  source.sweep_file = sweep->sweep_file;
  source.metric = sweep->metric_name;
  source.maximize = sweep->maximize;
  source.early_terminate = sweep->early_terminate;
  source.parameters = sweep->parameters;
  ReadSweepYaml(sweep->yaml, source);
  for (const StoredJob& job : state.jobs) {
    if (job.sweep != sweep->name) continue;
    SourceJob& row = source.jobs.emplace_back();
    row.row = JobTable::ResultRowOf(sweep->parameters, job, job.durable);
    row.max_steps = ParseInteger(SettingValue(job.settings, "max_steps")).value_or(0);
    row.eval_every = ParseInteger(SettingValue(job.settings, "eval_every")).value_or(0);
    if (IsFinished(job.durable.state)) row.finished_at = job.durable.finished_at;
    if (source.model.empty()) source.model = SettingValue(job.settings, "model");
    if (source.test_data.empty()) source.test_data = SettingValue(job.settings, "test");
    if (source.train_data.empty()) source.train_data = SettingValue(job.settings, "train");
    if (source.task.empty()) {
      const std::string train = SettingValue(job.settings, "train");
      if (!train.empty()) source.task = fs::path(train).parent_path().string();
    }
  }
  for (const StoredRung& rung : state.rungs) {
    if (rung.sweep == sweep->name) source.rungs.push_back(rung);
  }
  source.metrics = store->LoadMetrics(sweep->name);
  source.attempts = store->LoadAttempts(sweep->name);
  source.attempts_exact = true;
  // A state from before the attempt log (or jobs that finished before it).
  std::set<std::string> logged;
  for (const StoredAttempt& attempt : source.attempts) logged.insert(attempt.job_id);
  for (StoredAttempt& attempt : ReconstructAttempts(source)) {
    if (logged.count(attempt.job_id) != 0) continue;
    source.attempts.push_back(std::move(attempt));
    source.attempts_exact = false;
  }
  return source;
}

std::optional<double> OptionalNumber(const std::string& text) {
  if (text.empty()) return std::nullopt;
  return ParseDouble(text);
}

std::optional<int64_t> OptionalInteger(const std::string& text) {
  if (text.empty()) return std::nullopt;
  return ParseInteger(text);
}

}  // namespace

SweepSource LoadSweepCsv(const std::string& out_dir) {
  const fs::path dir = NormalizeDir(out_dir);
  const std::string results_path = (dir / ResultsCsv::kResultsFile).string();
  const auto records = ParseCsv(ReadFile(results_path, "the sweep's results"), results_path);
  if (records.empty()) throw Error(StrCat(results_path, ": empty (no header line): not a sweep's results.csv"));
  const std::vector<std::string>& header = records[0];
  std::unordered_map<std::string, size_t> column;
  for (size_t i = 0; i < header.size(); ++i) column.emplace(header[i], i);
  const auto seed_at = std::find(header.begin(), header.end(), "seed");
  const auto test_at = std::find_if(header.begin(), header.end(),
                                    [](const std::string& name) { return name.rfind("test_", 0) == 0; });
  if (header.empty() || header[0] != "job_id" || seed_at == header.end() || test_at == header.end() ||
      column.count("status") == 0) {
    throw Error(StrCat(results_path, ":1: not a promptsweep results.csv header (job_id, the swept parameters, "
                       "seed, status, ..., test_<metric>, ...)"));
  }
  SweepSource source;
  source.dir = dir.string();
  source.kind = "csv";
  source.name = dir.filename().string();
  source.metric = test_at->substr(5);
  // The CSV does not say the goal: losses and perplexities go down, the rest up.
  source.maximize = source.metric.find("loss") == std::string::npos && source.metric != "perplexity";
  source.parameters.assign(header.begin() + 1, seed_at);
  const auto field = [&](const std::vector<std::string>& record, const std::string& name) -> std::string {
    const auto found = column.find(name);
    return found == column.end() || found->second >= record.size() ? std::string() : record[found->second];
  };
  const std::string& metric = source.metric;
  for (size_t line = 1; line < records.size(); ++line) {
    const std::vector<std::string>& record = records[line];
    if (record.size() != header.size()) {
      throw Error(StrCat(results_path, ":", line + 1, ": ", record.size(), " fields, the header has ",
                         header.size()));
    }
    SourceJob& job = source.jobs.emplace_back();
    ResultRow& row = job.row;
    row.job_id = record[0];
    for (size_t p = 0; p < source.parameters.size(); ++p) row.swept.push_back(record[p + 1]);
    row.seed = static_cast<uint64_t>(OptionalInteger(field(record, "seed")).value_or(0));
    row.status = field(record, "status");
    row.attempts = OptionalInteger(field(record, "attempts")).value_or(0);
    row.final_dev = OptionalNumber(field(record, "final_dev_" + metric));
    row.best_dev = OptionalNumber(field(record, "best_dev_" + metric));
    row.best_step = OptionalInteger(field(record, "best_step"));
    row.test = OptionalNumber(field(record, "test_" + metric));
    row.train_loss = OptionalNumber(field(record, "train_loss"));
    row.steps = OptionalInteger(field(record, "steps"));
    row.stopped_at_step = OptionalInteger(field(record, "stopped_at_step"));
    row.tokens_per_second = OptionalNumber(field(record, "tokens_per_second"));
    row.wall_seconds = OptionalNumber(field(record, "wall_seconds"));
    row.worker = field(record, "worker");
    row.adapter = field(record, "adapter");
    row.message = field(record, "message");
  }
  // The model and data, from a job's result.json.
  for (const SourceJob& job : source.jobs) {
    if (job.row.adapter.empty()) continue;
    const fs::path result = dir / job.row.adapter / "result.json";
    if (!fs::is_regular_file(result)) continue;
    try {
      const nlohmann::json json = ReadJsonFile(result.string());
      source.model = json.value("model", "");
      source.test_data = json.value("test_data", "");
      source.train_data = json.value("train", "");
      if (!source.train_data.empty()) source.task = fs::path(source.train_data).parent_path().string();
    } catch (const std::exception& e) {
      Logger("report").warn("{}: cannot read the model and data paths: {}", result.string(), e.what());
    }
    break;
  }
  const std::string metrics_path = (dir / ResultsCsv::kMetricsFile).string();
  if (fs::is_regular_file(metrics_path)) {
    const auto rows = ParseCsv(ReadFile(metrics_path, "the sweep's metric log"), metrics_path);
    if (rows.empty() || rows[0] != std::vector<std::string>{"job_id", "step", "split", "metric", "value"}) {
      throw Error(StrCat(metrics_path, ":1: not a promptsweep metrics.csv header (job_id,step,split,metric,value)"));
    }
    for (size_t line = 1; line < rows.size(); ++line) {
      const std::vector<std::string>& record = rows[line];
      const std::optional<int64_t> step = record.size() == 5 ? ParseInteger(record[1]) : std::nullopt;
      if (!step) throw Error(StrCat(metrics_path, ":", line + 1, ": not job_id,step,split,metric,value"));
      MetricRow row;
      row.step = *step;
      row.split = record[2];
      row.metric = record[3];
      row.value = ParseDouble(record[4]).value_or(std::nan(""));
      source.metrics.emplace_back(record[0], std::move(row));
    }
  }
  return source;
}

SweepSource LoadSweepSource(const std::string& out_dir, const std::string& state_db) {
  const fs::path dir = NormalizeDir(out_dir);
  if (!fs::is_directory(dir)) {
    throw Error(StrCat(out_dir, ": no such directory (pass a `run` output directory or a coordinator's "
                       "STATE_DIR/sweeps/<name>)"));
  }
  const std::string db = state_db.empty() ? FindStateDb(dir) : state_db;
  if (!db.empty()) {
    try {
      return LoadSweepSqlite(dir.string(), db);
    } catch (const Error& e) {
      // The database may hold other sweeps only; the CSVs are still this one's.
      if (!state_db.empty() || !fs::is_regular_file(dir / ResultsCsv::kResultsFile)) throw;
      Logger("report").warn("{}; reading {} instead", e.what(), (dir / ResultsCsv::kResultsFile).string());
    }
  }
  if (!fs::is_regular_file(dir / ResultsCsv::kResultsFile)) {
    throw Error(StrCat(dir.string(), ": neither a state database (", SqliteStore::kDbFile, ", here or in STATE_DIR ",
                       "of STATE_DIR/sweeps/<name>) nor a ", ResultsCsv::kResultsFile,
                       ": not a sweep's output directory (or no job has finished yet and the state is elsewhere: "
                       "pass --state STATE_DIR/promptsweep.db)"));
  }
  return LoadSweepCsv(dir.string());
}

}  // namespace promptsweep
