#include "common/job.h"

#include <string>

#include <gtest/gtest.h>

#include "common/error.h"
#include "test_utils.h"

namespace promptsweep {
namespace {

using test::ErrorOf;
using test::HasText;

TEST(JobStateTest, NamesRoundTrip) {
  for (const JobState state : {JobState::kPending, JobState::kLeased, JobState::kRunning, JobState::kSucceeded,
                               JobState::kFailed, JobState::kDiverged, JobState::kCancelled}) {
    EXPECT_EQ(ParseJobState(JobStateName(state)), state) << JobStateName(state);
  }
  EXPECT_EQ(JobStateName(JobState::kPending), "pending");
  EXPECT_EQ(JobStateName(JobState::kCancelled), "cancelled");
  EXPECT_FALSE(IsFinished(JobState::kRunning));
  EXPECT_TRUE(IsFinished(JobState::kDiverged));
}

TEST(JobStateTest, UnknownNameListsTheStates) {
  const std::string message = ErrorOf([] { ParseJobState("done"); });
  EXPECT_TRUE(HasText(message, "unknown job state 'done'"));
  EXPECT_TRUE(HasText(message, "pending, leased, running, succeeded, stopped, failed, diverged, cancelled"));
  EXPECT_TRUE(HasText(ErrorOf([] { ParseJobState("Pending"); }), "unknown job state 'Pending'"));
  EXPECT_TRUE(HasText(ErrorOf([] { ParseJobState(""); }), "unknown job state ''"));
}

TEST(SettingValueTest, FirstMatchOrFallback) {
  const SettingList settings = {{"model", "/m"}, {"dtype", "bfloat16"}, {"model", "/other"}};
  EXPECT_EQ(SettingValue(settings, "model"), "/m");
  EXPECT_EQ(SettingValue(settings, "dtype", "float32"), "bfloat16");
  EXPECT_EQ(SettingValue(settings, "tokenizer"), "");
  EXPECT_EQ(SettingValue(settings, "tokenizer", "x"), "x");
}

TEST(ModelKeyTest, ModelTokenizerAndDtype) {
  EXPECT_EQ(ModelKey({{"model", "/m"}}), "/m||float32");
  EXPECT_EQ(ModelKey({{"model", "/m"}, {"tokenizer", "/t.json"}, {"dtype", "bfloat16"}}), "/m|/t.json|bfloat16");
  EXPECT_EQ(ModelKey({{"tokenizer", "/t.json"}}), "");  // no model: no key
  // Other settings do not matter: jobs differing in them share a loaded model.
  EXPECT_EQ(ModelKey({{"model", "/m"}, {"learning_rate", "0.3"}}), ModelKey({{"model", "/m"}}));
}

// Settings of a train job as the sweep reader writes them (every setting listed).
SettingList TrainSettings() {
  return {{"model", "/models/m"}, {"tokenizer", ""},          {"device", "cpu"},
          {"dtype", "float32"},   {"task", "classification"}, {"template", "Text: {text}\nLabel:"},
          {"max_length", "256"},  {"train", "/d/train.jsonl"}, {"dev", "/d/dev.jsonl"},
          {"test", "/d/test.jsonl"}, {"learning_rate", "0.3"}, {"seed", "0"},
          {"num_virtual_tokens", "8"}};
}

SettingList With(SettingList settings, const std::string& name, const std::string& value) {
  for (auto& [key, old] : settings) {
    if (key == name) old = value;
  }
  return settings;
}

TEST(PackKeyTest, ModelDataAndTaskButNotTrainerOptions) {
  const SettingList verbalizer = {{"ham", " software"}, {"spam", " money"}};
  const SettingList base = TrainSettings();
  const std::string key = PackKey(base, verbalizer);
  EXPECT_FALSE(key.empty());
  // Trainer options do not matter: such jobs train in one pack.
  EXPECT_EQ(PackKey(With(base, "learning_rate", "0.01"), verbalizer), key);
  EXPECT_EQ(PackKey(With(With(base, "seed", "7"), "num_virtual_tokens", "20"), verbalizer), key);
  // Looked up by name: the order settings are listed in does not matter.
  SettingList reversed(base.rbegin(), base.rend());
  EXPECT_EQ(PackKey(reversed, verbalizer), key);
  // The model, the data, the task and the verbalizer do.
  for (const auto& [name, value] : SettingList{{"model", "/models/other"},
                                                {"tokenizer", "/t.json"},
                                                {"dtype", "bfloat16"},
                                                {"device", "cuda:1"},
                                                {"train", "/d/other.jsonl"},
                                                {"dev", "/d/other.jsonl"},
                                                {"test", "/d/other.jsonl"},
                                                {"task", "generation"},
                                                {"template", "Q: {text}\nA:"},
                                                {"max_length", "128"}}) {
    EXPECT_NE(PackKey(With(base, name, value), verbalizer), key) << name;
  }
  EXPECT_NE(PackKey(base, {{"ham", " software"}, {"spam", " cash"}}), key);
  EXPECT_NE(PackKey(base, {}), key);
  // Values cannot run into each other: fields are length-prefixed.
  EXPECT_NE(PackKey({{"model", "/m"}, {"train", "a|b"}, {"dev", ""}}, {}),
            PackKey({{"model", "/m"}, {"train", "a"}, {"dev", "b"}}, {}));
  // No model: no key (sleep jobs never pack).
  EXPECT_EQ(PackKey({{"seconds", "1"}}, {}), "");
  EXPECT_EQ(PackKey(With(base, "model", ""), verbalizer), "");
}

TEST(IsPlainNameTest, OneDirectoryName) {
  for (const char* good : {"a", "quickstart", "init-vs-length_2", "v1.2", "...", ".hidden", "x.."}) {
    EXPECT_TRUE(IsPlainName(good)) << good;
  }
  for (const char* bad : {"", ".", "..", "a/b", "/", "a b", "tab\there", "ünï", "a\\b", "semi;colon"}) {
    EXPECT_FALSE(IsPlainName(bad)) << bad;
  }
}

}  // namespace
}  // namespace promptsweep
