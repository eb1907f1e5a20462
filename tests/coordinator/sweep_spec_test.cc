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
  schema.trainer_options = {"num_virtual_tokens", "init",       "init_text",  "learning_rate", "weight_decay",
                            "max_steps",          "batch_size", "eval_every", "eval_metric",   "seed"};
  schema.defaults = {{"device", "cpu"},          {"dtype", "float32"},        {"task", "classification"},
                     {"template", ""},           {"max_length", "256"},       {"num_virtual_tokens", "20"},
                     {"init", "SAMPLE_VOCAB"},   {"init_text", ""},           {"learning_rate", "0.3"},
                     {"weight_decay", "1e-05"},  {"max_steps", "1000"},       {"batch_size", "8"},
                     {"eval_every", "100"},      {"eval_metric", "auto"},     {"seed", "42"}};
  schema.check_value = [](const std::string& name, const std::string& value) {
    if (name == "num_virtual_tokens" && std::stoll(value) < 1) {
      throw Error(StrCat("num_virtual_tokens must be >= 1, got ", value));
    }
    if (name == "learning_rate" && std::stod(value) <= 0) throw Error(StrCat("learning_rate must be > 0, got ", value));
    if (name == "init" && value != "RANDOM" && value != "SAMPLE_VOCAB" && value != "TEXT") {
      throw Error(StrCat("unknown init '", value, "'"));
    }
    if (name == "dtype" && value != "float32" && value != "bfloat16") throw Error("unsupported dtype");
    if (name == "eval_metric" && value != "auto" && value != "loss" && value != "accuracy" && value != "exact_match") {
      throw Error(StrCat("unknown eval metric '", value, "'"));
    }
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
  // kExample evaluating every 50 of its 150 steps (3 dev evaluations) with
  // `early_terminate: SPEC` on line 4 (the lines below move down by one).
  static std::string EarlyTerminate(const std::string& spec) {
    std::string yaml = Example("  batch_size: 8", "  batch_size: 8\n  eval_every: 50");
    return yaml.insert(yaml.find("seeds:"), "early_terminate: " + spec + "\n");
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


// --- early_terminate: sweep-level, checked against every job. ---

TEST_F(SweepSpecTest, EarlyTerminateIsOffWithoutTheKey) {
  EXPECT_FALSE(Read(kExample).early_terminate.enabled());
}

TEST_F(SweepSpecTest, EarlyTerminateHyperbandTakesWandbsKeysAndDefaults) {
  const EarlyTermination min_iter = Read(EarlyTerminate("{type: hyperband, min_iter: 1}")).early_terminate;
  EXPECT_EQ(min_iter.type, EarlyTerminationType::kHyperband);
  EXPECT_EQ(min_iter.min_iter, 1);
  EXPECT_EQ(min_iter.eta, 3.0);
  EXPECT_TRUE(min_iter.strict);
  EXPECT_EQ(RungIterations(min_iter, 3), (std::vector<int64_t>{1, 3}));
  // max_iter + s, as a block mapping; a max_iter beyond the 3 evaluations only loses the top rung (9).
  const EarlyTermination max_iter =
      Read(EarlyTerminate("\n  type: hyperband\n  max_iter: 27\n  s: 3\n  eta: 3\n  strict: false")).early_terminate;
  EXPECT_EQ(max_iter.max_iter, 27);
  EXPECT_EQ(max_iter.s, 3);
  EXPECT_EQ(max_iter.min_iter, 0);
  EXPECT_FALSE(max_iter.strict);
  EXPECT_EQ(Read(EarlyTerminate("{type: hyperband, min_iter: 1, eta: 2.5, strict: true}")).early_terminate.eta, 2.5);
}

TEST_F(SweepSpecTest, EarlyTerminateAshaTakesRaysKeysAndDefaults) {
  // max_t 100 is far beyond the 3 evaluations: fine, the jobs just end first.
  const EarlyTermination defaults = Read(EarlyTerminate("{type: asha}")).early_terminate;
  EXPECT_EQ(defaults, DefaultEarlyTermination(EarlyTerminationType::kAsha));
  EXPECT_EQ(defaults.grace_period, 1);
  EXPECT_EQ(defaults.eta, 4.0);
  EXPECT_EQ(defaults.max_t, 100);
  EXPECT_EQ(defaults.brackets, 1);
  const EarlyTermination given =
      Read(EarlyTerminate("{type: asha, grace_period: 2, reduction_factor: 3, max_t: 50, brackets: 2}"))
          .early_terminate;
  EXPECT_EQ(given.grace_period, 2);
  EXPECT_EQ(given.eta, 3.0);  // reduction_factor
  EXPECT_EQ(given.max_t, 50);
  EXPECT_EQ(given.brackets, 2);
}

TEST_F(SweepSpecTest, EarlyTerminateMedianTakesItsKeysAndDefaults) {
  const EarlyTermination defaults = Read(EarlyTerminate("{type: median}")).early_terminate;
  EXPECT_EQ(defaults.type, EarlyTerminationType::kMedian);
  EXPECT_EQ(defaults.warmup_evals, 0);
  EXPECT_EQ(defaults.min_jobs, 3);
  const EarlyTermination given = Read(EarlyTerminate("{type: median, warmup_evals: 2, min_jobs: 5}")).early_terminate;
  EXPECT_EQ(given.warmup_evals, 2);
  EXPECT_EQ(given.min_jobs, 5);
}

TEST_F(SweepSpecTest, EarlyTerminateLeavesTheJobIdsAlone) {
  const Sweep plain = Read(Example("  batch_size: 8", "  batch_size: 8\n  eval_every: 50"));
  for (const std::string spec : {"{type: hyperband, min_iter: 1}", "{type: asha, brackets: 2}", "{type: median}"}) {
    SCOPED_TRACE(spec);
    const Sweep early = Read(EarlyTerminate(spec));
    ASSERT_EQ(early.jobs.size(), plain.jobs.size());
    for (std::size_t i = 0; i < plain.jobs.size(); ++i) {
      EXPECT_EQ(early.jobs[i].id, plain.jobs[i].id);
      EXPECT_EQ(early.jobs[i].settings.values, plain.jobs[i].settings.values);
    }
    EXPECT_EQ(SweepSummary(early), SweepSummary(plain));
  }
}

TEST_F(SweepSpecTest, EarlyTerminateTypeAndKeyErrorsNameTheirPlace) {
  EXPECT_TRUE(HasText(ErrorFor(Example("seeds:", "early_terminat: {type: median}\nseeds:")),
                      "s.yaml:4:1: unknown key 'early_terminat' in the sweep; did you mean 'early_terminate'?"));
  EXPECT_TRUE(HasText(ErrorFor(EarlyTerminate("hyperband")),
                      "s.yaml:4:18: early_terminate: expected a mapping, got 'hyperband'"));
  EXPECT_TRUE(HasText(ErrorFor(EarlyTerminate("{min_iter: 1}")),
                      "s.yaml:4:1: early_terminate needs type: hyperband, asha or median"));
  EXPECT_TRUE(HasText(ErrorFor(EarlyTerminate("{type: hyperbnd, min_iter: 1}")),
                      "s.yaml:4:25: unknown early_terminate type 'hyperbnd' (hyperband, asha or median); did you "
                      "mean 'hyperband'?"));
  EXPECT_TRUE(HasText(ErrorFor(EarlyTerminate("{type: [asha]}")),
                      "s.yaml:4:25: early_terminate.type: expected a single value, got a list"));
  EXPECT_TRUE(HasText(ErrorFor(EarlyTerminate("{type: hyperband, min_iters: 1}")),
                      "s.yaml:4:36: unknown key 'min_iters' in early_terminate; did you mean 'min_iter'?"));
  // Another type's keys are unknown here, and say whose they are.
  EXPECT_TRUE(HasText(ErrorFor(EarlyTerminate("{type: hyperband, min_iter: 1, grace_period: 2}")),
                      "s.yaml:4:49: unknown key 'grace_period' in early_terminate: grace_period is for type asha, "
                      "not hyperband; known: type, min_iter, max_iter, s, eta, strict"));
  EXPECT_TRUE(HasText(ErrorFor(EarlyTerminate("{type: asha, eta: 3}")),
                      "s.yaml:4:31: unknown key 'eta' in early_terminate: eta is for type hyperband, not asha; known: "
                      "type, grace_period, reduction_factor, max_t, brackets"));
  EXPECT_TRUE(HasText(ErrorFor(EarlyTerminate("{type: median, min_jobs: 2, min_jobs: 3}")),
                      "s.yaml:4:46: duplicate key 'min_jobs' in early_terminate"));
}

TEST_F(SweepSpecTest, EarlyTerminateValuesAreCheckedWhereTheyAre) {
  EXPECT_TRUE(HasText(ErrorFor(EarlyTerminate("{type: hyperband, min_iter: -1}")),
                      "s.yaml:4:46: early_terminate.min_iter: expected a non-negative integer, got '-1'"));
  EXPECT_TRUE(HasText(ErrorFor(EarlyTerminate("{type: asha, max_t: 2.5}")),
                      "s.yaml:4:38: early_terminate.max_t: expected a non-negative integer, got '2.5'"));
  EXPECT_TRUE(HasText(ErrorFor(EarlyTerminate("{type: hyperband, min_iter: 1, eta: fast}")),
                      "s.yaml:4:54: early_terminate.eta: expected a number, got 'fast'"));
  EXPECT_TRUE(HasText(ErrorFor(EarlyTerminate("{type: hyperband, min_iter: 1, strict: maybe}")),
                      "s.yaml:4:57: early_terminate.strict: expected true or false, got 'maybe'"));
  // ValidateEarlyTermination's rules, at the early_terminate key.
  EXPECT_TRUE(HasText(ErrorFor(EarlyTerminate("{type: hyperband}")),
                      "s.yaml:4:1: early_terminate.min_iter: hyperband needs min_iter >= 1, or max_iter >= 1 and "
                      "s >= 1"));
  EXPECT_TRUE(HasText(ErrorFor(EarlyTerminate("{type: hyperband, min_iter: 1, max_iter: 27, s: 3}")),
                      "s.yaml:4:1: early_terminate.min_iter: give min_iter, or max_iter and s, not both"));
  EXPECT_TRUE(HasText(ErrorFor(EarlyTerminate("{type: hyperband, min_iter: 1, eta: 1}")),
                      "s.yaml:4:1: early_terminate.eta must be > 1, got 1"));
  EXPECT_TRUE(HasText(ErrorFor(EarlyTerminate("{type: asha, reduction_factor: 0.5}")),
                      "s.yaml:4:1: early_terminate.reduction_factor must be > 1, got 0.5"));
  EXPECT_TRUE(HasText(ErrorFor(EarlyTerminate("{type: asha, brackets: 5}")),
                      "s.yaml:4:1: early_terminate.brackets: 5 brackets but only 4 rungs between grace_period and "
                      "max_t; use at most 4"));
  EXPECT_TRUE(HasText(ErrorFor(EarlyTerminate("{type: asha, grace_period: 0}")),
                      "s.yaml:4:1: early_terminate.grace_period must be >= 1, got 0"));
  EXPECT_TRUE(HasText(ErrorFor(EarlyTerminate("{type: median, min_jobs: 0}")),
                      "s.yaml:4:1: early_terminate.min_jobs must be >= 1, got 0"));
}

TEST_F(SweepSpecTest, EarlyTerminateNeedsARungWithinEveryJobsEvaluations) {
  const std::string job = Read(EarlyTerminate("{type: median}")).jobs[0].id;
  const std::string of_job = "the 3 dev evaluations of job " + job + " (max_steps 150 / eval_every 50)";
  EXPECT_TRUE(HasText(ErrorFor(EarlyTerminate("{type: hyperband, min_iter: 8}")),
                      "s.yaml:4:1: early_terminate.min_iter 8 is beyond " + of_job +
                          "; lower min_iter or raise max_steps"));
  EXPECT_NO_THROW(Read(EarlyTerminate("{type: hyperband, min_iter: 3}")));
  // max_iter: top rungs past the evaluations are fine, but not every rung.
  EXPECT_NO_THROW(Read(EarlyTerminate("{type: hyperband, max_iter: 27, s: 3}")));  // rungs 1, 3 (9 lost)
  EXPECT_TRUE(HasText(ErrorFor(EarlyTerminate("{type: hyperband, max_iter: 81, s: 1}")),
                      "s.yaml:4:1: early_terminate: the first hyperband rung, evaluation 27 (max_iter 81 / eta 3^s, "
                      "s 1), is beyond " + of_job + "; lower max_iter, raise s or raise max_steps"));
  EXPECT_TRUE(HasText(ErrorFor(EarlyTerminate("{type: asha, grace_period: 4}")),
                      "s.yaml:4:1: early_terminate.grace_period 4 is beyond " + of_job +
                          "; lower grace_period or raise max_steps"));
  EXPECT_TRUE(HasText(ErrorFor(EarlyTerminate("{type: median, warmup_evals: 3}")),
                      "s.yaml:4:1: early_terminate.warmup_evals 3 leaves no evaluation of " + of_job +
                          " to decide on; lower warmup_evals or raise max_steps"));
  EXPECT_NO_THROW(Read(EarlyTerminate("{type: median, warmup_evals: 2}")));
  // Per job: the one with too few steps is named.
  std::string swept = EarlyTerminate("{type: hyperband, min_iter: 1}");
  swept.erase(swept.find("  max_steps: 150\n"), 17);
  swept += "  max_steps: {values: [150, 40]}\n";
  const std::string error = ErrorFor(swept);
  EXPECT_TRUE(HasText(error, "s.yaml:4:1: early_terminate.min_iter 1 is beyond the 0 dev evaluations of job "));
  EXPECT_TRUE(HasText(error, " (max_steps 40 / eval_every 50); lower min_iter or raise max_steps"));
}

TEST_F(SweepSpecTest, EarlyTerminateNeedsDevEvaluationsDuringTraining) {
  std::string at_end = EarlyTerminate("{type: median}");
  at_end.replace(at_end.find("eval_every: 50"), 14, "eval_every: 0");
  const std::string job = Read(Example("  batch_size: 8", "  batch_size: 8\n  eval_every: 0")).jobs[0].id;
  EXPECT_TRUE(HasText(ErrorFor(at_end), "s.yaml:4:1: early_terminate decides on dev evaluations during training, but "
                                        "job " + job + " has eval_every 0 (one evaluation, at the end); set train: "
                                        "{eval_every: N}"));
  test::WriteFileBytes(dir_.File("data/spam/task.yaml"),
                       "task: classification\nverbalizer:\n  spam: \" spam\"\n  ham: \" ham\"\ntrain: train.jsonl\n");
  const std::string no_dev = ErrorFor(EarlyTerminate("{type: median}"));
  EXPECT_TRUE(HasText(no_dev, "s.yaml:4:1: early_terminate decides on dev evaluations, but job "));
  EXPECT_TRUE(HasText(no_dev, " has no dev set; give task: {dev: DEV.jsonl} (or dev: in the task file)"));
}

TEST_F(SweepSpecTest, EarlyTerminateDecidesOnTheMetricTheJobsReport) {
  const std::string job = Read(EarlyTerminate("{type: median}")).jobs[0].id;
  std::string loss = EarlyTerminate("{type: median}");
  loss.replace(loss.find("metric: {name: accuracy, goal: maximize}"), 40, "metric: {name: loss}");
  EXPECT_TRUE(HasText(ErrorFor(loss), "s.yaml:4:1: early_terminate decides on the dev metric the jobs report "
                                      "(eval_metric accuracy for job " + job + "), but the sweep's metric is loss; "
                                      "set train: {eval_metric: loss} or metric: {name: accuracy}"));
  // The jobs report loss: fine (and their ids change, as eval_metric is a job setting).
  std::string both_loss = loss;
  both_loss.insert(both_loss.find("  eval_every: 50"), "  eval_metric: loss\n");
  const Sweep sweep = Read(both_loss);
  EXPECT_EQ(sweep.metric.name, "loss");
  EXPECT_EQ(sweep.metric.goal, MetricGoal::kMinimize);
  // An explicit eval_metric other than the sweep's metric.
  std::string explicit_loss = EarlyTerminate("{type: median}");
  explicit_loss.insert(explicit_loss.find("  eval_every: 50"), "  eval_metric: loss\n");
  EXPECT_TRUE(HasText(ErrorFor(explicit_loss), "(eval_metric loss for job "));
  EXPECT_TRUE(HasText(ErrorFor(explicit_loss),
                      "the sweep's metric is accuracy; set train: {eval_metric: accuracy} or metric: {name: loss}"));
  // auto is exact_match for a generation task.
  test::WriteFileBytes(dir_.File("data/spam/task.yaml"), "task: generation\ntrain: train.jsonl\ndev: dev.jsonl\n");
  std::string generation = EarlyTerminate("{type: median}");
  generation.replace(generation.find("metric: {name: accuracy, goal: maximize}"), 40, "metric: {name: exact_match}");
  EXPECT_EQ(Read(generation).metric.name, "exact_match");
}

}  // namespace
}  // namespace promptsweep
