// The data of a sweep report: everything the HTML page draws and the
// Markdown tables print, computed here from a SweepSource (sweep_source.h)
// as one JSON value (schema 1, documented field by field in
// report/web/README.md). The page only lays it out; nothing in JavaScript
// reads a CSV or recomputes a statistic.
//
// The statistics:
//   - primary metric: test_<metric> when any job has one, else best_dev;
//   - settings over seeds: jobs with equal swept values pooled, mean and
//     sample standard deviation (n - 1) of the primary metric and best dev;
//   - bins: a numeric parameter with at most 10 distinct values has one bin
//     per value, else 8 equal-width bins (in log10 space for log parameters);
//     categories one bin each. Heatmaps and importance use the bins;
//   - importance: each parameter's main effect, the share of the primary
//     metric's variance it explains alone, as epsilon-squared
//     (SS_between - (k - 1) * MS_within) / SS_total over its k bins, clamped to
//     [0, 1] (the first-order terms of a functional ANOVA, estimated on the
//     observed jobs instead of fANOVA's random-forest surrogate); "seed" is
//     listed too, as the noise floor.
//
// Thread safety: plain functions.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "report/sweep_source.h"

namespace promptsweep {

struct ReportDataOptions {
  std::string generated;  // "2026-12-07 15:50:12 UTC"
  std::string version;    // promptsweep's
  std::string program = "promptsweep";  // how the eval / generate lines call promptsweep
  double now = 0.0;       // unix time: the end of a running sweep's timeline
};

// A swept parameter's values as the report treats them.
struct ParameterAxis {
  std::string name;
  bool numeric = false;  // every value parses as a finite number
  bool log = false;      // plotted on a log axis, binned in log space
  std::vector<std::string> distinct;  // numbers ascending, else first-seen order
  std::vector<std::string> bins;      // bin labels
  std::vector<int> bin;               // per job: its bin, -1 without a value
};

// Mean and sample standard deviation (n - 1; 0 for one value) of `values`;
// no mean for none.
struct MeanStd {
  int64_t n = 0;
  std::optional<double> mean, std;
};
MeanStd MeanAndStd(const std::vector<double>& values);

// `values` (one per job; empty: none). `log_hint`: the sweep samples it
// log-uniformly; numbers are also put on a log axis when all are > 0 and
// span at least 3 decades, or the parameter is a learning rate or weight
// decay spanning at least 1.
ParameterAxis MakeParameterAxis(const std::string& name, const std::vector<std::string>& values, bool log_hint);

// Epsilon-squared of `y` grouped by `group` (entries with group -1 are left
// out), clamped to [0, 1]; nullopt when fewer than 2 groups or no variance.
std::optional<double> MainEffectShare(const std::vector<double>& y, const std::vector<int>& group);

// The report's data (schema 1).
nlohmann::json BuildReportData(const SweepSource& source, const ReportDataOptions& options);

}  // namespace promptsweep
