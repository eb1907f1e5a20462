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
  EXPECT_TRUE(HasText(message, "pending, leased, running, succeeded, failed, diverged, cancelled"));
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
