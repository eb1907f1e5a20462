#include "coordinator/early_stopper.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "common/error.h"
#include "common/format.h"

namespace promptsweep {
namespace {

// Metrics in reasons: 4 significant digits are what a person compares.
std::string Figure(double value) {
  char text[32];
  std::snprintf(text, sizeof(text), "%.4g", value);
  return text;
}

// numpy.percentile(values, q) with linear interpolation; values not empty.
double Percentile(std::vector<double> values, double q) {
  std::sort(values.begin(), values.end());
  const double position = q / 100.0 * static_cast<double>(values.size() - 1);
  const auto below = static_cast<size_t>(std::floor(position));
  const size_t above = std::min(below + 1, values.size() - 1);
  return values[below] + (values[above] - values[below]) * (position - static_cast<double>(below));
}

std::string Where(int64_t rung_number, const RungReport& report) {
  return StrCat("rung ", rung_number, " (", report.step, " steps)");
}

}  // namespace

double RungValue(const EarlyTermination& config, double dev_value, double best_so_far) {
  return ComparesBestSoFar(config) ? best_so_far : dev_value;
}

RungDecision DecideAtRung(const EarlyTermination& config, const std::string& metric, bool maximize,
                          const RungReport& report, const std::vector<double>& others, int64_t bracket) {
  RungDecision decision;
  if (!config.enabled() || !std::isfinite(report.value)) return decision;
  // Oriented so that larger is better.
  const double sign = maximize ? 1.0 : -1.0;
  const auto better_or_equal = [&](double a, double b) { return sign * a >= sign * b; };
  const std::vector<int64_t> rungs = RungIterations(config, report.evaluations, bracket);
  const auto found = std::find(rungs.begin(), rungs.end(), report.iteration);
  decision.rung = found != rungs.end();
  const int64_t rung_number = found - rungs.begin() + 1;
  // The last evaluation ends the job anyway: record it, decide nothing.
  const bool last = report.evaluations > 0 && report.iteration >= report.evaluations;

  switch (config.type) {
    case EarlyTerminationType::kNone:
      break;
    case EarlyTerminationType::kHyperband: {
      if (!decision.rung || last) break;
      std::vector<double> values = others;
      values.push_back(report.value);
      std::sort(values.begin(), values.end(), [&](double a, double b) { return sign * a > sign * b; });
      const auto index = static_cast<size_t>(static_cast<double>(values.size()) / config.eta);
      const double cutoff = values[std::min(index, values.size() - 1)];
      if (!better_or_equal(report.value, cutoff)) {
        decision.stop = true;
        decision.reason = StrCat(Where(rung_number, report), ": dev ", metric, config.strict ? " " : " best so far ",
                                 Figure(report.value), " not in top 1/", FormatShortest(config.eta), " of ",
                                 values.size(), " (cutoff ", Figure(cutoff), ")");
      }
      break;
    }
    case EarlyTerminationType::kAsha: {
      if (report.iteration >= config.max_t && !last) {
        decision.stop = true;
        decision.reason = StrCat("evaluation ", report.iteration, " (", report.step, " steps): reached max_t ",
                                 config.max_t);
        break;
      }
      if (!decision.rung || last || others.empty()) break;
      std::vector<double> oriented;
      for (const double value : others) oriented.push_back(sign * value);
      const double cutoff = sign * Percentile(oriented, (1.0 - 1.0 / config.eta) * 100.0);
      if (!better_or_equal(report.value, cutoff)) {
        decision.stop = true;
        decision.reason = StrCat(Where(rung_number, report), ": dev ", metric, " ", Figure(report.value),
                                 " below the top 1/", FormatShortest(config.eta), " cutoff ", Figure(cutoff), " of ",
                                 others.size(), others.size() == 1 ? " earlier job" : " earlier jobs",
                                 config.brackets > 1 ? StrCat(" in bracket ", bracket) : std::string());
      }
      break;
    }
    case EarlyTerminationType::kMedian: {
      if (!decision.rung || last || static_cast<int64_t>(others.size()) < config.min_jobs) break;
      const double median = Percentile(others, 50.0);
      if (!better_or_equal(report.value, median)) {
        decision.stop = true;
        decision.reason = StrCat("evaluation ", report.iteration, " (", report.step, " steps): best dev ", metric,
                                 " ", Figure(report.value), " worse than the median ", Figure(median), " of ",
                                 others.size(), " other jobs");
      }
      break;
    }
  }
  return decision;
}

}  // namespace promptsweep
