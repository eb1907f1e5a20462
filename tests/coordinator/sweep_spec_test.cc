#include "coordinator/sweep_spec.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <map>
#include <set>
#include <string>

#include <gtest/gtest.h>

#include "common/error.h"
#include "test_utils.h"

namespace promptsweep {
namespace {

using test::ErrorOf;
using test::HasText;

// A stand-in for the trainer's options: the same kinds of names, defaults and checks.
SweepSchema FakeSchema() {
  SweepSchema schema;
  schema.trainer_options = {"num_virtual_tokens", "init",      "init_text", "learning_rate", "weight_decay",
                            "max_steps",          "batch_size", "eval_every", "seed"};
  schema.defaults = {{"device", "cpu"},          {"dtype", "float32"},        {"task", "classification"},
                     {"template", ""},           {"max_length", "256"},       {"num_virtual_tokens", "20"},
                     {"init", "SAMPLE_VOCAB"},   {"init_text", ""},           {"learning_rate", "0.3"},
                     {"weight_decay", "1e-05"},  {"max_steps", "1000"},       {"batch_size", "8"},
                     {"eval_every", "100"},      {"seed", "42"}};
  schema.check_value = [](const std::string& name, const std::string& value) {
    if (name == "num_virtual_tokens" && std::stoll(value) < 1) {
      throw Error(StrCat("num_virtual_tokens must be >= 1, got ", value));
    }
    if (name == "learning_rate" && std::stod(value) <= 0) throw Error(StrCat("learning_rate must be > 0, got ", value));
    if (name == "init" && value != "RANDOM" && value != "SAMPLE_VOCAB" && value != "TEXT") {
      throw Error(StrCat("unknown init '", value, "'"));
    }
    if (name == "dtype" && value != "float32" && value != "bfloat16") throw Error("unsupported dtype");
  };
  schema.check_job = [](const JobSettings& settings) {
    std::map<std::string, std::string> values(settings.values.begin(), settings.values.end());
    if (values["init"] == "TEXT" && values["init_text"].empty()) throw Error("init TEXT needs a non-empty init_text");
  };
  return schema;
}

// The brief's example sweep, on files in a temporary directory.
constexpr char kExample[] = R"(name: init-vs-length-spam
method: grid
metric: {name: accuracy, goal: maximize}
seeds: [0, 1, 2]
model:
  path: ../models/m
  dtype: float32
task:
  file: ../data/spam/task.yaml
  max_length: 64
train:
  max_steps: 150
  batch_size: 8
parameters:
  learning_rate: {values: [0.3]}
  num_virtual_tokens: {values: [4, 8, 16, 32]}
  init:
    values:
      - {label: random, init: RANDOM}
      - {label: sample_vocab, init: SAMPLE_VOCAB}
      - {label: text_task, init: TEXT, init_text: "Is this mail spam or ham?"}
      - {label: text_labels, init: TEXT, init_text: " spam ham"}
  weight_decay: {value: 1.0e-5}
)";

class SweepSpecTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::filesystem::create_directories(dir_.path() / "models" / "m");
    std::filesystem::create_directories(dir_.path() / "data" / "spam");
    std::filesystem::create_directories(dir_.path() / "sweeps");
    test::WriteFileBytes(dir_.File("data/spam/train.jsonl"), "{\"text\": \"a\", \"label\": \"spam\"}\n");
    test::WriteFileBytes(dir_.File("data/spam/dev.jsonl"), "{\"text\": \"b\", \"label\": \"ham\"}\n");
    test::WriteFileBytes(dir_.File("data/spam/task.yaml"),
                         "task: classification\ntemplate: \"{text}\\nSpam?\"\nverbalizer:\n  spam: \" spam\"\n"
                         "  ham: \" ham\"\nmax_length: 96\ntrain: train.jsonl\ndev: dev.jsonl\n");
  }

  // Writes `yaml` to sweeps/s.yaml and reads it.
  Sweep Read(const std::string& yaml) {
    test::WriteFileBytes(SweepPath(), yaml);
    return ReadSweep(SweepPath(), FakeSchema());
  }
  std::string ErrorFor(const std::string& yaml) {
    return ErrorOf([&] { Read(yaml); });
  }
  // kExample with `from` replaced by `to` (which must occur).
  static std::string Example(const std::string& from, const std::string& to) {
    std::string yaml = kExample;
    const std::size_t at = yaml.find(from);
    EXPECT_NE(at, std::string::npos) << from;
    return at == std::string::npos ? yaml : yaml.replace(at, from.size(), to);
  }
  std::string SweepPath() const { return dir_.File("sweeps/s.yaml"); }
  std::string Abs(const std::string& relative) const {
    return (dir_.path() / relative).lexically_normal().string();
  }

  test::ScopedTempDir dir_;
};

std::map<std::string, std::string> AsMap(const SettingList& list) { return {list.begin(), list.end()}; }

TEST_F(SweepSpecTest, GridIsTheCartesianProductInYamlOrderWithSeedsInnermost) {
  const Sweep sweep = Read(kExample);
  EXPECT_EQ(sweep.name, "init-vs-length-spam");
  ASSERT_EQ(sweep.jobs.size(), 48u);
  EXPECT_EQ(SweepSummary(sweep), "48 jobs: 1 learning_rate × 4 num_virtual_tokens × 4 init × 3 seeds");
  EXPECT_TRUE(sweep.warnings.empty());
  const SettingList first = {{"learning_rate", "0.3"}, {"num_virtual_tokens", "4"}, {"init", "random"}};
  EXPECT_EQ(sweep.jobs[0].swept, first);
  EXPECT_EQ(sweep.jobs[0].seed, 0u);
  EXPECT_EQ(sweep.jobs[2].seed, 2u);
  EXPECT_EQ(AsMap(sweep.jobs[3].swept)["init"], "sample_vocab");  // next init after the seeds
  EXPECT_EQ(AsMap(sweep.jobs[12].swept)["num_virtual_tokens"], "8");
  EXPECT_EQ(AsMap(sweep.jobs[47].swept)["init"], "text_labels");
  std::set<std::string> ids;
  for (const SweepJob& job : sweep.jobs) {
    EXPECT_EQ(job.id.size(), 16u);
    EXPECT_EQ(job.id.find_first_not_of("0123456789abcdef"), std::string::npos);
    ids.insert(job.id);
  }
  EXPECT_EQ(ids.size(), 48u);
  EXPECT_EQ(sweep.metric.name, "accuracy");
  EXPECT_EQ(sweep.metric.goal, MetricGoal::kMaximize);
}

TEST_F(SweepSpecTest, JobSettingsMergeModelTaskFileTrainParametersSeedAndDefaults) {
  const Sweep sweep = Read(kExample);
  const SweepJob& job = sweep.jobs[47];  // nvt 32, text_labels, seed 2
  const auto settings = AsMap(job.settings.values);
  EXPECT_EQ(settings.at("model"), Abs("models/m"));  // relative to the sweep file
  EXPECT_EQ(settings.at("train"), Abs("data/spam/train.jsonl"));  // relative to the task file
  EXPECT_EQ(settings.at("dev"), Abs("data/spam/dev.jsonl"));
  EXPECT_EQ(settings.count("test"), 0u);
  EXPECT_EQ(settings.at("max_length"), "64");  // inline overrides the task file's 96
  EXPECT_EQ(settings.at("template"), "{text}\nSpam?");
  EXPECT_EQ(settings.at("device"), "cpu");  // default
  EXPECT_EQ(settings.at("max_steps"), "150");
  EXPECT_EQ(settings.at("eval_every"), "100");  // default
  EXPECT_EQ(settings.at("weight_decay"), "1.0e-5");  // a value: constant
  EXPECT_EQ(settings.at("init"), "TEXT");
  EXPECT_EQ(settings.at("init_text"), " spam ham");
  EXPECT_EQ(settings.at("num_virtual_tokens"), "32");
  EXPECT_EQ(settings.at("seed"), "2");
  const SettingList verbalizer = {{"spam", " spam"}, {"ham", " ham"}};
  EXPECT_EQ(job.settings.verbalizer, verbalizer);
  // Job-file order: model keys, task keys, then the options in schema order.
  EXPECT_EQ(job.settings.values.front().first, "model");
  EXPECT_EQ(job.settings.values.back().first, "seed");
  // weight_decay is a constant, not swept.
  for (const SweepParameter& p : sweep.parameters) EXPECT_NE(p.name, "weight_decay");
}

TEST_F(SweepSpecTest, IdsAreStableAndChangeWithAnySetting) {
  const Sweep a = Read(kExample);
  const Sweep b = Read(kExample);
  for (std::size_t i = 0; i < a.jobs.size(); ++i) EXPECT_EQ(a.jobs[i].id, b.jobs[i].id);
  // The name is not a setting; a default spelled out is the same setting.
  const Sweep renamed = Read(Example("name: init-vs-length-spam", "name: other\n# comment"));
  EXPECT_EQ(renamed.jobs[5].id, a.jobs[5].id);
  const Sweep spelled = Read(Example("  batch_size: 8", "  batch_size: 8\n  eval_every: 100"));
  EXPECT_EQ(spelled.jobs[5].id, a.jobs[5].id);
  // Any fixed setting changes every id.
  const Sweep steps = Read(Example("max_steps: 150", "max_steps: 151"));
  for (std::size_t i = 0; i < a.jobs.size(); ++i) EXPECT_NE(steps.jobs[i].id, a.jobs[i].id);
  const Sweep verbalizer = Read(Example("  max_length: 64", "  max_length: 64\n  verbalizer: {spam: \" Spam\", ham: \" ham\"}"));
  EXPECT_NE(verbalizer.jobs[0].id, a.jobs[0].id);
  // The id is the hash of the settings alone.
  EXPECT_EQ(JobId(a.jobs[7].settings), a.jobs[7].id);
}

TEST_F(SweepSpecTest, RunCapKeepsTheFirstGridJobsAndWarns) {
  const Sweep sweep = Read(Example("seeds:", "run_cap: 10\nseeds:"));
  ASSERT_EQ(sweep.jobs.size(), 10u);
  EXPECT_EQ(sweep.uncapped_jobs, 48);
  ASSERT_EQ(sweep.warnings.size(), 1u);
  EXPECT_TRUE(HasText(sweep.warnings[0], "keeps the first 10 of 48"));
  EXPECT_TRUE(HasText(SweepSummary(sweep), "10 jobs: ") && HasText(SweepSummary(sweep), "(run_cap 10 of 48)"));
  EXPECT_EQ(sweep.jobs[9].id, Read(kExample).jobs[9].id);
}

TEST_F(SweepSpecTest, SeedsDefaultToTheTrainersAndMayBeAParameter) {
  const Sweep defaults = Read(Example("seeds: [0, 1, 2]\n", ""));
  ASSERT_EQ(defaults.jobs.size(), 16u);
  EXPECT_EQ(defaults.jobs[0].seed, 42u);
  EXPECT_EQ(SweepSummary(defaults), "16 jobs: 1 learning_rate × 4 num_virtual_tokens × 4 init × 1 seed");
  const Sweep parameter = Read(Example("seeds: [0, 1, 2]\n", "").append("  seed: {values: [7, 8]}\n"));
  ASSERT_EQ(parameter.jobs.size(), 32u);
  EXPECT_EQ(parameter.jobs[1].seed, 8u);
  EXPECT_EQ(AsMap(parameter.jobs[1].swept)["seed"], "8");
  std::string in_train_yaml = Example("seeds: [0, 1, 2]\n", "");
  in_train_yaml.insert(in_train_yaml.find("  max_steps"), "  seed: 5\n");
  const Sweep in_train = Read(in_train_yaml);
  EXPECT_EQ(in_train.jobs[0].seed, 5u);
  EXPECT_EQ(in_train.jobs.size(), 16u);
}

TEST_F(SweepSpecTest, MappingValuesWithoutLabelAreNamedBySettings) {
  std::string yaml = Example("{label: random, init: RANDOM}", "{init: RANDOM, num_virtual_tokens: 3}");
  const std::string swept_tokens = "  num_virtual_tokens: {values: [4, 8, 16, 32]}\n";
  yaml.erase(yaml.find(swept_tokens), swept_tokens.size());
  const Sweep sweep = Read(yaml);
  EXPECT_EQ(AsMap(sweep.jobs[0].swept)["init"], "init=RANDOM,num_virtual_tokens=3");
  EXPECT_EQ(AsMap(sweep.jobs[0].settings.values)["num_virtual_tokens"], "3");
}

// A random sweep over every range distribution.
constexpr char kRandom[] = R"(name: r
method: random
run_cap: 400
sample_seed: 7
seeds: [1, 2]
model: ../models/m
task: {file: ../data/spam/task.yaml}
parameters:
  learning_rate: {min: 0.001, max: 1.0, distribution: log_uniform_values}
  weight_decay: {min: 0.0, max: 0.5}
  num_virtual_tokens: {min: 2, max: 9}
  max_steps: {min: 10, max: 100, distribution: q_uniform, q: 10}
  init: {values: [RANDOM, SAMPLE_VOCAB]}
)";

TEST_F(SweepSpecTest, RandomDrawsRunCapSetsTimesSeedsWithinBounds) {
  const Sweep sweep = Read(kRandom);
  ASSERT_EQ(sweep.jobs.size(), 800u);
  EXPECT_EQ(SweepSummary(sweep), "800 jobs: 400 random draws × 2 seeds");
  std::set<int64_t> tokens;
  double lr_min = 1e9;
  double lr_max = 0;
  int below_0_01 = 0;
  for (std::size_t i = 0; i < sweep.jobs.size(); ++i) {
    const auto s = AsMap(sweep.jobs[i].settings.values);
    const double lr = std::stod(s.at("learning_rate"));
    lr_min = std::min(lr_min, lr);
    lr_max = std::max(lr_max, lr);
    if (lr < 0.01) ++below_0_01;
    const double wd = std::stod(s.at("weight_decay"));
    EXPECT_TRUE(wd >= 0.0 && wd <= 0.5) << wd;
    const int64_t n = std::stoll(s.at("num_virtual_tokens"));
    EXPECT_EQ(s.at("num_virtual_tokens"), std::to_string(n));
    EXPECT_TRUE(n >= 2 && n <= 9) << n;
    tokens.insert(n);
    const std::string steps = s.at("max_steps");
    EXPECT_TRUE(steps.size() >= 2 && steps.back() == '0' && std::stoll(steps) >= 10 && std::stoll(steps) <= 100)
        << steps;
    if (i % 2 == 1) {  // seeds innermost: the same draw with the other seed
      EXPECT_EQ(sweep.jobs[i].swept, sweep.jobs[i - 1].swept);
      EXPECT_EQ(sweep.jobs[i].seed, 2u);
    }
  }
  EXPECT_GE(lr_min, 0.001);
  EXPECT_LE(lr_max, 1.0);
  EXPECT_LT(lr_min, 0.0015);
  EXPECT_GT(lr_max, 0.7);
  // Log-uniform: a third of the draws fall in each decade.
  EXPECT_NEAR(below_0_01 / 800.0, 1.0 / 3.0, 0.08);
  EXPECT_EQ(tokens.size(), 8u);  // both ends of [2, 9] are drawn
}

constexpr char kPinnedLr[] = "0.18329723444596452";
constexpr char kPinnedTokens[] = "8";

TEST_F(SweepSpecTest, RandomIsDeterministicAndPlatformIndependent) {
  const Sweep a = Read(kRandom);
  const Sweep b = Read(kRandom);
  for (std::size_t i = 0; i < a.jobs.size(); ++i) EXPECT_EQ(a.jobs[i].id, b.jobs[i].id);
  std::string other_yaml = kRandom;
  other_yaml.replace(other_yaml.find("sample_seed: 7"), 14, "sample_seed: 8");
  const Sweep other = Read(other_yaml);
  EXPECT_NE(other.jobs[0].swept, a.jobs[0].swept);
  // Pinned: mt19937_64 is fixed by the standard and the formulas are ours, so
  // these texts must not change on any platform (or the ids of resumed sweeps would).
  const auto first = AsMap(a.jobs[0].swept);
  EXPECT_EQ(first.at("learning_rate"), kPinnedLr);
  EXPECT_EQ(first.at("num_virtual_tokens"), kPinnedTokens);
}

TEST_F(SweepSpecTest, RandomDropsRepeatedParameterSets) {
  const Sweep sweep = Read(R"(name: r
method: random
run_cap: 50
model: ../models/m
task: {file: ../data/spam/task.yaml}
parameters:
  init: {values: [RANDOM, SAMPLE_VOCAB]}
)");
  EXPECT_EQ(sweep.jobs.size(), 2u);
  ASSERT_EQ(sweep.warnings.size(), 1u);
  EXPECT_TRUE(HasText(sweep.warnings[0], "48 of 50 random draws repeated"));
}

TEST_F(SweepSpecTest, PathsResolveAgainstTheFileThatNamesThem) {
  std::filesystem::create_directories(dir_.path() / "elsewhere");
  test::WriteFileBytes(dir_.File("elsewhere/task.yaml"),
                       "task: generation\ntrain: ../data/spam/train.jsonl\ntest: " + Abs("data/spam/dev.jsonl") + "\n");
  const Sweep sweep = Read(R"(name: p
model: {path: ../models/m, tokenizer: ../data/spam/train.jsonl}
task: {file: ../elsewhere/task.yaml, dev: ../data/spam/dev.jsonl}
)");
  const auto s = AsMap(sweep.jobs.at(0).settings.values);
  EXPECT_EQ(s.at("tokenizer"), Abs("data/spam/train.jsonl"));
  EXPECT_EQ(s.at("train"), Abs("data/spam/train.jsonl"));
  EXPECT_EQ(s.at("dev"), Abs("data/spam/dev.jsonl"));
  EXPECT_EQ(s.at("test"), Abs("data/spam/dev.jsonl"));  // absolute stays
  EXPECT_EQ(s.at("task"), "generation");
  EXPECT_EQ(sweep.metric.name, "exact_match");
  EXPECT_TRUE(sweep.jobs[0].settings.verbalizer.empty());
}

// --- Errors: file:line:col, what, and a suggestion. ---

TEST_F(SweepSpecTest, UnknownKeysNameTheClosestValidOne) {
  EXPECT_TRUE(HasText(ErrorFor(Example("seeds:", "sead: 3\nseeds:")),
                      "s.yaml:4:1: unknown key 'sead' in the sweep; did you mean 'seeds'?"));
  EXPECT_TRUE(HasText(ErrorFor(Example("  dtype: float32", "  dtpye: float32")),
                      "s.yaml:7:3: unknown key 'dtpye' in model; did you mean 'dtype'?"));
  EXPECT_TRUE(HasText(ErrorFor(Example("  max_length: 64", "  max_lenght: 64")),
                      "s.yaml:10:3: unknown key 'max_lenght' in task; did you mean 'max_length'?"));
  EXPECT_TRUE(HasText(ErrorFor(Example("goal: maximize", "gaol: maximize")), "did you mean 'goal'?"));
  EXPECT_TRUE(HasText(ErrorFor(Example("{values: [0.3]}", "{valeus: [0.3]}")),
                      "s.yaml:15:19: unknown key 'valeus' in parameter 'learning_rate'; did you mean 'values'?"));
  EXPECT_TRUE(HasText(ErrorFor(Example("  learning_rate:", "  lerning_rate:")),
                      "s.yaml:15:3: unknown trainer setting 'lerning_rate' in parameters; did you mean "
                      "'learning_rate'?"));
  EXPECT_TRUE(HasText(ErrorFor(Example("  max_steps: 150", "  max_step: 150")),
                      "s.yaml:12:3: unknown trainer setting 'max_step' in train; did you mean 'max_steps'?"));
  EXPECT_TRUE(HasText(ErrorFor(Example("{label: random, init: RANDOM}", "{label: random, int: RANDOM}")),
                      "s.yaml:19:25: unknown trainer setting 'int' in a value of parameter 'init'"));
  test::WriteFileBytes(dir_.File("data/spam/task.yaml"), "train: train.jsonl\nverbaliser: {a: b}\n");
  EXPECT_TRUE(HasText(ErrorFor(kExample), "task.yaml:2:1: unknown key 'verbaliser' in task file"));
  EXPECT_TRUE(HasText(ErrorFor(kExample), "did you mean 'verbalizer'?"));
}

TEST_F(SweepSpecTest, PeftAliasesAndDashesMapToTrainerOptions) {
  const Sweep sweep = Read(Example("{label: text_task, init: TEXT, init_text:",
                                   "{label: text_task, prompt_tuning_init: TEXT, prompt-tuning-init-text:")
                               .replace(std::string(kExample).find("  max_steps"), 11, "  max-steps"));
  const auto s = AsMap(sweep.jobs[6].settings.values);
  EXPECT_EQ(s.at("init"), "TEXT");
  EXPECT_EQ(s.at("init_text"), "Is this mail spam or ham?");
  EXPECT_EQ(s.at("max_steps"), "150");
}

TEST_F(SweepSpecTest, WrongTypesAndBadRanges) {
  EXPECT_TRUE(HasText(ErrorFor(Example("{values: [0.3]}", "{values: 0.3}")),
                      "s.yaml:15:27: parameter 'learning_rate': values: expected a list, got '0.3'"));
  EXPECT_TRUE(HasText(ErrorFor(Example("{values: [0.3]}", "{values: []}")),
                      "s.yaml:15:27: parameter 'learning_rate': values: is empty"));
  EXPECT_TRUE(HasText(ErrorFor(Example("  max_steps: 150", "  max_steps: [150]")),
                      "s.yaml:12:14: train.max_steps: expected a single value, got a list"));
  EXPECT_TRUE(HasText(ErrorFor(Example("train:\n  max_steps: 150\n  batch_size: 8\n", "train: 3\n")), "s.yaml:11:8: train: expected a mapping"));
  const std::string random = "method: random\nrun_cap: 5\n";
  EXPECT_TRUE(HasText(ErrorFor(Example("method: grid\n", random).replace(
                          std::string(kExample).find("{values: [0.3]}") + random.size() - 13, 15,
                          "{min: 0.5, max: 0.1}")),
                      "parameter 'learning_rate': min (0.5) must be less than max (0.1)"));
  EXPECT_TRUE(HasText(ErrorFor(Example("method: grid\n", random).replace(
                          std::string(kExample).find("{values: [0.3]}") + random.size() - 13, 15,
                          "{min: 0, max: 1, distribution: log_uniform_values}")),
                      "log_uniform_values needs min > 0, got 0"));
  EXPECT_TRUE(HasText(ErrorFor(Example("method: grid\n", random).replace(
                          std::string(kExample).find("{values: [4, 8, 16, 32]}") + random.size() - 13, 24,
                          "{min: 2, max: 8.5, distribution: int_uniform}")),
                      "s.yaml:17:37: parameter 'num_virtual_tokens': int_uniform needs integer min and max"));
  EXPECT_TRUE(HasText(ErrorFor(Example("{values: [0.3]}", "{min: 0.1, max: 0.5}")),
                      "s.yaml:15:3: parameter 'learning_rate': a uniform range needs method: random"));
  EXPECT_TRUE(HasText(ErrorFor(Example("{values: [0.3]}", "{values: [0.3], distribution: normal}")),
                      "unsupported distribution 'normal'"));
  EXPECT_TRUE(HasText(ErrorFor(Example("{values: [0.3]}", "{}")),
                      "s.yaml:15:3: parameter 'learning_rate' needs values: [...], value: V, or min: and max:"));
}

TEST_F(SweepSpecTest, RandomNeedsRunCap) {
  EXPECT_TRUE(HasText(ErrorFor(Example("method: grid", "method: random")),
                      "s.yaml: method random needs run_cap: N > 0"));
  EXPECT_TRUE(HasText(ErrorFor(Example("method: grid", "method: random\nrun_cap: 0")),
                      "s.yaml:3:1: method random needs run_cap"));
  EXPECT_TRUE(HasText(ErrorFor(Example("method: grid", "method: bayes")),
                      "s.yaml:2:9: unknown method 'bayes' (grid or random"));
}

TEST_F(SweepSpecTest, SeedsAndASeedParameterAreExclusive) {
  EXPECT_TRUE(HasText(ErrorFor(std::string(kExample) + "  seed: {values: [1]}\n"),
                      "s.yaml:4:1: give seeds: or a 'seed' parameter (" + SweepPath() + ":24:3), not both"));
  EXPECT_TRUE(HasText(ErrorFor(Example("  max_steps: 150", "  seed: 3")), "give seeds: or train: seed"));
  EXPECT_TRUE(HasText(ErrorFor(Example("[0, 1, 2]", "[0, 1, 1]")), "s.yaml:4:15: seeds: 1 is listed twice"));
  EXPECT_TRUE(HasText(ErrorFor(Example("[0, 1, 2]", "[0, -1]")),
                      "s.yaml:4:12: seeds: expected a non-negative integer, got '-1'"));
}

TEST_F(SweepSpecTest, DuplicateKeysAreRejected) {
  EXPECT_TRUE(HasText(ErrorFor(Example("  batch_size: 8", "  batch_size: 8\n  batch_size: 16")),
                      "s.yaml:14:3: duplicate key 'batch_size' in train (first at line 13)"));
  EXPECT_TRUE(HasText(ErrorFor(Example("seeds: [0, 1, 2]", "seeds: [0, 1, 2]\nseeds: [3]")),
                      "s.yaml:5:1: duplicate key 'seeds' in the sweep"));
  EXPECT_TRUE(HasText(ErrorFor(Example("{label: random, init: RANDOM}", "{label: random, init: RANDOM, init: TEXT}")),
                      "duplicate key 'init'"));
  // A setting given twice in different places.
  EXPECT_TRUE(HasText(ErrorFor(Example("  batch_size: 8", "  batch_size: 8\n  init: RANDOM")),
                      "parameter 'init' sets 'init', which is already set at "));
  EXPECT_TRUE(HasText(ErrorFor(Example("  max_steps: 150", "  max_steps: 150\n  weight_decay: 0.1")),
                      "'weight_decay' is already set at " + SweepPath() + ":13:17; give it once"));
}

TEST_F(SweepSpecTest, InvalidJobSettingsAreFoundBeforeAnythingRuns) {
  EXPECT_TRUE(HasText(ErrorFor(Example("[4, 8, 16, 32]", "[4, 0, 16]")),
                      "s.yaml:16:36: num_virtual_tokens: num_virtual_tokens must be >= 1, got 0"));
  EXPECT_TRUE(HasText(ErrorFor(Example("{values: [0.3]}", "{values: [0.3, -1]}")),
                      "s.yaml:15:33: learning_rate: learning_rate must be > 0, got -1"));
  EXPECT_TRUE(HasText(ErrorFor(Example("dtype: float32", "dtype: float8")), "s.yaml:7:10: dtype: unsupported dtype"));
  // A rule across settings: per job.
  EXPECT_TRUE(HasText(ErrorFor(Example(", init_text: \"Is this mail spam or ham?\"", "")),
                      "s.yaml:14:1: job ")) ;
  EXPECT_TRUE(HasText(ErrorFor(Example(", init_text: \"Is this mail spam or ham?\"", "")),
                      "(learning_rate=0.3, num_virtual_tokens=4, init=text_task, seed=0): init TEXT needs a non-empty"));
}

TEST_F(SweepSpecTest, IdenticalJobsAreAnErrorNamingBoth) {
  const std::string error = ErrorFor(Example("{label: sample_vocab, init: SAMPLE_VOCAB}", "{label: again, init: RANDOM}"));
  EXPECT_TRUE(HasText(error, "s.yaml:14:1: jobs 1 (learning_rate=0.3, num_virtual_tokens=4, init=random, seed=0) "
                             "and 4 (learning_rate=0.3, num_virtual_tokens=4, init=again, seed=0) have the same "
                             "settings"))
      << error;
  EXPECT_TRUE(HasText(ErrorFor(Example("{label: sample_vocab,", "{label: random,")),
                      "s.yaml:20:9: parameter 'init': value 'random' is listed twice (first at " + SweepPath() + ":19:9)"));
}

TEST_F(SweepSpecTest, MissingAndWrongRequiredParts) {
  EXPECT_TRUE(HasText(ErrorFor(Example("name: init-vs-length-spam\n", "")), "s.yaml: the sweep needs a name"));
  EXPECT_TRUE(HasText(ErrorFor(Example("name: init-vs-length-spam", "name: a/b")),
                      "s.yaml:1:7: name 'a/b': use only letters"));
}

// The name becomes a directory (runs/<name>, the coordinator's sweeps/<name>):
// the reader refuses what the coordinator would, so nothing is created first.
TEST_F(SweepSpecTest, NamesThatAreNotOneDirectoryAreRefused) {
  for (const std::string bad : {"..", ".", "''", "a/b", "../up", "a b", "\"tab\\there\"", "ünï"}) {
    SCOPED_TRACE(bad);
    EXPECT_TRUE(HasText(ErrorFor(Example("name: init-vs-length-spam", "name: " + bad)),
                        "s.yaml:1:7: name '"));
    EXPECT_TRUE(HasText(ErrorFor(Example("name: init-vs-length-spam", "name: " + bad)),
                        "': use only letters, digits, '_', '.' and '-', not empty and not '.' or '..'"));
  }
  EXPECT_TRUE(HasText(ErrorFor(Example("name: init-vs-length-spam", "name: ..")), "s.yaml:1:7: name '..': use only"));
  // The coordinator takes these, so the reader does too.
  for (const std::string good : {"a", "...", ".hidden", "v1.2_b-3", "x.."}) {
    SCOPED_TRACE(good);
    EXPECT_EQ(Read(Example("name: init-vs-length-spam", "name: " + good)).name, good);
  }
  EXPECT_TRUE(HasText(ErrorFor(Example("../models/m", "../models/none")),
                      "s.yaml:6:9: model.path: " + Abs("models/none") + " is not a directory"));
  EXPECT_TRUE(HasText(ErrorFor(Example("task.yaml", "task2.yaml")), "s.yaml:9:9: task.file: "));
  test::WriteFileBytes(dir_.File("data/spam/task.yaml"), "train: missing.jsonl\nverbalizer: {a: b}\n");
  EXPECT_TRUE(HasText(ErrorFor(kExample), "task.yaml:1:8: train: " + Abs("data/spam/missing.jsonl") +
                                              " is not a file (relative paths are resolved against the directory of"));
  test::WriteFileBytes(dir_.File("data/spam/task.yaml"), "train: train.jsonl\n");
  EXPECT_TRUE(HasText(ErrorFor(kExample), "s.yaml:9:3: a classification task needs verbalizer"));
  test::WriteFileBytes(dir_.File("data/spam/task.yaml"), "task: generation\ntrain: train.jsonl\n");
  EXPECT_TRUE(HasText(ErrorFor(kExample), "s.yaml:3:16: metric accuracy is not measured for a generation task"));
  EXPECT_TRUE(HasText(ErrorFor("name: x\nmodel: [1\n"), "s.yaml:3:1: invalid YAML"));  // invalid YAML keeps its position
}

}  // namespace
}  // namespace promptsweep
