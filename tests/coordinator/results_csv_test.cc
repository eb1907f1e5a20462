#include "coordinator/results_csv.h"

#include <cmath>
#include <limits>
#include <string>

#include <gtest/gtest.h>

#include "test_utils.h"

namespace promptsweep {
namespace {

using test::ReadFileBytes;
using test::ScopedTempDir;

ResultRow SucceededRow() {
  ResultRow row;
  row.job_id = "a1e4856156e715fe";
  row.swept = {"0.3", "text, \"quoted\""};
  row.seed = 7;
  row.status = "succeeded";
  row.attempts = 1;
  row.final_dev = 0.75;
  row.best_dev = 0.8125;
  row.best_step = 100;
  row.test = 2.0 / 3.0;
  row.train_loss = 0.5;
  row.steps = 150;
  row.tokens_per_second = 1234.5;
  row.wall_seconds = 12.25;
  row.worker = "w1-host";
  row.adapter = "adapters/a1e4856156e715fe";
  row.message = "";
  return row;
}

TEST(CsvFieldTest, QuotesOnlyWhatNeedsIt) {
  EXPECT_EQ(CsvField("plain text"), "plain text");
  EXPECT_EQ(CsvField(""), "");
  EXPECT_EQ(CsvField("a,b"), "\"a,b\"");
  EXPECT_EQ(CsvField("say \"hi\""), "\"say \"\"hi\"\"\"");
  EXPECT_EQ(CsvField("two\nlines"), "\"two\nlines\"");
  EXPECT_EQ(CsvField("cr\r"), "\"cr\r\"");
}

TEST(CsvNumberTest, TenSignificantDigits) {
  EXPECT_EQ(CsvNumber(0.75), "0.75");
  EXPECT_EQ(CsvNumber(1e-05), "1e-05");
  EXPECT_EQ(CsvNumber(2.0 / 3.0), "0.6666666667");
  EXPECT_EQ(CsvNumber(150), "150");
  EXPECT_EQ(CsvNumber(std::numeric_limits<double>::quiet_NaN()), "nan");
  EXPECT_EQ(CsvNumber(-std::numeric_limits<double>::quiet_NaN()), "nan");
  EXPECT_EQ(CsvNumber(std::numeric_limits<double>::infinity()), "inf");
}

TEST(ResultsCsvTest, HeaderNamesParametersAndMetric) {
  ResultsCsv csv("/out", "accuracy", {"learning_rate", "init"});
  EXPECT_EQ(csv.ResultsHeader(),
            "job_id,learning_rate,init,seed,status,attempts,final_dev_accuracy,best_dev_accuracy,best_step,"
            "test_accuracy,train_loss,steps,stopped_at_step,tokens_per_second,wall_seconds,worker,adapter,message\n");
  EXPECT_EQ(ResultsCsv::MetricsHeader(), "job_id,step,split,metric,value\n");
  EXPECT_EQ(csv.results_path(), "/out/results.csv");
  EXPECT_EQ(csv.metrics_path(), "/out/metrics.csv");
}

TEST(ResultsCsvTest, RowQuotesAndFormats) {
  ResultsCsv csv("/out", "accuracy", {"learning_rate", "init"});
  EXPECT_EQ(csv.ResultsLine(SucceededRow()),
            "a1e4856156e715fe,0.3,\"text, \"\"quoted\"\"\",7,succeeded,1,0.75,0.8125,100,0.6666666667,0.5,150,,"
            "1234.5,12.25,w1-host,adapters/a1e4856156e715fe,\n");
}

TEST(ResultsCsvTest, MissingValuesAreEmpty) {
  ResultsCsv csv("/out", "loss", {});
  ResultRow row;
  row.job_id = "j1";
  row.status = "cancelled";
  row.attempts = 0;
  row.message = "cancelled by user";
  EXPECT_EQ(csv.ResultsLine(row), "j1,0,cancelled,0,,,,,,,,,,,,cancelled by user\n");
}

TEST(ResultsCsvTest, MetricsAreLongFormat) {
  const std::vector<MetricRow> rows = {{0, "train", "loss", 2.5}, {50, "dev", "accuracy", 0.625}};
  EXPECT_EQ(ResultsCsv::MetricsLines("j1", rows), "j1,0,train,loss,2.5\nj1,50,dev,accuracy,0.625\n");
  EXPECT_EQ(ResultsCsv::MetricsLines("j1", {}), "");
}

TEST(ResultsCsvTest, AppendCreatesWithHeaderThenAppends) {
  ScopedTempDir dir;
  ResultsCsv csv(dir.path().string(), "accuracy", {"learning_rate", "init"});
  FinishedJobRows job{SucceededRow(), {{10, "dev", "accuracy", 0.5}}};
  csv.Append({job});
  csv.Append({job});
  const std::string line = csv.ResultsLine(job.result);
  EXPECT_EQ(ReadFileBytes(csv.results_path()), csv.ResultsHeader() + line + line);
  EXPECT_EQ(ReadFileBytes(csv.metrics_path()),
            "job_id,step,split,metric,value\n"
            "a1e4856156e715fe,10,dev,accuracy,0.5\n"
            "a1e4856156e715fe,10,dev,accuracy,0.5\n");
}

TEST(ResultsCsvTest, RewriteReplacesEverything) {
  ScopedTempDir dir;
  ResultsCsv csv(dir.path().string(), "accuracy", {"learning_rate", "init"});
  test::WriteFileBytes(csv.results_path(), "garbage\nhalf a ro");
  FinishedJobRows job{SucceededRow(), {{10, "dev", "accuracy", 0.5}}};
  csv.Rewrite({job});
  EXPECT_EQ(ReadFileBytes(csv.results_path()), csv.ResultsHeader() + csv.ResultsLine(job.result));
  EXPECT_EQ(ReadFileBytes(csv.metrics_path()),
            "job_id,step,split,metric,value\na1e4856156e715fe,10,dev,accuracy,0.5\n");
  csv.Rewrite({});
  EXPECT_EQ(ReadFileBytes(csv.results_path()), csv.ResultsHeader());
}

TEST(ResultsCsvTest, AppendErrorNamesTheFile) {
  ResultsCsv csv("/nonexistent/dir", "accuracy", {});
  ResultRow row;
  row.job_id = "j";
  const std::string message = test::ErrorOf([&] { csv.Append({{row, {}}}); });
  EXPECT_TRUE(test::HasText(message, "/nonexistent/dir/metrics.csv"));
}

}  // namespace
}  // namespace promptsweep
