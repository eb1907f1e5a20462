#include "common/early_termination.h"

#include <algorithm>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "common/error.h"
#include "test_utils.h"

namespace promptsweep {
namespace {

using test::ErrorOf;
using test::HasText;
using Rungs = std::vector<int64_t>;

EarlyTermination Hyperband(int64_t min_iter, int64_t max_iter, int64_t s, double eta) {
  EarlyTermination config = DefaultEarlyTermination(EarlyTerminationType::kHyperband);
  config.min_iter = min_iter;
  config.max_iter = max_iter;
  config.s = s;
  config.eta = eta;
  return config;
}

using test::AshaPolicy;
using test::MedianPolicy;

TEST(EarlyTerminationTest, DefaultsAreWandbsAndRays) {
  const EarlyTermination none;
  EXPECT_FALSE(none.enabled());
  const EarlyTermination hyperband = DefaultEarlyTermination(EarlyTerminationType::kHyperband);
  EXPECT_TRUE(hyperband.enabled());
  EXPECT_EQ(hyperband.eta, 3.0);
  EXPECT_TRUE(hyperband.strict);
  const EarlyTermination asha = DefaultEarlyTermination(EarlyTerminationType::kAsha);
  EXPECT_EQ(asha.eta, 4.0);  // Ray's reduction_factor
  EXPECT_EQ(asha.grace_period, 1);
  EXPECT_EQ(asha.max_t, 100);
  EXPECT_EQ(asha.brackets, 1);
  const EarlyTermination median = DefaultEarlyTermination(EarlyTerminationType::kMedian);
  EXPECT_EQ(median.warmup_evals, 0);
  EXPECT_EQ(median.min_jobs, 3);
  EXPECT_EQ(EarlyTerminationTypeName(EarlyTerminationType::kAsha), "asha");
}

TEST(EarlyTerminationTest, HyperbandMinIterIsALadderOfEtaPowers) {
  EXPECT_EQ(RungIterations(Hyperband(1, 0, 0, 3), 27), (Rungs{1, 3, 9, 27}));
  EXPECT_EQ(RungIterations(Hyperband(1, 0, 0, 3), 30), (Rungs{1, 3, 9, 27}));
  EXPECT_EQ(RungIterations(Hyperband(1, 0, 0, 3), 26), (Rungs{1, 3, 9}));  // the evaluations limit
  EXPECT_EQ(RungIterations(Hyperband(2, 0, 0, 2), 20), (Rungs{2, 4, 8, 16}));
  EXPECT_EQ(RungIterations(Hyperband(8, 0, 0, 3), 3), Rungs{});
  // No limit: a bounded ladder, ascending.
  const Rungs open = RungIterations(Hyperband(1, 0, 0, 3), 0);
  ASSERT_GE(open.size(), 10u);
  EXPECT_EQ((Rungs{open.begin(), open.begin() + 4}), (Rungs{1, 3, 9, 27}));
  EXPECT_TRUE(std::is_sorted(open.begin(), open.end()));
}

TEST(EarlyTerminationTest, HyperbandTruncatesBandsLikeWandb) {
  // W&B: bands min_iter·eta^k, each int(): 2, 3, 4.5, 6.75, 10.125 -> 2, 3, 4, 6, 10.
  EXPECT_EQ(RungIterations(Hyperband(2, 0, 0, 1.5), 10), (Rungs{2, 3, 4, 6, 10}));
  EXPECT_EQ(RungIterations(Hyperband(2, 0, 0, 1.5), 9), (Rungs{2, 3, 4, 6}));
  // max_iter / eta^i, i = 1..s, each int(), ascending.
  EXPECT_EQ(RungIterations(Hyperband(0, 27, 3, 3), 0), (Rungs{1, 3, 9}));
  EXPECT_EQ(RungIterations(Hyperband(0, 5, 2, 2), 0), (Rungs{1, 2}));  // 2.5, 1.25
  EXPECT_EQ(RungIterations(Hyperband(0, 100, 2, 3), 0), (Rungs{11, 33}));  // 33.3, 11.1
  // s larger than the ladder: bands below 1 are dropped (W&B stops there).
  EXPECT_EQ(RungIterations(Hyperband(0, 9, 5, 3), 0), (Rungs{1, 3}));
  // A max_iter beyond the evaluations only loses the top rungs.
  EXPECT_EQ(RungIterations(Hyperband(0, 27, 3, 3), 5), (Rungs{1, 3}));
  EXPECT_EQ(RungIterations(Hyperband(0, 81, 1, 3), 5), Rungs{});
}

TEST(EarlyTerminationTest, AshaRungsAreRaysMilestones) {
  EXPECT_EQ(RungIterations(AshaPolicy(1, 4, 100, 1), 0), (Rungs{1, 4, 16, 64}));
  EXPECT_EQ(RungIterations(AshaPolicy(1, 4, 100, 1), 20), (Rungs{1, 4, 16}));
  EXPECT_EQ(RungIterations(AshaPolicy(1, 4, 100, 2), 0, 0), (Rungs{1, 4, 16, 64}));
  EXPECT_EQ(RungIterations(AshaPolicy(1, 4, 100, 2), 0, 1), (Rungs{4, 16, 64}));
  EXPECT_EQ(RungIterations(AshaPolicy(1, 4, 100, 2), 3, 1), Rungs{});  // bracket 1 starts past 3 evaluations
  EXPECT_EQ(RungIterations(AshaPolicy(2, 3, 50, 1), 0), (Rungs{2, 6, 18}));  // int(log(25)/log(3) + 1) = 3 rungs
  // A non-integer reduction factor: a job meets a milestone at the first evaluation at or past it.
  EXPECT_EQ(RungIterations(AshaPolicy(1, 2.5, 20, 1), 0), (Rungs{1, 3, 7, 16}));  // 1, 2.5, 6.25, 15.625
}

TEST(EarlyTerminationTest, MedianDecidesAtEveryEvaluationAfterTheWarmup) {
  EXPECT_EQ(RungIterations(MedianPolicy(2, 3), 5), (Rungs{3, 4, 5}));
  EXPECT_EQ(RungIterations(MedianPolicy(0, 3), 3), (Rungs{1, 2, 3}));
  EXPECT_EQ(RungIterations(MedianPolicy(5, 3), 5), Rungs{});
  EXPECT_EQ(RungIterations(MedianPolicy(2, 3), 0), Rungs{});  // no limit: no list
  EXPECT_TRUE(ComparesBestSoFar(MedianPolicy(0, 3)));
  EXPECT_FALSE(ComparesBestSoFar(AshaPolicy(1, 4, 100, 1)));
  EarlyTermination loose = Hyperband(1, 0, 0, 3);
  EXPECT_FALSE(ComparesBestSoFar(loose));
  loose.strict = false;
  EXPECT_TRUE(ComparesBestSoFar(loose));
}

TEST(EarlyTerminationTest, ValidateNamesTheField) {
  EXPECT_NO_THROW(ValidateEarlyTermination(EarlyTermination{}));
  EXPECT_NO_THROW(ValidateEarlyTermination(Hyperband(1, 0, 0, 3)));
  EXPECT_NO_THROW(ValidateEarlyTermination(Hyperband(0, 27, 3, 3)));
  EXPECT_NO_THROW(ValidateEarlyTermination(AshaPolicy(1, 4, 100, 4)));
  EXPECT_NO_THROW(ValidateEarlyTermination(MedianPolicy(0, 1)));
  EXPECT_TRUE(HasText(ErrorOf([] { ValidateEarlyTermination(Hyperband(1, 0, 0, 1)); }),
                      "early_terminate.eta must be > 1, got 1"));
  EXPECT_TRUE(HasText(ErrorOf([] { ValidateEarlyTermination(Hyperband(1, 0, 0, 0.5)); }), "eta must be > 1, got 0.5"));
  EXPECT_TRUE(HasText(ErrorOf([] { ValidateEarlyTermination(Hyperband(1, 27, 3, 3)); }),
                      "early_terminate.min_iter: give min_iter, or max_iter and s, not both"));
  EXPECT_TRUE(HasText(ErrorOf([] { ValidateEarlyTermination(Hyperband(0, 0, 0, 3)); }),
                      "hyperband needs min_iter >= 1, or max_iter >= 1 and s >= 1"));
  EXPECT_TRUE(HasText(ErrorOf([] { ValidateEarlyTermination(Hyperband(0, 27, 0, 3)); }), "max_iter >= 1 and s >= 1"));
  EXPECT_TRUE(HasText(ErrorOf([] { ValidateEarlyTermination(Hyperband(0, 2, 1, 3)); }),
                      "early_terminate.max_iter: max_iter / eta = 0.6666666666666666 < 1 leaves no rung"));
  EXPECT_TRUE(HasText(ErrorOf([] { ValidateEarlyTermination(AshaPolicy(1, 1, 100, 1)); }),
                      "early_terminate.reduction_factor must be > 1, got 1"));
  EXPECT_TRUE(HasText(ErrorOf([] { ValidateEarlyTermination(AshaPolicy(0, 4, 100, 1)); }),
                      "early_terminate.grace_period must be >= 1, got 0"));
  EXPECT_TRUE(HasText(ErrorOf([] { ValidateEarlyTermination(AshaPolicy(10, 4, 5, 1)); }),
                      "early_terminate.max_t (5) must be >= grace_period (10)"));
  EXPECT_TRUE(HasText(ErrorOf([] { ValidateEarlyTermination(AshaPolicy(1, 4, 100, 0)); }),
                      "early_terminate.brackets must be >= 1, got 0"));
  EXPECT_TRUE(HasText(ErrorOf([] { ValidateEarlyTermination(AshaPolicy(1, 4, 100, 5)); }),
                      "early_terminate.brackets: 5 brackets but only 4 rungs between grace_period and max_t; use at "
                      "most 4"));
  EXPECT_TRUE(HasText(ErrorOf([] { ValidateEarlyTermination(MedianPolicy(-1, 3)); }),
                      "early_terminate.warmup_evals must be >= 0, got -1"));
  EXPECT_TRUE(HasText(ErrorOf([] { ValidateEarlyTermination(MedianPolicy(0, 0)); }),
                      "early_terminate.min_jobs must be >= 1, got 0"));
}

TEST(EarlyTerminationTest, JsonRoundTripsEveryType) {
  EarlyTermination loose = Hyperband(0, 27, 3, 2.5);
  loose.strict = false;
  for (const EarlyTermination& config :
       {EarlyTermination{}, Hyperband(1, 0, 0, 3), loose, AshaPolicy(2, 3, 50, 2), MedianPolicy(4, 5)}) {
    SCOPED_TRACE(EarlyTerminationToJson(config));
    const EarlyTermination back = EarlyTerminationFromJson(EarlyTerminationToJson(config));
    EXPECT_EQ(back, config);
    EXPECT_EQ(EarlyTerminationToJson(back), EarlyTerminationToJson(config));
  }
  EXPECT_EQ(EarlyTerminationToJson(EarlyTermination{}), "");
  const EarlyTermination back = EarlyTerminationFromJson(EarlyTerminationToJson(loose));
  EXPECT_EQ(back.type, EarlyTerminationType::kHyperband);
  EXPECT_EQ(back.max_iter, 27);
  EXPECT_EQ(back.s, 3);
  EXPECT_EQ(back.eta, 2.5);
  EXPECT_FALSE(back.strict);
  EXPECT_EQ(EarlyTerminationFromJson(EarlyTerminationToJson(AshaPolicy(2, 3, 50, 2))).eta, 3.0);
  EXPECT_NE(MedianPolicy(4, 5), MedianPolicy(4, 6));
  EXPECT_TRUE(HasText(ErrorOf([] { EarlyTerminationFromJson("{\"type\": \"hyperband\"}"); }),
                      "early_terminate '{\"type\": \"hyperband\"}' is not valid"));
  EXPECT_TRUE(HasText(ErrorOf([] { EarlyTerminationFromJson("{\"type\": \"bohb\"}"); }),
                      "unknown early_terminate type 'bohb'"));
  EXPECT_TRUE(HasText(ErrorOf([] { EarlyTerminationFromJson("not json"); }), "is not valid"));
}

TEST(EarlyTerminationTest, BracketOfIsStableAndInRange) {
  const EarlyTermination asha = AshaPolicy(1, 4, 100, 3);
  std::vector<int64_t> counts(3, 0);
  for (int i = 0; i < 300; ++i) {
    const std::string id = StrCat("job", i);
    const int64_t bracket = BracketOf(asha, id);
    ASSERT_GE(bracket, 0);
    ASSERT_LT(bracket, 3);
    EXPECT_EQ(BracketOf(asha, id), bracket);
    ++counts[bracket];
  }
  for (const int64_t count : counts) EXPECT_GT(count, 50);  // every bracket gets jobs
  // Pinned: FNV-1a of the id, so a restarted coordinator agrees with the old one.
  EXPECT_EQ(BracketOf(asha, "1a2b3c4d5e6f7a8b"), BracketOf(AshaPolicy(1, 4, 100, 3), "1a2b3c4d5e6f7a8b"));
  EXPECT_EQ(BracketOf(asha, ""), static_cast<int64_t>(0xcbf29ce484222325ull % 3));
  EXPECT_EQ(BracketOf(AshaPolicy(1, 4, 100, 1), "anything"), 0);
  EXPECT_EQ(BracketOf(Hyperband(1, 0, 0, 3), "anything"), 0);
  EXPECT_EQ(BracketOf(MedianPolicy(0, 3), "anything"), 0);
}

TEST(EarlyTerminationTest, DescribeListsTheRungs) {
  EXPECT_EQ(DescribeEarlyTermination(EarlyTermination{}), "none");
  EXPECT_EQ(DescribeEarlyTermination(Hyperband(0, 27, 3, 3)),
            "hyperband (eta 3, strict): rungs at evaluations 1, 3, 9");
  // min_iter's ladder has no top: the first rungs only.
  EarlyTermination loose = Hyperband(1, 0, 0, 3);
  loose.strict = false;
  EXPECT_EQ(DescribeEarlyTermination(loose), "hyperband (eta 3, best so far): rungs at evaluations 1, 3, 9, 27, ...");
  EXPECT_EQ(DescribeEarlyTermination(AshaPolicy(1, 4, 100, 2)),
            "asha (reduction_factor 4, max_t 100): rungs at evaluations 1, 4, 16, 64; bracket 1: 4, 16, 64");
  EXPECT_EQ(DescribeEarlyTermination(MedianPolicy(2, 3)),
            "median (after 2 evaluations, with at least 3 other jobs): every evaluation");
}

}  // namespace
}  // namespace promptsweep
