// A sweep's early-termination policy (the sweep YAML's `early_terminate`):
// which dev evaluations are rungs and what the coordinator compares there.
// Plain data shared by the sweep reader (coordinator/sweep_spec.h), the
// client that submits it, the protocol and the scheduler's decisions
// (coordinator/early_stopper.h). An "iteration" is a dev evaluation of the
// sweep's metric: evaluation k of a job is at step k × eval_every (W&B counts
// logged metric values the same way).
//
//   hyperband  W&B's keys and rule: rungs max_iter/eta^i (i = 1..s, with
//              max_iter + s) or min_iter·eta^k (with min_iter); eta 3; strict
//              (default true) compares the value at the rung, else the best so far.
//   asha       Ray Tune's ASHAScheduler: grace_period 1, reduction_factor 4,
//              max_t 100, brackets 1; rungs grace_period·rf^(k+bracket) < max_t;
//              a job reaching max_t evaluations stops.
//   median     Optuna's MedianPruner / Ray's MedianStoppingRule: after
//              warmup_evals evaluations, a job whose best so far is worse than
//              the median of the other jobs' best at the same evaluation
//              (at least min_jobs of them) stops.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace promptsweep {

enum class EarlyTerminationType { kNone, kHyperband, kAsha, kMedian };
std::string_view EarlyTerminationTypeName(EarlyTerminationType type);  // "none", "hyperband", "asha", "median"
// Error for a name that is not one of those ("" is none).
EarlyTerminationType ParseEarlyTerminationType(const std::string& name);

struct EarlyTermination {
  EarlyTerminationType type = EarlyTerminationType::kNone;
  // hyperband: min_iter, or max_iter + s (0: not given).
  int64_t min_iter = 0;
  int64_t max_iter = 0;
  int64_t s = 0;
  double eta = 3.0;  // hyperband's eta; asha's reduction_factor
  bool strict = true;
  // asha
  int64_t grace_period = 1;
  int64_t max_t = 100;
  int64_t brackets = 1;
  // median
  int64_t warmup_evals = 0;
  int64_t min_jobs = 3;

  bool enabled() const { return type != EarlyTerminationType::kNone; }
  bool operator==(const EarlyTermination& other) const;
  bool operator!=(const EarlyTermination& other) const { return !(*this == other); }
};

// ASHA's defaults (reduction_factor 4) differ from hyperband's (eta 3).
EarlyTermination DefaultEarlyTermination(EarlyTerminationType type);

// Canonical JSON text (stored with the sweep); "" for kNone. FromJson: Error
// for text that is not one of ToJson's.
std::string EarlyTerminationToJson(const EarlyTermination& config);
EarlyTermination EarlyTerminationFromJson(const std::string& text);

// Error naming the first invalid field ("early_terminate.eta must be > 1, got 1").
void ValidateEarlyTermination(const EarlyTermination& config);

// The rung iterations of `bracket` (asha; 0 for the others), ascending.
// median: every evaluation after warmup_evals is a rung, up to `evaluations`.
// Rungs past `evaluations` are left out (evaluations <= 0: no limit, median: none).
std::vector<int64_t> RungIterations(const EarlyTermination& config, int64_t evaluations, int64_t bracket = 0);

// The number of brackets: asha's `brackets`, 1 for the others.
int64_t BracketCount(const EarlyTermination& config);

// asha: the bracket of a job (its id's FNV-1a hash mod brackets, so a restarted
// coordinator puts it in the same one); 0 for the others.
int64_t BracketOf(const EarlyTermination& config, std::string_view job_id);

// What the rung compares: the dev value of the evaluation at the rung
// (hyperband strict, asha) or the best so far (hyperband non-strict, median).
bool ComparesBestSoFar(const EarlyTermination& config);

// "hyperband (eta 3, strict): rungs at evaluations 1, 3, 9" (no rung list for median).
std::string DescribeEarlyTermination(const EarlyTermination& config);
// Its policy part alone: "hyperband (eta 3, strict)".
std::string DescribeEarlyTerminationPolicy(const EarlyTermination& config);

}  // namespace promptsweep
