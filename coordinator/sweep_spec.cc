#include "coordinator/sweep_spec.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <limits>
#include <map>
#include <optional>
#include <set>

#include "common/error.h"
#include "common/file_util.h"
#include "common/format.h"
#include "coordinator/sweep_expand.h"

namespace promptsweep {
namespace {

namespace fs = std::filesystem;

// Job-file keys outside the trainer options, in job-file order.
const std::vector<std::string> kModelKeys = {"model", "tokenizer", "device", "dtype"};
const std::vector<std::string> kTaskKeys = {"task", "template", "max_length", "train", "dev", "test"};
const std::vector<std::string> kTaskPathKeys = {"train", "dev", "test"};

// The keys of each early_terminate type.
struct EarlyTerminateKeys {
  EarlyTerminationType type;
  std::vector<std::string> keys;
};
const std::vector<EarlyTerminateKeys> kEarlyTerminateTypes = {
    {EarlyTerminationType::kHyperband, {"type", "min_iter", "max_iter", "s", "eta", "strict"}},
    {EarlyTerminationType::kAsha, {"type", "grace_period", "reduction_factor", "max_t", "brackets"}},
    {EarlyTerminationType::kMedian, {"type", "warmup_evals", "min_jobs"}},
};
// Its integer keys (non-negative; ValidateEarlyTermination checks the ranges).
const std::map<std::string, int64_t EarlyTermination::*> kEarlyTerminateIntegers = {
    {"min_iter", &EarlyTermination::min_iter},         {"max_iter", &EarlyTermination::max_iter},
    {"s", &EarlyTermination::s},                       {"grace_period", &EarlyTermination::grace_period},
    {"max_t", &EarlyTermination::max_t},               {"brackets", &EarlyTermination::brackets},
    {"warmup_evals", &EarlyTermination::warmup_evals}, {"min_jobs", &EarlyTermination::min_jobs},
};

std::string Normalize(std::string name) {
  std::replace(name.begin(), name.end(), '-', '_');
  return name;
}

// PEFT's PromptTuningConfig names for the trainer's options.
std::string Unalias(const std::string& name) {
  const std::string key = Normalize(name);
  if (key == "prompt_tuning_init") return "init";
  if (key == "prompt_tuning_init_text") return "init_text";
  return key;
}

bool Contains(const std::vector<std::string>& names, const std::string& name) {
  return std::find(names.begin(), names.end(), name) != names.end();
}

std::size_t EditDistance(const std::string& a, const std::string& b) {
  std::vector<std::size_t> row(b.size() + 1);
  for (std::size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (std::size_t i = 1; i <= a.size(); ++i) {
    std::size_t diagonal = row[0];
    row[0] = i;
    for (std::size_t j = 1; j <= b.size(); ++j) {
      const std::size_t above = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diagonal = above;
    }
  }
  return row[b.size()];
}

// "did you mean 'x'?" for the closest known name when it is close, else the list.
std::string Suggestion(const std::string& name, const std::vector<std::string>& known) {
  std::string best;
  std::size_t best_distance = std::numeric_limits<std::size_t>::max();
  for (const std::string& candidate : known) {
    const std::size_t distance = EditDistance(name, candidate);
    if (distance < best_distance) {
      best = candidate;
      best_distance = distance;
    }
  }
  if (!best.empty() && best_distance <= std::max<std::size_t>(2, name.size() / 2)) {
    return StrCat("did you mean '", best, "'?");
  }
  std::string list;
  for (const std::string& candidate : known) list += (list.empty() ? "" : ", ") + candidate;
  return StrCat("known: ", list);
}

// ReadFile, keeping this reader's "<path>: cannot open <what>" for a path
// that does not open (tests/cli/plan_cli_test.sh asserts it); a disk failure
// stays ReadFile's IoError.
std::string ReadYamlText(const std::string& path, const std::string& what) {
  try {
    return ReadFile(path, what);
  } catch (const IoError&) {
    throw;
  } catch (const Error&) {
    throw Error(StrCat(path, ": cannot open ", what));
  }
}

// The sweep file or a task file being read: its path and directory.
class YamlFile {
 public:
  YamlFile(std::string path, const std::string& text) : path_(std::move(path)) {
    try {
      root_ = YAML::Load(text);
    } catch (const YAML::Exception& e) {
      throw Error(StrCat(Where(e.mark), ": invalid YAML: ", e.msg));
    }
    dir_ = fs::absolute(fs::path(path_)).parent_path();
  }
  static YamlFile Read(const std::string& path, const std::string& what) {
    return YamlFile(path, ReadYamlText(path, what));
  }

  const YAML::Node& root() const { return root_; }
  const std::string& path() const { return path_; }

  std::string Where(const YAML::Mark& mark) const {
    if (mark.line < 0) return path_;
    return StrCat(path_, ":", mark.line + 1, ":", mark.column + 1);
  }
  std::string Where(const YAML::Node& node) const { return Where(node.Mark()); }

  // `text` made absolute against this file's directory.
  std::string ResolvePath(const std::string& text) const {
    fs::path path(text);
    if (path.is_relative()) path = dir_ / path;
    return path.lexically_normal().string();
  }

  // The text of a scalar node; Error for a mapping, list or null.
  std::string Scalar(const YAML::Node& node, const std::string& what) const {
    if (!node.IsScalar()) {
      throw Error(StrCat(Where(node), ": ", what, ": expected a single value, got ", Kind(node)));
    }
    return node.Scalar();
  }

  // A mapping's entries in order. Error when `node` is not a mapping, for a
  // duplicate key (YAML forbids them; yaml-cpp keeps both) and, when `known`
  // is not empty, for a key not in it (after '-' -> '_' and `rename`).
  std::vector<std::pair<std::string, std::pair<YAML::Node, YAML::Node>>> Entries(
      const YAML::Node& node, const std::string& what, const std::vector<std::string>& known,
      std::string (*rename)(std::string) = Normalize) const {
    if (!node.IsMap()) throw Error(StrCat(Where(node), ": ", what, ": expected a mapping, got ", Kind(node)));
    std::vector<std::pair<std::string, std::pair<YAML::Node, YAML::Node>>> entries;
    std::map<std::string, YAML::Mark> seen;
    for (const auto& entry : node) {
      if (!entry.first.IsScalar()) throw Error(StrCat(Where(entry.first), ": ", what, ": a key must be a name"));
      const std::string key = rename(entry.first.Scalar());
      if (!known.empty() && !Contains(known, key)) {
        throw Error(StrCat(Where(entry.first), ": unknown key '", entry.first.Scalar(), "' in ", what, "; ",
                           Suggestion(key, known)));
      }
      const auto [it, inserted] = seen.emplace(key, entry.first.Mark());
      if (!inserted) {
        throw Error(StrCat(Where(entry.first), ": duplicate key '", entry.first.Scalar(), "' in ", what,
                           " (first at line ", it->second.line + 1, ")"));
      }
      entries.push_back({key, {entry.first, entry.second}});
    }
    return entries;
  }

  static std::string Kind(const YAML::Node& node) {
    switch (node.Type()) {
      case YAML::NodeType::Map: return "a mapping";
      case YAML::NodeType::Sequence: return "a list";
      case YAML::NodeType::Null: return "nothing (null)";
      default: return StrCat("'", node.Scalar(), "'");
    }
  }

 private:
  std::string path_;
  fs::path dir_;
  YAML::Node root_;
};

std::string UnaliasKey(std::string name) { return Unalias(name); }

// A setting and where it was given.
struct Given {
  std::string value;
  std::string where;
};

// Reads the sweep into `sweep` and checks everything that does not need the
// expansion; the expansion (Expand) then checks the jobs.
class SweepReader {
 public:
  SweepReader(const YamlFile& file, const SweepSchema& schema, Sweep& sweep)
      : file_(file), schema_(schema), sweep_(sweep) {
    for (const std::string& name : schema_.trainer_options) options_.push_back(Normalize(name));
  }

  void Read() {
    const YAML::Node& root = file_.root();
    if (root.IsNull()) throw Error(StrCat(file_.path(), ": empty sweep file; see the README's Sweep YAML reference"));
    const auto entries = file_.Entries(root, "the sweep", {"name", "description", "method", "metric", "run_cap",
                                                           "sample_seed", "seeds", "model", "task", "train",
                                                           "parameters", "early_terminate"});
    std::map<std::string, std::pair<YAML::Node, YAML::Node>> top;
    for (const auto& [key, nodes] : entries) top[key] = nodes;
    auto find = [&](const std::string& key) -> const YAML::Node* {
      const auto it = top.find(key);
      return it == top.end() ? nullptr : &it->second.second;
    };
    auto key_where = [&](const std::string& key) { return file_.Where(top.at(key).first); };

    // name
    // The name becomes a directory (runs/<name>, the coordinator's sweeps/<name>):
    // checked here, so plan, submit and run refuse it before creating anything.
    if (find("name") == nullptr) throw Error(StrCat(file_.path(), ": the sweep needs a name: (letters, digits, _ . -)"));
    sweep_.name = file_.Scalar(*find("name"), "name");
    if (!IsPlainName(sweep_.name)) {
      throw Error(StrCat(file_.Where(*find("name")), ": name '", sweep_.name,
                         "': use only letters, digits, '_', '.' and '-', not empty and not '.' or '..'"));
    }
    if (find("description") != nullptr) file_.Scalar(*find("description"), "description");

    // method, run_cap, sample_seed
    if (const YAML::Node* method = find("method")) {
      const std::string text = file_.Scalar(*method, "method");
      if (text == "grid") {
        sweep_.method = SweepMethod::kGrid;
      } else if (text == "random") {
        sweep_.method = SweepMethod::kRandom;
      } else {
        throw Error(StrCat(file_.Where(*method), ": unknown method '", text, "' (grid or random; ",
                           Suggestion(text, {"grid", "random"}), ")"));
      }
    }
    if (const YAML::Node* run_cap = find("run_cap")) {
      sweep_.run_cap = NonNegativeInteger(*run_cap, "run_cap");
    }
    run_cap_where_ = find("run_cap") ? key_where("run_cap") : file_.path();
    if (sweep_.method == SweepMethod::kRandom && sweep_.run_cap <= 0) {
      throw Error(StrCat(run_cap_where_, ": method random needs run_cap: N > 0, the number of parameter sets to draw"));
    }
    if (const YAML::Node* sample_seed = find("sample_seed")) {
      sweep_.sample_seed = static_cast<uint64_t>(NonNegativeInteger(*sample_seed, "sample_seed"));
    }

    // model, task, train (the fixed settings), then parameters.
    if (find("model") == nullptr) throw Error(StrCat(file_.path(), ": the sweep needs model: {path: MODEL_DIR}"));
    ReadModel(*find("model"));
    if (find("task") == nullptr) {
      throw Error(StrCat(file_.path(), ": the sweep needs task: {file: TASK.yaml} or task settings (train, ...)"));
    }
    ReadTask(*find("task"));
    if (const YAML::Node* train = find("train")) ReadTrain(*train);
    parameters_where_ = find("parameters") ? key_where("parameters") : file_.path();
    if (const YAML::Node* parameters = find("parameters")) ReadParameters(*parameters);

    // seeds
    const bool seed_parameter = sweep_seed_parameter_;
    if (const YAML::Node* seeds = find("seeds")) {
      if (seed_parameter) {
        throw Error(StrCat(key_where("seeds"), ": give seeds: or a 'seed' parameter (", seed_parameter_where_,
                           "), not both"));
      }
      if (fixed_.count("seed")) {
        throw Error(StrCat(key_where("seeds"), ": give seeds: or train: seed (", fixed_.at("seed").where,
                           "), not both"));
      }
      if (!seeds->IsSequence() || seeds->size() == 0) {
        throw Error(StrCat(file_.Where(*seeds), ": seeds: expected a non-empty list of seeds, e.g. [0, 1, 2]"));
      }
      std::set<uint64_t> distinct;
      for (const YAML::Node& seed : *seeds) {
        const uint64_t value = static_cast<uint64_t>(NonNegativeInteger(seed, "seeds"));
        CheckValue("seed", std::to_string(value), file_.Where(seed));
        if (!distinct.insert(value).second) throw Error(StrCat(file_.Where(seed), ": seeds: ", value, " is listed twice"));
        sweep_.seeds.push_back(value);
      }
    } else if (fixed_.count("seed")) {
      sweep_.seeds = {static_cast<uint64_t>(*ParseInteger(fixed_.at("seed").value))};
      fixed_.erase("seed");
    } else if (!seed_parameter) {
      sweep_.seeds = {DefaultSeed()};
    }

    // metric (needs the task kind)
    ReadMetric(find("metric"));

    // early_terminate: sweep-level (the coordinator's decisions), not a job
    // setting, so it leaves the job ids alone. CheckEarlyTermination checks it
    // against the jobs after the expansion.
    early_terminate_where_ = find("early_terminate") ? key_where("early_terminate") : file_.path();
    if (const YAML::Node* early_terminate = find("early_terminate")) ReadEarlyTerminate(*early_terminate);

    // The fixed settings in job-file order, defaults filled in.
    sweep_.fixed = Ordered(fixed_);
    sweep_.fixed.verbalizer = verbalizer_;
  }

  // Settings of `given` (plus defaults) in job-file order.
  JobSettings Ordered(const std::map<std::string, Given>& given) const {
    JobSettings settings;
    auto add = [&](const std::string& key) {
      const auto it = given.find(key);
      if (it != given.end()) {
        settings.values.emplace_back(key, it->second.value);
        return;
      }
      for (const auto& [name, value] : schema_.defaults) {
        if (Normalize(name) == key) {
          settings.values.emplace_back(key, value);
          return;
        }
      }
    };
    for (const std::string& key : kModelKeys) add(key);
    for (const std::string& key : kTaskKeys) add(key);
    for (const std::string& key : options_) add(key);
    return settings;
  }

  // One job's settings: the fixed ones with `swept` on top, in job-file order.
  JobSettings JobSettingsWith(const SettingList& swept) const {
    std::map<std::string, Given> given = fixed_;
    for (const auto& [name, value] : swept) given[name] = Given{value, ""};
    return Ordered(given);
  }
  const std::string& parameters_where() const { return parameters_where_; }
  const std::string& run_cap_where() const { return run_cap_where_; }
  const std::string& early_terminate_where() const { return early_terminate_where_; }

 private:
  uint64_t DefaultSeed() const {
    // The trainer's default seed (42) when the schema names one.
    for (const auto& [name, value] : schema_.defaults) {
      if (Normalize(name) == "seed") {
        if (const auto seed = ParseInteger(value); seed && *seed >= 0) return static_cast<uint64_t>(*seed);
      }
    }
    return 42;
  }

  int64_t NonNegativeInteger(const YAML::Node& node, const std::string& what) const {
    const std::string text = file_.Scalar(node, what);
    const auto value = ParseInteger(text);
    if (!value || *value < 0) {
      throw Error(StrCat(file_.Where(node), ": ", what, ": expected a non-negative integer, got '", text, "'"));
    }
    return *value;
  }

  // The injected check, once per distinct (name, value).
  void CheckValue(const std::string& name, const std::string& value, const std::string& where) {
    if (!schema_.check_value || !checked_.insert({name, value}).second) return;
    try {
      schema_.check_value(name, value);
    } catch (const Error& e) {
      checked_.erase({name, value});
      throw Error(StrCat(where, ": ", name, ": ", e.what()));
    }
  }

  // Records a fixed setting; Error when it was already given.
  void SetFixed(const std::string& key, const std::string& value, const std::string& where) {
    const auto [it, inserted] = fixed_.emplace(key, Given{value, where});
    if (!inserted) {
      throw Error(StrCat(where, ": '", key, "' is already set at ", it->second.where, "; give it once"));
    }
    CheckValue(key, value, where);
  }

  void ReadModel(const YAML::Node& node) {
    if (node.IsScalar()) {  // model: PATH
      SetFixed("model", ExistingPath(file_, node, "model", /*directory=*/true), file_.Where(node));
      return;
    }
    const auto entries = file_.Entries(node, "model", {"path", "tokenizer", "device", "dtype"});
    bool has_path = false;
    for (const auto& [key, nodes] : entries) {
      const YAML::Node& value = nodes.second;
      const std::string where = file_.Where(value);
      if (key == "path") {
        has_path = true;
        SetFixed("model", ExistingPath(file_, value, "model.path", /*directory=*/true), where);
      } else if (key == "tokenizer") {
        SetFixed("tokenizer", ExistingPath(file_, value, "model.tokenizer", /*directory=*/false), where);
      } else {
        SetFixed(key, file_.Scalar(value, "model." + key), where);
      }
    }
    if (!has_path) throw Error(StrCat(file_.Where(node), ": model needs path: MODEL_DIR"));
  }

  // A path that exists, made absolute against `file`'s directory.
  static std::string ExistingPath(const YamlFile& file, const YAML::Node& node, const std::string& what,
                                  bool directory) {
    const std::string text = file.Scalar(node, what);
    if (text.empty()) throw Error(StrCat(file.Where(node), ": ", what, ": empty path"));
    const std::string path = file.ResolvePath(text);
    const bool ok = directory ? fs::is_directory(path) : fs::is_regular_file(path);
    if (!ok) {
      throw Error(StrCat(file.Where(node), ": ", what, ": ", path, directory ? " is not a directory" : " is not a file",
                         " (relative paths are resolved against the directory of ", file.path(), ")"));
    }
    return path;
  }

  // Task keys of one mapping (a task file, or the sweep's task: section);
  // `into` receives them, later calls overriding earlier ones.
  void ReadTaskKeys(const YamlFile& file, const YAML::Node& node, bool allow_file,
                    std::map<std::string, Given>& into, std::optional<std::pair<SettingList, std::string>>& verbalizer) {
    std::vector<std::string> known = kTaskKeys;
    known.push_back("verbalizer");
    if (allow_file) known.insert(known.begin(), "file");
    const std::string what = allow_file ? "task" : StrCat("task file ", file.path());
    for (const auto& [key, nodes] : file.Entries(node, what, known)) {
      const YAML::Node& value = nodes.second;
      const std::string where = file.Where(value);
      if (key == "file") continue;
      if (key == "verbalizer") {
        SettingList pairs;
        for (const auto& [label, words] : file.Entries(value, "verbalizer", {}, [](std::string s) { return s; })) {
          pairs.emplace_back(label, file.Scalar(words.second, StrCat("verbalizer '", label, "'")));
        }
        if (pairs.empty()) throw Error(StrCat(where, ": verbalizer: give label: words for every label"));
        verbalizer = std::make_pair(std::move(pairs), where);
      } else if (Contains(kTaskPathKeys, key)) {
        into[key] = Given{ExistingPath(file, value, key, /*directory=*/false), where};
      } else {
        into[key] = Given{file.Scalar(value, key), where};
      }
    }
  }

  void ReadTask(const YAML::Node& node) {
    std::map<std::string, Given> task;
    std::optional<std::pair<SettingList, std::string>> verbalizer;
    if (node.IsMap() && node["file"]) {
      const YAML::Node file_node = node["file"];
      const std::string path = ExistingPath(file_, file_node, "task.file", /*directory=*/false);
      const YamlFile task_file = YamlFile::Read(path, "task file");
      if (!task_file.root().IsNull()) ReadTaskKeys(task_file, task_file.root(), /*allow_file=*/false, task, verbalizer);
    }
    ReadTaskKeys(file_, node, /*allow_file=*/true, task, verbalizer);  // inline keys override the file's
    for (const auto& [key, given] : task) SetFixed(key, given.value, given.where);

    const auto kind = task.find("task");
    task_kind_ = kind == task.end() ? "classification" : kind->second.value;
    if (task_kind_ != "classification" && task_kind_ != "generation") {
      throw Error(StrCat(kind->second.where, ": unknown task '", task_kind_, "' (classification or generation)"));
    }
    if (!task.count("train")) {
      throw Error(StrCat(file_.Where(node), ": task needs train: TRAIN.jsonl (here or in its task file)"));
    }
    if (task_kind_ == "classification") {
      if (!verbalizer) {
        throw Error(StrCat(file_.Where(node),
                           ": a classification task needs verbalizer: {label: words, ...} (here or in its task file)"));
      }
      verbalizer_ = verbalizer->first;
    } else if (verbalizer) {
      throw Error(StrCat(verbalizer->second, ": a generation task has no verbalizer"));
    }
  }

  // A trainer option's name (aliases mapped); Error with a suggestion otherwise.
  std::string OptionName(const YamlFile& file, const YAML::Node& key_node, const std::string& what) const {
    const std::string name = Unalias(key_node.Scalar());
    if (!Contains(options_, name)) {
      throw Error(StrCat(file.Where(key_node), ": unknown trainer setting '", key_node.Scalar(), "' in ", what, "; ",
                         Suggestion(name, options_)));
    }
    return name;
  }

  void ReadTrain(const YAML::Node& node) {
    for (const auto& [key, nodes] : file_.Entries(node, "train", {}, UnaliasKey)) {
      const std::string name = OptionName(file_, nodes.first, "train");
      SetFixed(name, file_.Scalar(nodes.second, "train." + name), file_.Where(nodes.second));
    }
  }

  // A mapping value: settings at once and an optional label.
  ParameterValue MappingValue(const YAML::Node& node, const std::string& parameter) {
    ParameterValue value;
    std::string label;
    for (const auto& [key, nodes] : file_.Entries(node, StrCat("a value of parameter '", parameter, "'"), {},
                                                  UnaliasKey)) {
      if (key == "label") {
        value.label = file_.Scalar(nodes.second, "label");
        continue;
      }
      const std::string name = OptionName(file_, nodes.first, StrCat("a value of parameter '", parameter, "'"));
      const std::string text = file_.Scalar(nodes.second, name);
      CheckValue(name, text, file_.Where(nodes.second));
      value.settings.emplace_back(name, text);
    }
    if (value.settings.empty()) throw Error(StrCat(file_.Where(node), ": a mapping value needs at least one setting"));
    if (value.label.empty()) {
      for (const auto& [name, text] : value.settings) value.label += StrCat(value.label.empty() ? "" : ",", name, "=", text);
    }
    return value;
  }

  // One scalar or mapping value of `parameter` (`name` is its option for a scalar).
  ParameterValue Value(const YAML::Node& node, const std::string& parameter, const YAML::Node& key_node) {
    if (node.IsMap()) return MappingValue(node, parameter);
    const std::string name = OptionName(file_, key_node, "parameters");
    const std::string text = file_.Scalar(node, StrCat("parameter '", parameter, "'"));
    CheckValue(name, text, file_.Where(node));
    return ParameterValue{text, {{name, text}}};
  }

  double Number(const YAML::Node& node, const std::string& what) const {
    const std::string text = file_.Scalar(node, what);
    const auto value = ParseDouble(text);
    if (!value) throw Error(StrCat(file_.Where(node), ": ", what, ": expected a number, got '", text, "'"));
    return *value;
  }

  void ReadParameters(const YAML::Node& node) {
    for (const auto& [key, nodes] : file_.Entries(node, "parameters", {}, UnaliasKey)) {
      const YAML::Node& key_node = nodes.first;
      const YAML::Node& spec = nodes.second;
      const std::string where = file_.Where(key_node);
      const auto fields = file_.Entries(spec, StrCat("parameter '", key, "'"),
                                        {"values", "value", "min", "max", "distribution", "q"});
      std::map<std::string, YAML::Node> field;
      for (const auto& [name, field_nodes] : fields) field[name] = field_nodes.second;
      auto has = [&](const char* name) { return field.count(name) > 0; };

      if (has("value")) {  // a constant: fixed settings, not swept
        if (has("values") || has("min") || has("max") || has("distribution") || has("q")) {
          throw Error(StrCat(where, ": parameter '", key, "': value: is a constant; give it alone"));
        }
        const ParameterValue value = Value(field["value"], key, key_node);
        for (const auto& [name, text] : value.settings) SetFixed(name, text, file_.Where(field["value"]));
        continue;
      }

      SweepParameter parameter;
      parameter.name = key;
      parameter.where = where;
      std::string distribution;
      if (has("distribution")) distribution = file_.Scalar(field["distribution"], "distribution");
      const std::vector<std::string> distributions = {"categorical", "uniform", "log_uniform_values", "int_uniform",
                                                      "q_uniform"};
      if (!distribution.empty() && !Contains(distributions, distribution)) {
        throw Error(StrCat(file_.Where(field["distribution"]), ": unsupported distribution '", distribution, "'; ",
                           Suggestion(distribution, distributions)));
      }

      if (has("values")) {
        if (has("min") || has("max") || has("q")) {
          throw Error(StrCat(where, ": parameter '", key, "': give values: or min:/max:, not both"));
        }
        if (!distribution.empty() && distribution != "categorical") {
          throw Error(StrCat(file_.Where(field["distribution"]), ": parameter '", key, "': values: are categorical, not ",
                             distribution));
        }
        const YAML::Node& values = field["values"];
        if (!values.IsSequence()) {
          throw Error(StrCat(file_.Where(values), ": parameter '", key, "': values: expected a list, got ",
                             YamlFile::Kind(values)));
        }
        if (values.size() == 0) throw Error(StrCat(file_.Where(values), ": parameter '", key, "': values: is empty"));
        std::map<std::string, std::string> labels;
        for (const YAML::Node& item : values) {
          ParameterValue value = Value(item, key, key_node);
          const auto [it, inserted] = labels.emplace(value.label, file_.Where(item));
          if (!inserted) {
            throw Error(StrCat(file_.Where(item), ": parameter '", key, "': value '", value.label,
                               "' is listed twice (first at ", it->second, ")"));
          }
          parameter.values.push_back(std::move(value));
        }
        parameter.distribution = Distribution::kCategorical;
      } else if (has("min") || has("max")) {
        if (!has("min") || !has("max")) {
          throw Error(StrCat(where, ": parameter '", key, "': a range needs both min: and max:"));
        }
        const std::string name = OptionName(file_, key_node, "parameters");
        const YAML::Node& min = field["min"];
        const YAML::Node& max = field["max"];
        parameter.min = Number(min, "min");
        parameter.max = Number(max, "max");
        const bool integers = ParseInteger(min.Scalar()) && ParseInteger(max.Scalar());
        if (distribution.empty()) distribution = integers ? "int_uniform" : "uniform";  // W&B's inference
        if (distribution == "categorical") {
          throw Error(StrCat(file_.Where(field["distribution"]), ": parameter '", key,
                             "': categorical needs values: [...]"));
        }
        if (parameter.min >= parameter.max) {
          throw Error(StrCat(file_.Where(min), ": parameter '", key, "': min (", min.Scalar(),
                             ") must be less than max (", max.Scalar(), ")"));
        }
        if (distribution == "log_uniform_values") {
          parameter.distribution = Distribution::kLogUniformValues;
          if (parameter.min <= 0) {
            throw Error(StrCat(file_.Where(min), ": parameter '", key, "': log_uniform_values needs min > 0, got ",
                               min.Scalar()));
          }
        } else if (distribution == "int_uniform") {
          parameter.distribution = Distribution::kIntUniform;
          if (!integers) {
            throw Error(StrCat(file_.Where(ParseInteger(min.Scalar()) ? max : min), ": parameter '", key,
                               "': int_uniform needs integer min and max"));
          }
        } else if (distribution == "q_uniform") {
          parameter.distribution = Distribution::kQUniform;
          if (has("q")) parameter.q = Number(field["q"], "q");
          if (parameter.q <= 0) throw Error(StrCat(file_.Where(field["q"]), ": parameter '", key, "': q must be > 0"));
        } else {
          parameter.distribution = Distribution::kUniform;
        }
        if (has("q") && parameter.distribution != Distribution::kQUniform) {
          throw Error(StrCat(file_.Where(field["q"]), ": parameter '", key, "': q: is only for q_uniform"));
        }
        if (sweep_.method == SweepMethod::kGrid) {
          throw Error(StrCat(where, ": parameter '", key, "': a ", distribution,
                             " range needs method: random (grid search takes values: [...])"));
        }
        CheckValue(name, min.Scalar(), file_.Where(min));
        CheckValue(name, max.Scalar(), file_.Where(max));
        parameter.values.push_back(ParameterValue{"", {{name, ""}}});  // the setting a draw fills in
      } else {
        throw Error(StrCat(where, ": parameter '", key, "' needs values: [...], value: V, or min: and max:"));
      }

      // Each setting comes from one place.
      for (const ParameterValue& value : parameter.values) {
        for (const auto& [name, text] : value.settings) {
          if (const auto it = fixed_.find(name); it != fixed_.end()) {
            throw Error(StrCat(where, ": parameter '", key, "' sets '", name, "', which is already set at ",
                               it->second.where, "; give it once"));
          }
          const auto [it, inserted] = swept_by_.emplace(name, key);
          if (!inserted && it->second != key) {
            throw Error(StrCat(where, ": parameter '", key, "' sets '", name, "', which parameter '", it->second,
                               "' sets too; give it in one parameter"));
          }
          if (name == "seed") {
            sweep_seed_parameter_ = true;
            seed_parameter_where_ = where;
          }
        }
      }
      sweep_.parameters.push_back(std::move(parameter));
    }
    // A constant given after a parameter that sets the same name.
    for (const auto& [name, given] : fixed_) {
      if (const auto it = swept_by_.find(name); it != swept_by_.end()) {
        throw Error(StrCat(given.where, ": '", name, "' is already set by parameter '", it->second, "'; give it once"));
      }
    }
  }

  void ReadMetric(const YAML::Node* node) {
    const std::string natural = task_kind_ == "generation" ? "exact_match" : "accuracy";
    sweep_.metric.name = natural;
    std::optional<std::string> goal;
    std::string where = file_.path();
    if (node != nullptr) {
      where = file_.Where(*node);
      for (const auto& [key, nodes] : file_.Entries(*node, "metric", {"name", "goal"})) {
        const std::string text = file_.Scalar(nodes.second, "metric." + key);
        if (key == "name") {
          const std::vector<std::string> names = {"accuracy", "exact_match", "loss"};
          if (!Contains(names, text)) {
            throw Error(StrCat(file_.Where(nodes.second), ": unknown metric '", text, "'; ", Suggestion(text, names)));
          }
          if (text != "loss" && text != natural) {
            throw Error(StrCat(file_.Where(nodes.second), ": metric ", text, " is not measured for a ", task_kind_,
                               " task; use ", natural, " or loss"));
          }
          sweep_.metric.name = text;
        } else {
          if (text != "maximize" && text != "minimize") {
            throw Error(StrCat(file_.Where(nodes.second), ": metric goal '", text, "': maximize or minimize"));
          }
          goal = text;
        }
      }
    }
    const std::string goal_text = goal.value_or(sweep_.metric.name == "loss" ? "minimize" : "maximize");
    sweep_.metric.goal = goal_text == "maximize" ? MetricGoal::kMaximize : MetricGoal::kMinimize;
  }

  // early_terminate: {type: hyperband | asha | median, ...} with W&B's keys
  // (hyperband) and Ray Tune's ASHAScheduler's (asha; reduction_factor is
  // EarlyTermination::eta).
  void ReadEarlyTerminate(const YAML::Node& node) {
    const std::string& key_where = early_terminate_where_;
    std::map<std::string, YAML::Node> given;  // Entries also refuses a non-mapping and duplicate keys
    for (const auto& [key, nodes] : file_.Entries(node, "early_terminate", {})) given[key] = nodes.second;
    std::vector<std::string> type_names;
    for (const EarlyTerminateKeys& type : kEarlyTerminateTypes) {
      type_names.emplace_back(EarlyTerminationTypeName(type.type));
    }
    if (given.count("type") == 0) {
      throw Error(StrCat(key_where, ": early_terminate needs type: hyperband, asha or median"));
    }
    const std::string type_text = file_.Scalar(given.at("type"), "early_terminate.type");
    const auto type =
        std::find_if(kEarlyTerminateTypes.begin(), kEarlyTerminateTypes.end(),
                     [&](const EarlyTerminateKeys& t) { return EarlyTerminationTypeName(t.type) == type_text; });
    if (type == kEarlyTerminateTypes.end()) {
      throw Error(StrCat(file_.Where(given.at("type")), ": unknown early_terminate type '", type_text,
                         "' (hyperband, asha or median); ", Suggestion(type_text, type_names)));
    }
    // A key of another type: say whose it is rather than suggest a near miss.
    for (const auto& entry : node) {
      const std::string key = Normalize(entry.first.Scalar());
      if (Contains(type->keys, key)) continue;
      for (const EarlyTerminateKeys& other : kEarlyTerminateTypes) {
        if (!Contains(other.keys, key)) continue;
        std::string known;
        for (const std::string& name : type->keys) known += (known.empty() ? "" : ", ") + name;
        throw Error(StrCat(file_.Where(entry.first), ": unknown key '", entry.first.Scalar(), "' in early_terminate: ",
                           key, " is for type ", EarlyTerminationTypeName(other.type), ", not ", type_text,
                           "; known: ", known));
      }
    }
    EarlyTermination config = DefaultEarlyTermination(type->type);
    for (const auto& [key, nodes] : file_.Entries(node, "early_terminate", type->keys)) {
      const YAML::Node& value = nodes.second;
      const std::string what = "early_terminate." + key;
      if (const auto field = kEarlyTerminateIntegers.find(key); field != kEarlyTerminateIntegers.end()) {
        config.*(field->second) = NonNegativeInteger(value, what);
      } else if (key == "eta" || key == "reduction_factor") {
        config.eta = Number(value, what);
      } else if (key == "strict") {
        config.strict = Boolean(value, what);
      }
    }
    try {
      ValidateEarlyTermination(config);
    } catch (const Error& e) {
      throw Error(StrCat(key_where, ": ", e.what()));
    }
    sweep_.early_terminate = config;
  }

  // YAML 1.2's core-schema booleans.
  bool Boolean(const YAML::Node& node, const std::string& what) const {
    const std::string text = file_.Scalar(node, what);
    if (text == "true" || text == "True" || text == "TRUE") return true;
    if (text == "false" || text == "False" || text == "FALSE") return false;
    throw Error(StrCat(file_.Where(node), ": ", what, ": expected true or false, got '", text, "'"));
  }

  const YamlFile& file_;
  const SweepSchema& schema_;
  Sweep& sweep_;
  std::vector<std::string> options_;
  std::map<std::string, Given> fixed_;
  std::map<std::string, std::string> swept_by_;  // setting -> parameter
  SettingList verbalizer_;
  std::string task_kind_;
  std::set<std::pair<std::string, std::string>> checked_;
  bool sweep_seed_parameter_ = false;
  std::string seed_parameter_where_;
  std::string parameters_where_;
  std::string run_cap_where_;
  std::string early_terminate_where_;
};

// "the 3 dev evaluations of job 1a2b… (max_steps 150 / eval_every 50)"
std::string EvaluationsOf(const SweepJob& job, int64_t evaluations, int64_t max_steps, int64_t eval_every) {
  return StrCat("the ", evaluations, evaluations == 1 ? " dev evaluation" : " dev evaluations", " of job ", job.id,
                " (max_steps ", max_steps, " / eval_every ", eval_every, ")");
}

// early_terminate against each job: decisions need dev evaluations during
// training (an iteration is one, every eval_every steps: max_steps / eval_every
// of them), a first rung within them, and the sweep's metric as the dev
// metric the jobs report. Error at the early_terminate key (`where`).
void CheckEarlyTermination(const Sweep& sweep, const std::string& where) {
  const EarlyTermination& config = sweep.early_terminate;
  for (const SweepJob& job : sweep.jobs) {
    const SettingList& settings = job.settings.values;
    if (SettingValue(settings, "dev").empty()) {
      throw Error(StrCat(where, ": early_terminate decides on dev evaluations, but job ", job.id,
                         " has no dev set; give task: {dev: DEV.jsonl} (or dev: in the task file)"));
    }
    const auto max_steps = ParseInteger(SettingValue(settings, "max_steps"));
    const auto eval_every = ParseInteger(SettingValue(settings, "eval_every"));
    // A schema without these options (not the trainer's) has nothing to count.
    if (max_steps && eval_every) {
      if (*eval_every <= 0) {
        throw Error(StrCat(where, ": early_terminate decides on dev evaluations during training, but job ", job.id,
                           " has eval_every ", *eval_every,
                           " (one evaluation, at the end); set train: {eval_every: N}"));
      }
      const int64_t evaluations = *max_steps / *eval_every;
      // RungIterations takes evaluations <= 0 as "no limit".
      if (evaluations <= 0 || RungIterations(config, evaluations).empty()) {
        const std::string of_job = EvaluationsOf(job, evaluations, *max_steps, *eval_every);
        switch (config.type) {
          case EarlyTerminationType::kHyperband:
            if (config.min_iter > 0) {
              throw Error(StrCat(where, ": early_terminate.min_iter ", config.min_iter, " is beyond ", of_job,
                                 "; lower min_iter or raise max_steps"));
            }
            throw Error(StrCat(where, ": early_terminate: the first hyperband rung, evaluation ",
                               RungIterations(config, 0).front(), " (max_iter ", config.max_iter, " / eta ",
                               FormatShortest(config.eta), "^s, s ", config.s, "), is beyond ", of_job,
                               "; lower max_iter, raise s or raise max_steps"));
          case EarlyTerminationType::kAsha:
            throw Error(StrCat(where, ": early_terminate.grace_period ", config.grace_period, " is beyond ", of_job,
                               "; lower grace_period or raise max_steps"));
          case EarlyTerminationType::kMedian:
            throw Error(StrCat(where, ": early_terminate.warmup_evals ", config.warmup_evals,
                               " leaves no evaluation of ", of_job,
                               " to decide on; lower warmup_evals or raise max_steps"));
          case EarlyTerminationType::kNone:
            break;
        }
      }
    }
    // The trainer's eval_metric, auto resolved as the trainer does (by the task kind).
    std::string metric = Normalize(SettingValue(settings, "eval_metric", "auto"));
    if (metric == "auto") metric = SettingValue(settings, "task") == "generation" ? "exact_match" : "accuracy";
    if (metric != sweep.metric.name) {
      throw Error(StrCat(where, ": early_terminate decides on the dev metric the jobs report (eval_metric ", metric,
                         " for job ", job.id, "), but the sweep's metric is ", sweep.metric.name,
                         "; set train: {eval_metric: ", sweep.metric.name, "} or metric: {name: ", metric, "}"));
    }
  }
}

}  // namespace

Sweep ParseSweep(const std::string& text, const std::string& path, const SweepSchema& schema) {
  const YamlFile file(path, text);
  Sweep sweep;
  sweep.path = fs::absolute(fs::path(path)).lexically_normal().string();
  SweepReader reader(file, schema, sweep);
  reader.Read();
  ReadSweepSettings settings;
  settings.job_settings = [&reader](const SettingList& swept) { return reader.JobSettingsWith(swept); };
  settings.parameters_where = reader.parameters_where();
  settings.run_cap_where = reader.run_cap_where();
  ExpandSweep(settings, schema, sweep);
  if (sweep.early_terminate.enabled()) CheckEarlyTermination(sweep, reader.early_terminate_where());
  return sweep;
}

Sweep ReadSweep(const std::string& path, const SweepSchema& schema) {
  return ParseSweep(ReadYamlText(path, "sweep file"), path, schema);
}

}  // namespace promptsweep
