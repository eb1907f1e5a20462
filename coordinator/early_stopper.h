// Early termination's decision at one dev evaluation of one job: a plain
// function of the sweep's policy (common/early_termination.h) and the values
// other jobs recorded at the same rung. The job table (job_table.h) calls it
// when a job reports an evaluation, commits the rung value and the decision,
// and only then tells the worker; the offline replay
// (bench/replay_early_termination.py) follows the same rules.
//
//   hyperband  W&B's rule, asynchronously: among the n jobs that reached the
//              rung (this one included), sorted best first, a job is kept when
//              it is at least as good as the one at index floor(n / eta).
//   asha       Ray's ASHA: the cutoff is the (1 - 1/rf) quantile (linear
//              interpolation, numpy's default) of the other jobs' values at the
//              rung; worse than the cutoff stops. The first job at a rung goes
//              on. A job reaching max_t evaluations stops.
//   median     Optuna's MedianPruner: with at least min_jobs other jobs at this
//              evaluation, a best-so-far worse than their median stops.
// Ties are kept everywhere. Thread safety: stateless.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/early_termination.h"

namespace promptsweep {

// One job's evaluation as the rung sees it.
struct RungReport {
  int64_t iteration = 0;    // the evaluation's number, from 1
  int64_t step = 0;
  int64_t evaluations = 0;  // the job's planned evaluations (max_steps / eval_every)
  double value = 0.0;       // what the rung compares (RungValue)
};

struct RungDecision {
  bool rung = false;    // the evaluation is a rung: record `value` for later jobs
  bool stop = false;
  std::string reason;   // when stop: "rung 2 (150 steps): dev accuracy 0.61 not in top 1/3 of 9 (cutoff 0.68)"
};

// What a rung compares for one evaluation: the dev value, or the best so far.
double RungValue(const EarlyTermination& config, double dev_value, double best_so_far);

// The decision for `report`; `others` are the values of the other jobs (of the
// same bracket) recorded at report.iteration. `metric` names the metric in
// the reason ("accuracy"); `maximize` is its goal.
RungDecision DecideAtRung(const EarlyTermination& config, const std::string& metric, bool maximize,
                          const RungReport& report, const std::vector<double>& others, int64_t bracket = 0);

}  // namespace promptsweep
