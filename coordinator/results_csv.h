// The one writer of a sweep's results.csv (one row per finished job) and
// metrics.csv (every job's metric log, long format), in OUTPUT_DIR.
//
//   results.csv: job_id,<each swept parameter>,seed,status,attempts,
//                final_dev_<metric>,best_dev_<metric>,best_step,test_<metric>,
//                train_loss,steps,stopped_at_step,tokens_per_second,wall_seconds,worker,
//                adapter,message
//   metrics.csv: job_id,step,split,metric,value
//
// RFC 4180: a field holding a comma, quote, CR or LF is quoted, quotes
// doubled; lines end in LF. results.csv values are printed with %.10g,
// integers plain, a missing value as an empty field; metrics.csv rows are
// common/csv.h's, the format `promptsweep train` writes (shortest round trip).
//
// The scheduler appends a finished job's rows after its SQLite commit and
// rewrites both files from SQLite when it opens; so a crash between the two
// (or in the middle of an append) costs nothing but the rewrite.
//
// Thread safety: stateless apart from its settings; callers serialise writes
// to the same files.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/csv.h"  // CsvField, the metrics.csv rows
#include "common/job.h"

namespace promptsweep {

// One finished job as results.csv shows it.
struct ResultRow {
  std::string job_id;
  std::vector<std::string> swept;  // one value per swept parameter, in the sweep's order
  uint64_t seed = 0;
  std::string status;  // succeeded, stopped, failed, diverged, cancelled
  int64_t attempts = 0;
  // Empty when the job ended without a report (cancelled, lease expired).
  std::optional<double> final_dev, best_dev, test;
  std::optional<int64_t> best_step, steps;
  std::optional<int64_t> stopped_at_step;  // stopped jobs (early termination): the step they ended at
  std::optional<double> train_loss, tokens_per_second, wall_seconds;
  std::string worker;
  std::string adapter;  // "adapters/<job id>" (relative to the output dir), or empty
  std::string message;
};

// A finished job's rows in both files.
struct FinishedJobRows {
  ResultRow result;
  std::vector<MetricRow> metrics;
};

// %.10g: enough digits for any metric, short for the usual ones (0.75, 1e-05).
std::string CsvNumber(double value);

class ResultsCsv {
 public:
  static constexpr char kResultsFile[] = "results.csv";
  static constexpr char kMetricsFile[] = "metrics.csv";

  ResultsCsv(std::string output_dir, std::string metric_name, std::vector<std::string> parameters);

  std::string results_path() const;
  std::string metrics_path() const;

  std::string ResultsHeader() const;  // with its line end
  std::string ResultsLine(const ResultRow& row) const;
  static std::string MetricsHeader();
  static std::string MetricsLines(const std::string& job_id, const std::vector<MetricRow>& rows);

  // Replaces both files by ones holding exactly `jobs`, in that order; each
  // file is written atomically (readers see the old or the new one).
  void Rewrite(const std::vector<FinishedJobRows>& jobs) const;
  // Appends `jobs` with one write(2) per file, creating a file (with its
  // header) when it does not exist. Error naming the file on failure.
  void Append(const std::vector<FinishedJobRows>& jobs) const;

 private:
  std::string output_dir_;
  std::string metric_name_;
  std::vector<std::string> parameters_;
};

}  // namespace promptsweep
