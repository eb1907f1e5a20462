// The expansion of a read sweep into jobs (grid odometer, random draws), job
// ids and the one-line summary: the second half of the sweep reader
// (sweep_spec.h), apart from the YAML. Internal to promptsweep_sweep.
#include <openssl/evp.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <map>
#include <optional>
#include <random>

#include <nlohmann/json.hpp>

#include "common/error.h"
#include "common/format.h"
#include "coordinator/sweep_expand.h"

namespace promptsweep {
namespace {

// Grid sweeps larger than this need a run_cap (a typo like 1000 values × 1000
// values should not silently become a million jobs).
constexpr int64_t kMaxJobs = 1000000;

// --- Sampling: explicit formulas over mt19937_64 (whose output sequence the
// standard fixes), so a sweep draws the same values on every platform;
// std::uniform_*_distribution are implementation-defined. ---

// Uniform in [0, 1) with 53 random bits.
double UnitDouble(std::mt19937_64& rng) { return static_cast<double>(rng() >> 11) * 0x1.0p-53; }

// Uniform in [0, n) without modulo bias (rejection).
uint64_t Below(std::mt19937_64& rng, uint64_t n) {
  const uint64_t limit = std::numeric_limits<uint64_t>::max() - std::numeric_limits<uint64_t>::max() % n;
  uint64_t x = rng();
  while (x >= limit) x = rng();
  return x % n;
}

// The text of one draw of a range parameter.
std::string Draw(const SweepParameter& p, std::mt19937_64& rng) {
  switch (p.distribution) {
    case Distribution::kUniform:
      return FormatShortest(std::min(p.max, p.min + UnitDouble(rng) * (p.max - p.min)));
    case Distribution::kLogUniformValues: {
      const double value = std::exp(std::log(p.min) + UnitDouble(rng) * (std::log(p.max) - std::log(p.min)));
      return FormatShortest(std::clamp(value, p.min, p.max));
    }
    case Distribution::kIntUniform: {
      const auto lo = static_cast<int64_t>(p.min);
      const auto span = static_cast<uint64_t>(static_cast<int64_t>(p.max) - lo) + 1;
      return std::to_string(lo + static_cast<int64_t>(Below(rng, span)));
    }
    case Distribution::kQUniform: {
      // W&B: round(X / q) * q with X ~ uniform(min, max). 15 digits drop the
      // representation error of k * q (3 * 0.1 -> "0.3").
      const double x = p.min + UnitDouble(rng) * (p.max - p.min);
      char buffer[32];
      std::snprintf(buffer, sizeof(buffer), "%.15g", std::round(x / p.q) * p.q + 0.0);
      return buffer;
    }
    case Distribution::kCategorical: break;
  }
  PS_CHECK(false, "Draw on a categorical parameter");
  return "";
}

std::string Describe(const SweepJob& job) {
  std::string text;
  for (const auto& [name, value] : job.swept) text += StrCat(text.empty() ? "" : ", ", name, "=", value);
  return StrCat(text, text.empty() ? "" : ", ", "seed=", job.seed);
}

// Builds one job from the fixed settings and one choice per parameter.
SweepJob MakeJob(const ReadSweepSettings& reader, const Sweep& sweep, const std::vector<ParameterValue>& choice,
                 std::optional<uint64_t> seed) {
  SettingList swept;
  SweepJob job;
  for (std::size_t i = 0; i < choice.size(); ++i) {
    job.swept.emplace_back(sweep.parameters[i].name, choice[i].label);
    for (const auto& [name, value] : choice[i].settings) swept.emplace_back(name, value);
  }
  if (seed) swept.emplace_back("seed", std::to_string(*seed));
  job.settings = reader.job_settings(swept);
  for (const auto& [name, value] : job.settings.values) {
    if (name == "seed") job.seed = static_cast<uint64_t>(ParseInteger(value).value_or(0));
  }
  job.settings.verbalizer = sweep.fixed.verbalizer;
  job.id = JobId(job.settings);
  return job;
}

}  // namespace

void ExpandSweep(const ReadSweepSettings& reader, const SweepSchema& schema, Sweep& sweep) {
  std::vector<std::optional<uint64_t>> seeds;
  for (uint64_t seed : sweep.seeds) seeds.emplace_back(seed);
  if (seeds.empty()) seeds.emplace_back(std::nullopt);  // `seed` is a parameter
  const auto per_set = static_cast<int64_t>(seeds.size());
  std::vector<std::vector<ParameterValue>> sets;  // one choice per parameter

  if (sweep.method == SweepMethod::kGrid) {
    int64_t total = per_set;
    for (const SweepParameter& p : sweep.parameters) {
      const auto n = static_cast<int64_t>(p.values.size());
      total = total > std::numeric_limits<int64_t>::max() / n ? std::numeric_limits<int64_t>::max() : total * n;
    }
    sweep.uncapped_jobs = total;
    const int64_t planned = sweep.run_cap > 0 ? std::min(total, sweep.run_cap) : total;
    if (planned > kMaxJobs) {
      throw Error(StrCat(reader.run_cap_where, ": the grid has more than ", kMaxJobs,
                         " jobs; set run_cap: N to run the first N, or use method: random"));
    }
    if (planned < total) {
      sweep.warnings.push_back(StrCat("run_cap ", sweep.run_cap, " keeps the first ", planned, " of ", total,
                                      " grid jobs"));
    }
    // Odometer over the parameters in YAML order, the last one fastest.
    std::vector<std::size_t> index(sweep.parameters.size(), 0);
    const int64_t set_count = (planned + per_set - 1) / per_set;
    for (int64_t s = 0; s < set_count; ++s) {
      std::vector<ParameterValue> choice;
      for (std::size_t i = 0; i < index.size(); ++i) choice.push_back(sweep.parameters[i].values[index[i]]);
      sets.push_back(std::move(choice));
      for (std::size_t i = index.size(); i-- > 0;) {
        if (++index[i] < sweep.parameters[i].values.size()) break;
        index[i] = 0;
      }
    }
    std::vector<SweepJob>& jobs = sweep.jobs;
    std::map<std::string, std::size_t> by_id;
    for (const auto& choice : sets) {
      for (const auto& seed : seeds) {
        if (static_cast<int64_t>(jobs.size()) == planned) break;
        SweepJob job = MakeJob(reader, sweep, choice, seed);
        const auto [it, inserted] = by_id.emplace(job.id, jobs.size());
        if (!inserted) {
          throw Error(StrCat(reader.parameters_where, ": jobs ", it->second + 1, " (", Describe(jobs[it->second]),
                             ") and ", jobs.size() + 1, " (", Describe(job), ") have the same settings (job id ",
                             job.id, "); remove the repeated value"));
        }
        jobs.push_back(std::move(job));
      }
    }
  } else {
    std::mt19937_64 rng(sweep.sample_seed);
    std::map<std::string, std::size_t> by_id;
    int64_t repeated = 0;
    for (int64_t draw = 0; draw < sweep.run_cap; ++draw) {
      std::vector<ParameterValue> choice;
      for (const SweepParameter& p : sweep.parameters) {
        if (p.distribution == Distribution::kCategorical) {
          choice.push_back(p.values[Below(rng, p.values.size())]);
        } else {
          const std::string text = Draw(p, rng);
          choice.push_back(ParameterValue{text, {{p.values[0].settings[0].first, text}}});
        }
      }
      bool repeat = false;
      std::vector<SweepJob> drawn;
      for (const auto& seed : seeds) {
        SweepJob job = MakeJob(reader, sweep, choice, seed);
        if (by_id.count(job.id)) repeat = true;
        drawn.push_back(std::move(job));
      }
      if (repeat) {  // the same parameter set again: nothing new to run
        ++repeated;
        continue;
      }
      for (SweepJob& job : drawn) {
        by_id.emplace(job.id, sweep.jobs.size());
        sweep.jobs.push_back(std::move(job));
      }
    }
    sweep.uncapped_jobs = static_cast<int64_t>(sweep.jobs.size());
    if (repeated > 0) {
      sweep.warnings.push_back(StrCat(repeated, " of ", sweep.run_cap,
                                      " random draws repeated an earlier parameter set and were dropped"));
    }
  }

  if (schema.check_job) {
    for (const SweepJob& job : sweep.jobs) {
      try {
        schema.check_job(job.settings);
      } catch (const Error& e) {
        throw Error(StrCat(reader.parameters_where, ": job ", job.id, " (", Describe(job), "): ", e.what()));
      }
    }
  }
}

std::string JobId(const JobSettings& settings) {
  // Canonical form: [[name, value], ..., ["verbalizer", [[label, words], ...]]].
  nlohmann::json canonical = nlohmann::json::array();
  for (const auto& [name, value] : settings.values) canonical.push_back({name, value});
  nlohmann::json verbalizer = nlohmann::json::array();
  for (const auto& [label, words] : settings.verbalizer) verbalizer.push_back({label, words});
  canonical.push_back({"verbalizer", verbalizer});
  const std::string bytes = canonical.dump();
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  PS_CHECK(EVP_Digest(bytes.data(), bytes.size(), digest, &length, EVP_sha256(), nullptr) == 1);
  static const char kHex[] = "0123456789abcdef";
  std::string id;
  for (int i = 0; i < 8; ++i) {
    id += kHex[digest[i] >> 4];
    id += kHex[digest[i] & 15];
  }
  return id;
}

std::string SweepSummary(const Sweep& sweep) {
  const std::size_t n = sweep.jobs.size();
  std::string text = StrCat(n, n == 1 ? " job: " : " jobs: ");
  std::vector<std::string> factors;
  if (sweep.method == SweepMethod::kRandom) {
    factors.push_back(StrCat(sweep.run_cap, " random draws"));
  } else {
    for (const SweepParameter& p : sweep.parameters) factors.push_back(StrCat(p.values.size(), " ", p.name));
  }
  if (!sweep.seeds.empty()) factors.push_back(StrCat(sweep.seeds.size(), sweep.seeds.size() == 1 ? " seed" : " seeds"));
  for (std::size_t i = 0; i < factors.size(); ++i) text += (i ? " × " : "") + factors[i];
  if (static_cast<int64_t>(n) < sweep.uncapped_jobs) text += StrCat(" (run_cap ", sweep.run_cap, " of ", sweep.uncapped_jobs, ")");
  return text;
}

}  // namespace promptsweep
