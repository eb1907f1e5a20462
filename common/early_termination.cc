#include "common/early_termination.h"

#include <algorithm>
#include <cmath>

#include <nlohmann/json.hpp>

#include "common/error.h"
#include "common/format.h"

namespace promptsweep {
namespace {

// Rung counts are tiny; this only bounds a min_iter ladder with no evaluation limit.
constexpr int64_t kMaxRungs = 64;
// DescribeEarlyTermination shows this many rungs of a min_iter ladder.
constexpr std::size_t kDescribedRungs = 4;

}  // namespace

EarlyTerminationType ParseEarlyTerminationType(const std::string& name) {
  if (name.empty()) return EarlyTerminationType::kNone;
  for (const EarlyTerminationType type : {EarlyTerminationType::kNone, EarlyTerminationType::kHyperband,
                                          EarlyTerminationType::kAsha, EarlyTerminationType::kMedian}) {
    if (EarlyTerminationTypeName(type) == name) return type;
  }
  throw Error(StrCat("unknown early_terminate type '", name, "' (hyperband, asha or median)"));
}

namespace {

// ASHA's number of rungs: Ray's int(log(max_t / grace_period) / log(rf) + 1).
int64_t AshaRungCount(const EarlyTermination& config) {
  return static_cast<int64_t>(std::log(static_cast<double>(config.max_t) / static_cast<double>(config.grace_period)) /
                                  std::log(config.eta) +
                              1.0);
}

}  // namespace

std::string_view EarlyTerminationTypeName(EarlyTerminationType type) {
  switch (type) {
    case EarlyTerminationType::kNone: return "none";
    case EarlyTerminationType::kHyperband: return "hyperband";
    case EarlyTerminationType::kAsha: return "asha";
    case EarlyTerminationType::kMedian: return "median";
  }
  return "none";
}

bool EarlyTermination::operator==(const EarlyTermination& other) const {
  return EarlyTerminationToJson(*this) == EarlyTerminationToJson(other);
}

EarlyTermination DefaultEarlyTermination(EarlyTerminationType type) {
  EarlyTermination config;
  config.type = type;
  if (type == EarlyTerminationType::kAsha) config.eta = 4.0;
  return config;
}

std::string EarlyTerminationToJson(const EarlyTermination& config) {
  nlohmann::json json = {{"type", EarlyTerminationTypeName(config.type)}};
  switch (config.type) {
    case EarlyTerminationType::kNone:
      return "";
    case EarlyTerminationType::kHyperband:
      json["min_iter"] = config.min_iter;
      json["max_iter"] = config.max_iter;
      json["s"] = config.s;
      json["eta"] = config.eta;
      json["strict"] = config.strict;
      break;
    case EarlyTerminationType::kAsha:
      json["grace_period"] = config.grace_period;
      json["reduction_factor"] = config.eta;
      json["max_t"] = config.max_t;
      json["brackets"] = config.brackets;
      break;
    case EarlyTerminationType::kMedian:
      json["warmup_evals"] = config.warmup_evals;
      json["min_jobs"] = config.min_jobs;
      break;
  }
  return json.dump();
}

EarlyTermination EarlyTerminationFromJson(const std::string& text) {
  if (text.empty()) return EarlyTermination{};
  try {
    const nlohmann::json json = nlohmann::json::parse(text);
    EarlyTermination config = DefaultEarlyTermination(ParseEarlyTerminationType(json.at("type").get<std::string>()));
    switch (config.type) {
      case EarlyTerminationType::kNone:
        break;
      case EarlyTerminationType::kHyperband:
        config.min_iter = json.at("min_iter").get<int64_t>();
        config.max_iter = json.at("max_iter").get<int64_t>();
        config.s = json.at("s").get<int64_t>();
        config.eta = json.at("eta").get<double>();
        config.strict = json.at("strict").get<bool>();
        break;
      case EarlyTerminationType::kAsha:
        config.grace_period = json.at("grace_period").get<int64_t>();
        config.eta = json.at("reduction_factor").get<double>();
        config.max_t = json.at("max_t").get<int64_t>();
        config.brackets = json.at("brackets").get<int64_t>();
        break;
      case EarlyTerminationType::kMedian:
        config.warmup_evals = json.at("warmup_evals").get<int64_t>();
        config.min_jobs = json.at("min_jobs").get<int64_t>();
        break;
    }
    return config;
  } catch (const nlohmann::json::exception& e) {
    throw Error(StrCat("early_terminate '", text, "' is not valid: ", e.what()));
  }
}

void ValidateEarlyTermination(const EarlyTermination& c) {
  const auto fail = [](const std::string& what) { throw Error(StrCat("early_terminate.", what)); };
  switch (c.type) {
    case EarlyTerminationType::kNone:
      return;
    case EarlyTerminationType::kHyperband:
      if (!(c.eta > 1.0)) fail(StrCat("eta must be > 1, got ", FormatShortest(c.eta)));
      if (c.min_iter > 0 && (c.max_iter > 0 || c.s > 0)) {
        fail("min_iter: give min_iter, or max_iter and s, not both");
      }
      if (c.min_iter <= 0 && (c.max_iter <= 0 || c.s <= 0)) {
        fail("min_iter: hyperband needs min_iter >= 1, or max_iter >= 1 and s >= 1");
      }
      if (c.min_iter <= 0 && c.max_iter / c.eta < 1.0) {
        fail(StrCat("max_iter: max_iter / eta = ", FormatShortest(c.max_iter / c.eta),
                    " < 1 leaves no rung; raise max_iter or lower eta"));
      }
      return;
    case EarlyTerminationType::kAsha:
      if (!(c.eta > 1.0)) fail(StrCat("reduction_factor must be > 1, got ", FormatShortest(c.eta)));
      if (c.grace_period < 1) fail(StrCat("grace_period must be >= 1, got ", c.grace_period));
      if (c.max_t < c.grace_period) {
        fail(StrCat("max_t (", c.max_t, ") must be >= grace_period (", c.grace_period, ")"));
      }
      if (c.brackets < 1) fail(StrCat("brackets must be >= 1, got ", c.brackets));
      if (c.brackets > AshaRungCount(c)) {
        fail(StrCat("brackets: ", c.brackets, " brackets but only ", AshaRungCount(c),
                    " rungs between grace_period and max_t; use at most ", AshaRungCount(c)));
      }
      return;
    case EarlyTerminationType::kMedian:
      if (c.warmup_evals < 0) fail(StrCat("warmup_evals must be >= 0, got ", c.warmup_evals));
      if (c.min_jobs < 1) fail(StrCat("min_jobs must be >= 1, got ", c.min_jobs));
      return;
  }
}

std::vector<int64_t> RungIterations(const EarlyTermination& c, int64_t evaluations, int64_t bracket) {
  std::vector<int64_t> rungs;
  const auto add = [&](int64_t rung) {
    if (rung >= 1 && (evaluations <= 0 || rung <= evaluations)) rungs.push_back(rung);
  };
  switch (c.type) {
    case EarlyTerminationType::kNone:
      break;
    case EarlyTerminationType::kHyperband:
      if (c.min_iter > 0) {
        // W&B truncates each band (int()): compare the truncated rung with the
        // limit, so min_iter 2, eta 1.5 keeps rung 10 (band 10.125) for 10 evaluations.
        double band = static_cast<double>(c.min_iter);
        for (int64_t k = 0; k < kMaxRungs && band < 1e15; ++k, band *= c.eta) {
          const auto rung = static_cast<int64_t>(band);
          if (evaluations > 0 && rung > evaluations) break;
          add(rung);
        }
      } else {
        double band = static_cast<double>(c.max_iter);
        for (int64_t i = 0; i < c.s; ++i) {
          band /= c.eta;
          if (band < 1.0) break;
          add(static_cast<int64_t>(band));
        }
      }
      break;
    case EarlyTerminationType::kAsha: {
      // Ray: milestones grace_period·rf^(k + bracket); a job meets one at the
      // first evaluation at or past it.
      const int64_t count = AshaRungCount(c);
      for (int64_t k = 0; k + bracket < count; ++k) {
        const double milestone = static_cast<double>(c.grace_period) * std::pow(c.eta, static_cast<double>(k + bracket));
        add(static_cast<int64_t>(std::ceil(milestone - 1e-9)));
      }
      break;
    }
    case EarlyTerminationType::kMedian:
      for (int64_t k = c.warmup_evals + 1; evaluations > 0 && k <= evaluations; ++k) add(k);
      break;
  }
  std::sort(rungs.begin(), rungs.end());
  rungs.erase(std::unique(rungs.begin(), rungs.end()), rungs.end());
  return rungs;
}

int64_t BracketCount(const EarlyTermination& config) {
  return config.type == EarlyTerminationType::kAsha ? std::max<int64_t>(1, config.brackets) : 1;
}

int64_t BracketOf(const EarlyTermination& config, std::string_view job_id) {
  if (BracketCount(config) <= 1) return 0;
  uint64_t hash = 0xcbf29ce484222325ull;
  for (const char c : job_id) hash = (hash ^ static_cast<unsigned char>(c)) * 0x100000001b3ull;
  return static_cast<int64_t>(hash % static_cast<uint64_t>(config.brackets));
}

bool ComparesBestSoFar(const EarlyTermination& config) {
  return config.type == EarlyTerminationType::kMedian ||
         (config.type == EarlyTerminationType::kHyperband && !config.strict);
}

std::string DescribeEarlyTerminationPolicy(const EarlyTermination& c) {
  switch (c.type) {
    case EarlyTerminationType::kNone:
      return "none";
    case EarlyTerminationType::kHyperband:
      return StrCat("hyperband (eta ", FormatShortest(c.eta), c.strict ? ", strict" : ", best so far", ")");
    case EarlyTerminationType::kAsha:
      return StrCat("asha (reduction_factor ", FormatShortest(c.eta), ", max_t ", c.max_t, ")");
    case EarlyTerminationType::kMedian:
      return StrCat("median (after ", c.warmup_evals, " evaluations, with at least ", c.min_jobs, " other jobs)");
  }
  return "none";
}

std::string DescribeEarlyTermination(const EarlyTermination& c) {
  const auto list = [](const std::vector<int64_t>& rungs) {
    std::string text;
    for (const int64_t rung : rungs) text += StrCat(text.empty() ? "" : ", ", rung);
    return text;
  };
  const std::string policy = DescribeEarlyTerminationPolicy(c);
  switch (c.type) {
    case EarlyTerminationType::kNone:
      return policy;
    case EarlyTerminationType::kHyperband: {
      // min_iter's ladder has no top: its first rungs and "...".
      std::vector<int64_t> rungs = RungIterations(c, 0);
      const bool open = c.min_iter > 0 && rungs.size() > kDescribedRungs;
      if (open) rungs.resize(kDescribedRungs);
      return StrCat(policy, ": rungs at evaluations ", list(rungs), open ? ", ..." : "");
    }
    case EarlyTerminationType::kAsha: {
      std::string text = StrCat(policy, ": rungs at evaluations ");
      for (int64_t b = 0; b < c.brackets; ++b) {
        text += StrCat(b == 0 ? "" : "; bracket ", b == 0 ? "" : StrCat(b, ": "), list(RungIterations(c, 0, b)));
      }
      return text;
    }
    case EarlyTerminationType::kMedian:
      return StrCat(policy, ": every evaluation");
  }
  return policy;
}

}  // namespace promptsweep
