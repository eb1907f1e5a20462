#include "report/report_data.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <limits>
#include <map>
#include <set>
#include <unordered_map>
#include <utility>

#include "common/error.h"
#include "common/format.h"
#include "common/job.h"

namespace promptsweep {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

constexpr size_t kMaxValueBins = 10;  // distinct numeric values kept as bins of their own
constexpr int kNumericBins = 8;
constexpr size_t kMaxCurvePoints = 400;  // per series; longer ones are thinned evenly

json Number(std::optional<double> value) {
  if (!value || !std::isfinite(*value)) return nullptr;
  return *value;
}

json Integer(std::optional<int64_t> value) { return value ? json(*value) : json(nullptr); }

std::string Short(double value) {
  char text[32];
  std::snprintf(text, sizeof(text), "%.3g", value);
  return text;
}

// A parameter value as JSON: a number when the axis is numeric (an integer
// when it is one), else the text; null when empty.
json ValueJson(const ParameterAxis& axis, const std::string& text) {
  if (text.empty()) return nullptr;
  if (!axis.numeric) return text;
  if (const std::optional<int64_t> integer = ParseInteger(text)) return *integer;
  return ParseDouble(text).value_or(0.0);
}

// The job's state, when its status names one (a CSV may hold anything).
std::optional<JobState> StateOf(const SourceJob& job) {
  try {
    return ParseJobState(job.row.status);
  } catch (const Error&) {
    return std::nullopt;
  }
}

std::string ShellQuote(const std::string& text) {
  std::string quoted = "'";
  for (const char c : text) {
    if (c == '\'') {
      quoted += "'\\''";
    } else {
      quoted += c;
    }
  }
  return quoted + "'";
}

// The first example's input text of a JSONL file ("text" or "input") on one
// line, cut to 60 characters; empty when unreadable.
std::string FirstExampleText(const std::string& path) {
  if (path.empty()) return "";
  std::ifstream in(path);
  std::string line;
  if (!in || !std::getline(in, line)) return "";
  try {
    const json example = json::parse(line);
    std::string text;
    for (const char c : example.value("text", example.value("input", std::string()))) {  // one line
      const bool space = c == '\n' || c == '\r' || c == '\t' || c == ' ';
      if (!space || (!text.empty() && text.back() != ' ')) text += space ? ' ' : c;
    }
    if (text.size() > 60) {
      size_t cut = 60;
      while (cut > 0 && (static_cast<unsigned char>(text[cut]) & 0xC0) == 0x80) --cut;  // UTF-8 boundary
      text = text.substr(0, cut);
    }
    return text;
  } catch (const json::exception&) {
    return "";
  }
}

// The labels of a classification JSONL file ("label"); empty when unreadable.
std::vector<std::string> Labels(const std::string& path) {
  std::vector<std::string> labels;
  std::ifstream in(path);
  for (std::string line; in && std::getline(in, line);) {
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    try {
      const json example = json::parse(line);
      const json& label = example.at("label");
      labels.push_back(label.is_string() ? label.get<std::string>() : label.dump());
    } catch (const json::exception&) {
      return {};
    }
  }
  return labels;
}

// The share of the test set held by the training set's most frequent label:
// what always answering that label scores. nullopt when not a classification
// task with readable data.
std::optional<double> MajorityBaseline(const SweepSource& source) {
  if (source.metric != "accuracy" || source.train_data.empty() || source.test_data.empty()) return std::nullopt;
  const std::vector<std::string> train = Labels(source.train_data), test = Labels(source.test_data);
  if (train.empty() || test.empty()) return std::nullopt;
  std::map<std::string, int64_t> counts;
  for (const std::string& label : train) ++counts[label];
  const auto majority = std::max_element(counts.begin(), counts.end(),
                                         [](const auto& a, const auto& b) { return a.second < b.second; });
  const auto hits = std::count(test.begin(), test.end(), majority->first);
  return static_cast<double>(hits) / static_cast<double>(test.size());
}

}  // namespace

MeanStd MeanAndStd(const std::vector<double>& values) {
  MeanStd result;
  result.n = static_cast<int64_t>(values.size());
  if (values.empty()) return result;
  double sum = 0.0;
  for (const double v : values) sum += v;
  const double mean = sum / static_cast<double>(values.size());
  double squares = 0.0;
  for (const double v : values) squares += (v - mean) * (v - mean);
  result.mean = mean;
  result.std = values.size() < 2 ? 0.0 : std::sqrt(squares / static_cast<double>(values.size() - 1));
  return result;
}

ParameterAxis MakeParameterAxis(const std::string& name, const std::vector<std::string>& values, bool log_hint) {
  ParameterAxis axis;
  axis.name = name;
  std::vector<std::optional<double>> numbers(values.size());
  bool numeric = true, any = false;
  for (size_t j = 0; j < values.size(); ++j) {
    if (values[j].empty()) continue;
    any = true;
    numbers[j] = ParseDouble(values[j]);
    if (!numbers[j] || !std::isfinite(*numbers[j])) numeric = false;
  }
  axis.numeric = numeric && any;
  axis.bin.assign(values.size(), -1);
  if (!axis.numeric) {
    std::unordered_map<std::string, int> index;
    for (size_t j = 0; j < values.size(); ++j) {
      if (values[j].empty()) continue;
      auto [found, added] = index.emplace(values[j], static_cast<int>(axis.distinct.size()));
      if (added) axis.distinct.push_back(values[j]);
      axis.bin[j] = found->second;
    }
    axis.bins = axis.distinct;
    return axis;
  }
  std::map<double, std::string> distinct;  // ascending, first spelling kept
  for (size_t j = 0; j < values.size(); ++j) {
    if (numbers[j]) distinct.emplace(*numbers[j], values[j]);
  }
  for (const auto& entry : distinct) axis.distinct.push_back(entry.second);
  const double low = distinct.begin()->first, high = distinct.rbegin()->first;
  const bool learning_rate = name == "learning_rate" || name == "lr" || name == "weight_decay";
  axis.log = low > 0.0 && (log_hint || high / low >= 1000.0 || (learning_rate && high / low >= 10.0));
  if (distinct.size() <= kMaxValueBins) {
    std::map<double, int> index;
    for (const auto& entry : distinct) {
      index.emplace(entry.first, static_cast<int>(axis.bins.size()));
      axis.bins.push_back(entry.second);
    }
    for (size_t j = 0; j < values.size(); ++j) {
      if (numbers[j]) axis.bin[j] = index.at(*numbers[j]);
    }
    return axis;
  }
  const auto scale = [&](double v) { return axis.log ? std::log10(v) : v; };
  const double from = scale(low), to = scale(high), width = (to - from) / kNumericBins;
  for (int b = 0; b < kNumericBins; ++b) {
    const double a = from + width * b, z = from + width * (b + 1);
    axis.bins.push_back(axis.log ? Short(std::pow(10.0, a)) + "–" + Short(std::pow(10.0, z))
                                 : Short(a) + "–" + Short(z));
  }
  for (size_t j = 0; j < values.size(); ++j) {
    if (!numbers[j]) continue;
    const int b = width > 0.0 ? static_cast<int>((scale(*numbers[j]) - from) / width) : 0;
    axis.bin[j] = std::clamp(b, 0, kNumericBins - 1);
  }
  return axis;
}

std::optional<double> MainEffectShare(const std::vector<double>& y, const std::vector<int>& group) {
  std::map<int, std::pair<double, int64_t>> sums;  // group -> (sum, count)
  double total = 0.0;
  int64_t n = 0;
  for (size_t j = 0; j < y.size(); ++j) {
    if (group[j] < 0) continue;
    auto& [sum, count] = sums[group[j]];
    sum += y[j];
    ++count;
    total += y[j];
    ++n;
  }
  const int64_t k = static_cast<int64_t>(sums.size());
  if (k < 2) return std::nullopt;
  const double mean = total / static_cast<double>(n);
  double ss_total = 0.0, ss_within = 0.0;
  for (size_t j = 0; j < y.size(); ++j) {
    if (group[j] < 0) continue;
    const auto& [sum, count] = sums.at(group[j]);
    ss_total += (y[j] - mean) * (y[j] - mean);
    const double group_mean = sum / static_cast<double>(count);
    ss_within += (y[j] - group_mean) * (y[j] - group_mean);
  }
  if (!(ss_total > 0.0)) return std::nullopt;
  const double ss_between = ss_total - ss_within;
  // Epsilon-squared; with one job per group (no within-group variance left
  // to estimate the noise) it is eta-squared.
  const double ms_within = n > k ? ss_within / static_cast<double>(n - k) : 0.0;
  return std::clamp((ss_between - static_cast<double>(k - 1) * ms_within) / ss_total, 0.0, 1.0);
}

json BuildReportData(const SweepSource& source, const ReportDataOptions& options) {
  const size_t n = source.jobs.size();
  json data;
  data["schema"] = 1;
  data["generated"] = options.generated;
  data["version"] = options.version;

  // Counts and the primary metric.
  json counts = {{"total", n}};
  for (int state = 0; state <= static_cast<int>(JobState::kStopped); ++state) {
    counts[std::string(JobStateName(static_cast<JobState>(state)))] = 0;
  }
  bool any_test = false, running = false;
  for (const SourceJob& job : source.jobs) {
    if (const std::optional<JobState> state = StateOf(job)) {
      const std::string name(JobStateName(*state));
      counts[name] = counts[name].get<int64_t>() + 1;
      running |= !IsFinished(*state);
    }
    if (job.row.test && std::isfinite(*job.row.test)) any_test = true;
  }
  const std::string primary_key = any_test ? "test" : "best_dev";
  const auto primary = [&](const SourceJob& job) -> std::optional<double> {
    const std::optional<double> value = any_test ? job.row.test : job.row.best_dev;
    return value && std::isfinite(*value) ? value : std::nullopt;
  };
  data["source"] = {{"dir", source.dir},
                    {"kind", source.kind},
                    {"state", source.state_path.empty() ? json(nullptr) : json(source.state_path)},
                    {"running", running}};
  const auto text_or_null = [](const std::string& text) { return text.empty() ? json(nullptr) : json(text); };
  std::set<uint64_t> seeds;
  for (const SourceJob& job : source.jobs) seeds.insert(job.row.seed);
  data["sweep"] = {{"name", source.name},
                   {"file", text_or_null(source.sweep_file)},
                   {"model", text_or_null(source.model)},
                   {"task", text_or_null(source.task)},
                   {"metric", source.metric},
                   {"maximize", source.maximize},
                   {"early_terminate", source.early_terminate.enabled()
                                           ? json(DescribeEarlyTermination(source.early_terminate))
                                           : json(nullptr)},
                   {"seeds", seeds.size()},
                   {"majority_baseline", Number(MajorityBaseline(source))}};
  data["counts"] = counts;
  data["primary"] = {{"key", primary_key},
                     {"label", StrCat(any_test ? "test " : "best dev ", source.metric)}};

  // Wall time: the first lease to the last end (now, while running).
  std::optional<double> started, ended;
  for (const StoredAttempt& attempt : source.attempts) {
    if (std::isfinite(attempt.started)) started = std::min(started.value_or(attempt.started), attempt.started);
    if (attempt.ended) ended = std::max(ended.value_or(*attempt.ended), *attempt.ended);
  }
  if (running && started && options.now > 0.0) ended = std::max(ended.value_or(options.now), options.now);
  data["started"] = Number(started);
  data["ended"] = Number(ended);
  data["wall_seconds"] = started && ended ? json(*ended - *started) : json(nullptr);

  // Compute saved by early termination.
  if (source.early_terminate.enabled()) {
    int64_t planned = 0, run = 0, saved = 0;
    for (const SourceJob& job : source.jobs) {
      planned += job.max_steps;
      run += job.row.steps.value_or(0);
      if (StateOf(job) == JobState::kStopped && job.row.steps) {
        saved += std::max<int64_t>(0, job.max_steps - *job.row.steps);
      }
    }
    data["compute"] = {{"steps_run", run}, {"steps_planned", planned}, {"steps_saved", saved}};
  } else {
    data["compute"] = nullptr;
  }

  // Parameters.
  std::vector<ParameterAxis> axes;
  json parameters = json::array();
  for (size_t p = 0; p < source.parameters.size(); ++p) {
    std::vector<std::string> values(n);
    for (size_t j = 0; j < n; ++j) values[j] = p < source.jobs[j].row.swept.size() ? source.jobs[j].row.swept[p] : "";
    ParameterAxis& axis =
        axes.emplace_back(MakeParameterAxis(source.parameters[p], values, source.log_parameters.count(source.parameters[p]) != 0));
    json distinct = json::array();
    for (const std::string& value : axis.distinct) distinct.push_back(ValueJson(axis, value));
    parameters.push_back({{"name", axis.name},
                          {"type", axis.numeric ? "number" : "category"},
                          {"log", axis.log},
                          {"values", distinct},
                          {"bins", axis.bins},
                          {"bin", axis.bin}});
  }
  data["parameters"] = parameters;

  // Jobs, columnar.
  json jobs;
  const std::vector<const char*> columns = {"id", "seed", "status", "attempts", "final_dev", "best_dev", "best_step",
                                            "test", "train_loss", "steps", "stopped_at_step", "wall_seconds",
                                            "tokens_per_second", "worker", "adapter", "message"};
  for (const char* column : columns) jobs[column] = json::array();
  json params = json::array();
  for (size_t p = 0; p < axes.size(); ++p) params.push_back(json::array());
  std::unordered_map<std::string, size_t> index_of;
  for (size_t j = 0; j < n; ++j) {
    const ResultRow& row = source.jobs[j].row;
    index_of.emplace(row.job_id, j);
    jobs["id"].push_back(row.job_id);
    jobs["seed"].push_back(row.seed);
    jobs["status"].push_back(row.status);
    jobs["attempts"].push_back(row.attempts);
    jobs["final_dev"].push_back(Number(row.final_dev));
    jobs["best_dev"].push_back(Number(row.best_dev));
    jobs["best_step"].push_back(Integer(row.best_step));
    jobs["test"].push_back(Number(row.test));
    jobs["train_loss"].push_back(Number(row.train_loss));
    jobs["steps"].push_back(Integer(row.steps));
    jobs["stopped_at_step"].push_back(Integer(row.stopped_at_step));
    jobs["wall_seconds"].push_back(Number(row.wall_seconds));
    jobs["tokens_per_second"].push_back(Number(row.tokens_per_second));
    jobs["worker"].push_back(row.worker);
    jobs["adapter"].push_back(row.adapter);
    jobs["message"].push_back(row.message);
    for (size_t p = 0; p < axes.size(); ++p) {
      params[p].push_back(ValueJson(axes[p], p < row.swept.size() ? row.swept[p] : ""));
    }
  }
  jobs["params"] = params;
  data["jobs"] = jobs;

  // The best job.
  std::optional<size_t> best;
  for (size_t j = 0; j < n; ++j) {
    const std::optional<double> value = primary(source.jobs[j]);
    const std::optional<JobState> state = StateOf(source.jobs[j]);
    if (!value || !state || !IsSuccess(*state)) continue;
    const std::optional<double> current = best ? primary(source.jobs[*best]) : std::nullopt;
    if (!current || (source.maximize ? *value > *current : *value < *current)) best = j;
  }
  if (best) {
    const ResultRow& row = source.jobs[*best].row;
    const std::string adapter = row.adapter.empty() ? "" : (fs::path(source.dir) / row.adapter).string();
    json entry = {{"job", *best}, {"value", Number(primary(source.jobs[*best]))},
                  {"adapter", text_or_null(adapter)}, {"eval", nullptr}, {"generate", nullptr}};
    if (!adapter.empty() && !source.model.empty()) {
      if (!source.test_data.empty()) {
        entry["eval"] = StrCat(options.program, " eval ", ShellQuote(source.model), " --adapter ", ShellQuote(adapter),
                               " --data ", ShellQuote(source.test_data));
      }
      std::string text = FirstExampleText(source.test_data);
      if (text.empty()) text = "Your text here";
      entry["generate"] = StrCat(options.program, " generate ", ShellQuote(source.model), " --adapter ",
                                 ShellQuote(adapter), " --text ", ShellQuote(text), " --max-new-tokens 8");
    }
    data["best"] = entry;
  } else {
    data["best"] = nullptr;
  }

  // Settings over seeds.
  json groups = json::array();
  {
    std::map<std::vector<std::string>, size_t> group_of;
    std::vector<std::vector<size_t>> members;
    std::vector<std::vector<std::string>> keys;
    for (size_t j = 0; j < n; ++j) {
      const std::vector<std::string>& key = source.jobs[j].row.swept;
      auto [found, added] = group_of.emplace(key, members.size());
      if (added) {
        members.emplace_back();
        keys.push_back(key);
      }
      members[found->second].push_back(j);
    }
    for (size_t g = 0; g < members.size(); ++g) {
      std::vector<double> values, dev;
      for (const size_t j : members[g]) {
        if (const std::optional<double> value = primary(source.jobs[j])) values.push_back(*value);
        const std::optional<double>& best_dev = source.jobs[j].row.best_dev;
        if (best_dev && std::isfinite(*best_dev)) dev.push_back(*best_dev);
      }
      const MeanStd metric = MeanAndStd(values), dev_stats = MeanAndStd(dev);
      json key = json::array();
      for (size_t p = 0; p < axes.size(); ++p) key.push_back(ValueJson(axes[p], p < keys[g].size() ? keys[g][p] : ""));
      groups.push_back({{"values", key},
                        {"jobs", members[g]},
                        {"n", metric.n},
                        {"mean", Number(metric.mean)},
                        {"std", Number(metric.std)},
                        {"dev_mean", Number(dev_stats.mean)},
                        {"dev_std", Number(dev_stats.std)}});
    }
  }
  data["groups"] = groups;

  // Heatmaps over each pair of parameters, and importance.
  std::vector<double> y;
  std::vector<size_t> rated;  // jobs with a primary value
  for (size_t j = 0; j < n; ++j) {
    if (const std::optional<double> value = primary(source.jobs[j])) {
      y.push_back(*value);
      rated.push_back(j);
    }
  }
  json heatmaps = json::array();
  for (size_t p = 0; p < axes.size(); ++p) {
    for (size_t q = p + 1; q < axes.size(); ++q) {
      if (axes[p].bins.size() < 2 || axes[q].bins.size() < 2) continue;
      std::vector<std::vector<double>> sum(axes[q].bins.size(), std::vector<double>(axes[p].bins.size(), 0.0));
      std::vector<std::vector<int64_t>> count(axes[q].bins.size(), std::vector<int64_t>(axes[p].bins.size(), 0));
      for (size_t r = 0; r < rated.size(); ++r) {
        const int x = axes[p].bin[rated[r]], yb = axes[q].bin[rated[r]];
        if (x < 0 || yb < 0) continue;
        sum[yb][x] += y[r];
        ++count[yb][x];
      }
      json z = json::array();
      for (size_t row = 0; row < sum.size(); ++row) {
        json line = json::array();
        for (size_t col = 0; col < sum[row].size(); ++col) {
          line.push_back(count[row][col] > 0 ? json(sum[row][col] / static_cast<double>(count[row][col])) : json(nullptr));
        }
        z.push_back(line);
      }
      heatmaps.push_back({{"x", p}, {"y", q}, {"z", z}, {"n", count}});
    }
  }
  data["heatmaps"] = heatmaps;

  std::vector<std::pair<std::string, double>> shares;
  for (const ParameterAxis& axis : axes) {
    std::vector<int> group;
    for (const size_t j : rated) group.push_back(axis.bin[j]);
    if (const std::optional<double> share = MainEffectShare(y, group)) shares.emplace_back(axis.name, *share);
  }
  {
    std::map<uint64_t, int> seed_index;
    std::vector<int> group;
    for (const size_t j : rated) {
      group.push_back(seed_index.emplace(source.jobs[j].row.seed, static_cast<int>(seed_index.size())).first->second);
    }
    if (const std::optional<double> share = MainEffectShare(y, group)) shares.emplace_back("seed", *share);
  }
  std::stable_sort(shares.begin(), shares.end(), [](const auto& a, const auto& b) { return a.second > b.second; });
  json items = json::array();
  for (const auto& [name, share] : shares) items.push_back({{"name", name}, {"share", share}});
  data["importance"] = {
      {"method",
       "Main effect of each parameter alone: the share of the primary metric's variance over the jobs explained by "
       "grouping them by that parameter's bins, as epsilon-squared (SS_between - (k-1) MS_within) / SS_total, "
       "clamped to [0, 1] (eta-squared when every bin holds one job). These are the first-order terms of a "
       "functional ANOVA estimated on the observed jobs, not fANOVA's random-forest surrogate: interactions are "
       "not attributed, and shares need not sum to 1. 'seed' is the noise floor: a parameter at or below it "
       "is not distinguishable from chance with these runs."},
      {"items", items}};

  // Learning curves.
  json curves = json::array();
  {
    std::map<size_t, std::pair<std::vector<std::pair<int64_t, double>>, std::vector<std::pair<int64_t, double>>>> series;
    for (const auto& [job_id, row] : source.metrics) {
      const auto found = index_of.find(job_id);
      if (found == index_of.end() || !std::isfinite(row.value)) continue;
      if (row.split == "train" && row.metric == "loss") series[found->second].first.emplace_back(row.step, row.value);
      if (row.split == "dev" && row.metric == source.metric) {
        series[found->second].second.emplace_back(row.step, row.value);
      }
    }
    const auto thin = [](const std::vector<std::pair<int64_t, double>>& points, json& steps, json& values) {
      steps = json::array();
      values = json::array();
      const size_t stride = points.size() <= kMaxCurvePoints ? 1 : (points.size() + kMaxCurvePoints - 1) / kMaxCurvePoints;
      for (size_t i = 0; i < points.size(); i += stride) {
        steps.push_back(points[i].first);
        values.push_back(points[i].second);
      }
      if (!points.empty() && (points.size() - 1) % stride != 0) {  // keep the last point
        steps.push_back(points.back().first);
        values.push_back(points.back().second);
      }
    };
    for (const auto& [job, pair] : series) {
      json entry = {{"job", job}};
      thin(pair.first, entry["train_step"], entry["train"]);
      thin(pair.second, entry["dev_step"], entry["dev"]);
      curves.push_back(entry);
    }
  }
  data["curves"] = {{"train_metric", "loss"}, {"dev_metric", source.metric}, {"jobs", curves}};

  // Early-termination rungs: in steps for the most common (eval_every, max_steps).
  if (source.early_terminate.enabled()) {
    std::map<std::pair<int64_t, int64_t>, int64_t> shapes;
    for (const SourceJob& job : source.jobs) {
      if (job.eval_every > 0) ++shapes[{job.eval_every, job.max_steps}];
    }
    json steps = json::array();
    if (!shapes.empty()) {
      const auto common = std::max_element(shapes.begin(), shapes.end(),
                                           [](const auto& a, const auto& b) { return a.second < b.second; });
      const auto [eval_every, max_steps] = common->first;
      std::set<int64_t> rung_steps;
      for (int64_t bracket = 0; bracket < BracketCount(source.early_terminate); ++bracket) {
        for (const int64_t iteration :
             RungIterations(source.early_terminate, max_steps / eval_every, bracket)) {
          rung_steps.insert(iteration * eval_every);
        }
      }
      for (const int64_t step : rung_steps) steps.push_back(step);
    }
    json values = json::array();
    for (const StoredRung& rung : source.rungs) {
      const auto found = index_of.find(rung.job_id);
      if (found != index_of.end()) values.push_back({{"job", found->second}, {"step", rung.step}, {"value", rung.value}});
    }
    data["rungs"] = {{"steps", steps}, {"values", values}};
  } else {
    data["rungs"] = nullptr;
  }

  // Timeline.
  json workers = json::array(), attempts = json::array();
  {
    std::unordered_map<std::string, size_t> worker_index;
    for (const StoredAttempt& attempt : source.attempts) {
      const auto job = index_of.find(attempt.job_id);
      if (job == index_of.end() || !std::isfinite(attempt.started)) continue;
      auto [found, added] = worker_index.emplace(attempt.worker, worker_index.size());
      if (added) workers.push_back(attempt.worker);
      attempts.push_back({{"job", job->second},
                          {"attempt", attempt.attempt},
                          {"worker", found->second},
                          {"start", attempt.started},
                          {"end", Number(attempt.ended)},
                          {"outcome", attempt.ended ? attempt.outcome : std::string("running")},
                          {"step", attempt.ended && attempt.end_step > 0 ? json(attempt.end_step) : json(nullptr)}});
    }
  }
  data["timeline"] = {{"exact", source.attempts_exact}, {"workers", workers}, {"attempts", attempts}};
  return data;
}

}  // namespace promptsweep
