// What `promptsweep report` reads about one sweep: its jobs as results.csv
// shows them (finished or not), their metric logs, early-termination rungs
// and the attempt log, from wherever they are:
//
//   - the state database (SQLite, read only, beside a coordinator that may
//     still be running): OUT_DIR/promptsweep.db for a `run` output directory,
//     STATE_DIR/promptsweep.db for a coordinator's STATE_DIR/sweeps/<name>/,
//     or --state; the sweep is the one whose output directory is OUT_DIR;
//   - else OUT_DIR/results.csv and metrics.csv (finished jobs only; no
//     rungs, no timeline), plus a job's adapters/<id>/result.json for the
//     model and data paths when there is one.
//
// Thread safety: plain functions and values.
#pragma once

#include <cstdint>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "common/early_termination.h"
#include "coordinator/results_csv.h"
#include "coordinator/scheduler_store.h"

namespace promptsweep {

struct SourceJob {
  ResultRow row;  // every job, whatever its state (status "pending", "running", ...)
  int64_t max_steps = 0, eval_every = 0;  // from the job's settings (SQLite), else 0
  std::optional<double> finished_at;      // unix time (SQLite)
};

struct SweepSource {
  std::string dir;         // the output directory, absolute
  std::string kind;        // "sqlite" or "csv"
  std::string state_path;  // the database read (sqlite)
  std::string name;
  std::string sweep_file;  // the YAML submitted (sqlite)
  std::string model;       // model directory, when known
  std::string task;        // the task file (task.yaml), else the training data's directory, when known
  std::string train_data;  // a job's training JSONL, when known (the majority-class baseline)
  std::string test_data;   // a job's test JSONL, when known (the eval command line, the baseline)
  std::string metric = "accuracy";
  bool maximize = true;
  EarlyTermination early_terminate;  // type none from CSVs
  std::vector<std::string> parameters;
  std::set<std::string> log_parameters;  // sampled log-uniformly (the YAML's distribution)
  std::vector<SourceJob> jobs;  // submission order (sqlite), else results.csv's order
  std::vector<StoredMetric> metrics;
  std::vector<StoredRung> rungs;
  // The attempt log; `attempts_exact` false when it was reconstructed from
  // each finished job's finish time and wall seconds (a state from before
  // the log; CSVs have no times at all, so no attempts).
  std::vector<StoredAttempt> attempts;
  bool attempts_exact = false;
};

// Reads the sweep written to `out_dir` (see above); `state_db`, when not
// empty, is the database to read. Error naming the directory and what it
// expected when there is neither a state database for it nor a results.csv.
SweepSource LoadSweepSource(const std::string& out_dir, const std::string& state_db = "");

// The sweep's results.csv and metrics.csv (finished jobs only). Error naming
// the file, line and column for a malformed file.
SweepSource LoadSweepCsv(const std::string& out_dir);

}  // namespace promptsweep
