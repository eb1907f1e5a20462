#include "common/csv.h"

#include <limits>
#include <string>
#include <vector>

#include <gtest/gtest.h>

namespace promptsweep {
namespace {

TEST(MetricsCsvTest, OneJobAndSweepFilesShareTheRows) {
  EXPECT_EQ(MetricsCsvHeader(/*with_job_id=*/false), "step,split,metric,value\n");
  EXPECT_EQ(MetricsCsvHeader(/*with_job_id=*/true), "job_id,step,split,metric,value\n");
  const std::vector<MetricRow> rows = {{0, "train", "loss", 2.5}, {50, "dev", "accuracy", 0.625}};
  EXPECT_EQ(MetricsCsvLines(rows), "0,train,loss,2.5\n50,dev,accuracy,0.625\n");
  EXPECT_EQ(MetricsCsvLines(rows, "j1"), "j1,0,train,loss,2.5\nj1,50,dev,accuracy,0.625\n");
  EXPECT_EQ(MetricsCsvLines({}, "j1"), "");
}

TEST(MetricsCsvTest, ValuesAreShortestRoundTrip) {
  const std::vector<MetricRow> rows = {{1, "train", "lr", 1e-05},
                                       {2, "dev", "accuracy", 2.0 / 3.0},
                                       {3, "train", "tokens_per_second", 150},
                                       {4, "train", "loss", std::numeric_limits<double>::quiet_NaN()},
                                       {5, "train", "loss", -std::numeric_limits<double>::quiet_NaN()}};
  EXPECT_EQ(MetricsCsvLines(rows),
            "1,train,lr,1e-05\n2,dev,accuracy,0.6666666666666666\n3,train,tokens_per_second,150\n"
            "4,train,loss,nan\n5,train,loss,nan\n");
}

TEST(CsvFieldTest, QuotesOnlyWhenNeeded) {
  EXPECT_EQ(CsvField("plain"), "plain");
  EXPECT_EQ(CsvField("a,b"), "\"a,b\"");
  EXPECT_EQ(CsvField("say \"hi\""), "\"say \"\"hi\"\"\"");
  EXPECT_EQ(MetricsCsvLines({{1, "dev", "a,b", 1}}, "x\"y"), "\"x\"\"y\",1,dev,\"a,b\",1\n");
}

}  // namespace
}  // namespace promptsweep
