// Job ids must not change: a changed id makes a coordinator re-run finished
// jobs and orphans their results. The ids of the shipped and test sweeps were
// recorded (tests/data/job_ids/<sweep>.txt, one per line, in plan order) by
//   ln -sfn SOURCE_DIR /tmp/promptsweep-job-ids
//   promptsweep plan --json /tmp/promptsweep-job-ids/<sweep>.yaml
// since ids hash absolute paths; this test reads the sweeps through the same
// link. It covers what feeds the hashed text: number formats of random draws
// (FormatShortest, q_uniform's %.15g), trainer defaults, paths, verbalizers.
// Also the job-file writer (JobFileYaml), which must give back the same texts.
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>

#include "common/error.h"
#include "engine/job_settings.h"
#include "test_utils.h"

namespace promptsweep {
namespace {

namespace fs = std::filesystem;
using test::HasText;

constexpr char kLink[] = "/tmp/promptsweep-job-ids";

// Points kLink at the source tree: a symlink under a temporary name renamed
// over it, so concurrent test processes never see it missing or half made.
void LinkSourceDir() {
  const std::string temp = std::string(kLink) + ".tmp." + std::to_string(::getpid());
  fs::remove(temp);
  fs::create_directory_symlink(PROMPTSWEEP_SOURCE_DIR, temp);
  fs::rename(temp, kLink);
}

std::vector<std::string> RecordedIds(const std::string& name) {
  const std::string text = test::ReadFileBytes(std::string(PROMPTSWEEP_TEST_DATA_DIR) + "/job_ids/" + name + ".txt");
  std::vector<std::string> ids;
  std::size_t begin = 0;
  while (begin < text.size()) {
    const std::size_t end = text.find('\n', begin);
    ids.push_back(text.substr(begin, end - begin));
    if (end == std::string::npos) break;
    begin = end + 1;
  }
  return ids;
}

struct RecordedSweep {
  const char* ids;   // tests/data/job_ids/<ids>.txt
  const char* path;  // relative to the source dir
};

TEST(JobIdsTest, RecordedSweepsKeepTheirIds) {
  LinkSourceDir();
  const std::vector<RecordedSweep> sweeps = {
      {"quickstart", "configs/quickstart.yaml"},
      {"init-vs-length", "configs/init-vs-length.yaml"},
      {"init-vs-length-genre", "configs/init-vs-length-genre.yaml"},
      {"toy_grid", "tests/data/sweeps/toy_grid.yaml"},
      {"random_lr", "tests/data/sweeps/random_lr.yaml"},
  };
  for (const RecordedSweep& recorded : sweeps) {
    SCOPED_TRACE(recorded.path);
    const Sweep sweep = ReadTrainSweep(std::string(kLink) + "/" + recorded.path);
    std::vector<std::string> ids;
    for (const SweepJob& job : sweep.jobs) ids.push_back(job.id);
    const std::vector<std::string> expected = RecordedIds(recorded.ids);
    ASSERT_FALSE(expected.empty());
    EXPECT_EQ(ids, expected);
  }
}

// The random sweep draws the values the formats matter for.
TEST(JobIdsTest, RandomSweepDrawsTheTextsThatAreHashed) {
  LinkSourceDir();
  const Sweep sweep = ReadTrainSweep(std::string(kLink) + "/tests/data/sweeps/random_lr.yaml");
  ASSERT_EQ(sweep.jobs.size(), 12u);
  std::vector<std::string> max_steps;
  for (const SweepJob& job : sweep.jobs) max_steps.push_back(SettingValue(job.settings.values, "max_steps"));
  EXPECT_NE(std::find(max_steps.begin(), max_steps.end(), "100000"), max_steps.end());  // not "1e+05"
  EXPECT_EQ(SettingValue(sweep.jobs[2].settings.values, "learning_rate"), "5.0857828857615014e-05");
  EXPECT_EQ(SettingValue(sweep.jobs[0].settings.values, "adam_epsilon"), "1e-08");  // a trainer default
  EXPECT_EQ(SettingValue(sweep.jobs[0].settings.values, "adafactor_decay_rate"), "-0.8");
}

TEST(JobFileYamlTest, ReadsBackAsTheSameTexts) {
  JobSettings settings;
  settings.values = {{"model", "/m/x y"},   {"template", "{text}\n  Label:"}, {"init_text", "  leading\nand\ttab"},
                     {"a", "null"},         {"b", "~"},                      {"c", "yes"},
                     {"d", "1e-05"},        {"e", "0.3"},                    {"f", "'quoted' \"double\" #x"},
                     {"g", "ünïcödé ✓"},    {"h", ""},                       {"i", "- item"},
                     {"task", "classification"}};
  settings.verbalizer = {{"spam", " spam"}, {"ham", "\nham"}, {"yes", "no"}};
  const std::string text = JobFileYaml(settings, "/out/dir");
  // Read the way SettingFlags::ApplyJobFile reads a job file.
  const YAML::Node root = YAML::Load(text);
  ASSERT_TRUE(root.IsMap()) << text;
  EXPECT_EQ(root["output"].as<std::string>(), "/out/dir");
  for (const auto& [name, value] : settings.values) {
    ASSERT_TRUE(root[name].IsScalar()) << name << "\n" << text;
    EXPECT_EQ(root[name].as<std::string>(), value) << name << "\n" << text;
  }
  SettingList verbalizer;
  for (const auto& entry : root["verbalizer"]) {
    verbalizer.emplace_back(entry.first.as<std::string>(), entry.second.as<std::string>());
  }
  EXPECT_EQ(verbalizer, settings.verbalizer) << text;
  EXPECT_TRUE(HasText(text, "e: 0.3\n")) << text;  // numbers stay plain
}

}  // namespace
}  // namespace promptsweep
