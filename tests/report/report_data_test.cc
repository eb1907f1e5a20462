// `promptsweep report`'s data side: the CSV reader, parameter axes and bins,
// the importance statistic, the report data of hand-made sweeps (checked
// against values worked out by hand), the state read from SQLite beside a
// live scheduler against the same sweep read from its CSVs, and the Markdown
// and HTML renderings.
#include <cmath>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "common/csv.h"
#include "common/error.h"
#include "common/format.h"
#include "coordinator/scheduler.h"
#include "report/report_data.h"
#include "report/report_render.h"
#include "report/sweep_source.h"
#include "test_utils.h"

namespace promptsweep {
namespace {

using nlohmann::json;
using test::ErrorOf;
using test::HasText;
using test::ScopedTempDir;

// --- CSV ---

TEST(ParseCsvTest, ReadsBackWhatTheWritersWrite) {
  const std::string text = "a,b,c\n1,\"x, \"\"y\"\"\",\r\n\n2,\"multi\nline\",z";
  const auto rows = ParseCsv(text, "t.csv");
  ASSERT_EQ(rows.size(), 3u);
  EXPECT_EQ(rows[0], (std::vector<std::string>{"a", "b", "c"}));
  EXPECT_EQ(rows[1], (std::vector<std::string>{"1", "x, \"y\"", ""}));
  EXPECT_EQ(rows[2], (std::vector<std::string>{"2", "multi\nline", "z"}));
  EXPECT_EQ(ParseCsv(CsvField("a,\"b\"\n") + "," + CsvField("plain") + "\n", "t.csv")[0],
            (std::vector<std::string>{"a,\"b\"\n", "plain"}));
}

TEST(ParseCsvTest, MalformedQuotesNameTheLineAndColumn) {
  EXPECT_EQ(ErrorOf([] { ParseCsv("a,b\n1,\"open\n", "r.csv"); }), "r.csv:2:3: a quoted field is never closed");
  EXPECT_TRUE(HasText(ErrorOf([] { ParseCsv("a,b\n\"x\"y,2\n", "r.csv"); }), "r.csv:2:4: 'y' after a closing quote"));
}

// --- Axes and importance ---

TEST(ParameterAxisTest, FewNumbersAreTheirOwnBinsCategoriesKeepTheirOrder) {
  const ParameterAxis tokens = MakeParameterAxis("num_virtual_tokens", {"8", "32", "4", "8", ""}, false);
  EXPECT_TRUE(tokens.numeric);
  EXPECT_FALSE(tokens.log);
  EXPECT_EQ(tokens.distinct, (std::vector<std::string>{"4", "8", "32"}));
  EXPECT_EQ(tokens.bins, tokens.distinct);
  EXPECT_EQ(tokens.bin, (std::vector<int>{1, 2, 0, 1, -1}));

  const ParameterAxis init = MakeParameterAxis("init", {"text", "random", "text"}, false);
  EXPECT_FALSE(init.numeric);
  EXPECT_EQ(init.distinct, (std::vector<std::string>{"text", "random"}));
  EXPECT_EQ(init.bin, (std::vector<int>{0, 1, 0}));

  // Learning rates spanning a decade go on a log axis; other numbers need 3 decades or the YAML's word.
  EXPECT_TRUE(MakeParameterAxis("learning_rate", {"0.01", "0.3"}, false).log);
  EXPECT_FALSE(MakeParameterAxis("dropout", {"0.01", "0.3"}, false).log);
  EXPECT_TRUE(MakeParameterAxis("dropout", {"0.01", "0.3"}, true).log);
  EXPECT_TRUE(MakeParameterAxis("x", {"1", "1000"}, false).log);
  EXPECT_FALSE(MakeParameterAxis("learning_rate", {"0", "0.3"}, true).log);  // log of 0
}

TEST(ParameterAxisTest, ManyNumbersGoInEightBinsInLogSpaceForLogParameters) {
  std::vector<std::string> values;
  for (int i = 0; i <= 40; ++i) values.push_back(FormatShortest(std::pow(10.0, -4.0 + 4.0 * i / 40)));  // 1e-4 .. 1
  const ParameterAxis axis = MakeParameterAxis("learning_rate", values, true);
  ASSERT_EQ(axis.bins.size(), 8u);
  EXPECT_EQ(axis.bins.front(), "0.0001–0.000316");
  EXPECT_EQ(axis.bins.back(), "0.316–1");
  EXPECT_EQ(axis.bin.front(), 0);
  EXPECT_EQ(axis.bin[5], 1);   // 10^-3.5: the start of the second half-decade
  EXPECT_EQ(axis.bin[20], 4);  // 1e-2
  EXPECT_EQ(axis.bin.back(), 7);  // the maximum lands in the last bin
}

TEST(MainEffectShareTest, MatchesEpsilonSquaredWorkedOutByHand) {
  // Groups {1, 3} and {5, 7}: mean 4, SS_total 20, SS_within 4, SS_between 16,
  // MS_within 4 / (4 - 2) = 2; (16 - 1 * 2) / 20 = 0.7.
  EXPECT_DOUBLE_EQ(*MainEffectShare({1, 3, 5, 7}, {0, 0, 1, 1}), 0.7);
  // No effect: group means equal; clamped at 0 rather than negative.
  EXPECT_DOUBLE_EQ(*MainEffectShare({1, 3, 3, 1}, {0, 0, 1, 1}), 0.0);
  // One job per group: eta-squared, which is 1.
  EXPECT_DOUBLE_EQ(*MainEffectShare({1, 2, 4}, {0, 1, 2}), 1.0);
  EXPECT_FALSE(MainEffectShare({1, 2}, {0, 0}));     // one group
  EXPECT_FALSE(MainEffectShare({2, 2}, {0, 1}));     // no variance
  EXPECT_DOUBLE_EQ(*MainEffectShare({1, 3, 9, 5, 7}, {0, 0, -1, 1, 1}), 0.7);  // -1: left out
}

// --- The report's data ---

SourceJob Job(const std::string& id, const std::vector<std::string>& swept, uint64_t seed, const std::string& status,
              std::optional<double> test, std::optional<double> best_dev) {
  SourceJob job;
  job.row.job_id = id;
  job.row.swept = swept;
  job.row.seed = seed;
  job.row.status = status;
  job.row.test = test;
  job.row.best_dev = best_dev;
  job.max_steps = 100;
  job.eval_every = 10;
  if (status == "succeeded" || status == "stopped") {
    job.row.steps = status == "stopped" ? 30 : 100;
    job.row.adapter = "adapters/" + id;
  }
  if (status == "stopped") job.row.stopped_at_step = 30;
  return job;
}

SweepSource SmallSweep() {
  SweepSource source;
  source.dir = "/out/s";
  source.kind = "sqlite";
  source.name = "s";
  source.model = "/models/m";
  source.test_data = "/data/test.jsonl";
  source.parameters = {"learning_rate", "init"};
  source.jobs = {Job("a", {"0.1", "text"}, 0, "succeeded", 0.70, 0.72),
                 Job("b", {"0.1", "text"}, 1, "succeeded", 0.80, 0.78),
                 Job("c", {"0.01", "text"}, 0, "stopped", 0.60, 0.61),
                 Job("d", {"0.01", "random"}, 0, "failed", std::nullopt, std::nullopt),
                 Job("e", {"0.1", "random"}, 0, "running", std::nullopt, std::nullopt)};
  source.early_terminate.type = EarlyTerminationType::kHyperband;
  source.early_terminate.min_iter = 1;
  source.early_terminate.eta = 3;
  source.metrics = {{"a", {10, "train", "loss", 2.5}}, {"a", {10, "dev", "accuracy", 0.6}},
                    {"a", {10, "dev", "loss", 1.0}}, {"zz", {10, "dev", "accuracy", 0.6}}};
  source.rungs = {{"s", "c", 1, 10, 0.55}};
  StoredAttempt attempt;
  attempt.job_id = "a";
  attempt.attempt = 1;
  attempt.worker = "w1";
  attempt.started = 1000.0;
  attempt.ended = 1100.0;
  attempt.outcome = "succeeded";
  attempt.end_step = 100;
  source.attempts.push_back(attempt);
  attempt.job_id = "e";
  attempt.worker = "w2";
  attempt.started = 1050.0;
  attempt.ended.reset();
  attempt.outcome = "";
  source.attempts.push_back(attempt);
  source.attempts_exact = true;
  return source;
}

TEST(ReportDataTest, SmallSweepAsWorkedOutByHand) {
  ReportDataOptions options;
  options.now = 1200.0;
  options.program = "promptsweep";
  const json data = BuildReportData(SmallSweep(), options);
  EXPECT_EQ(data["counts"]["total"], 5);
  EXPECT_EQ(data["counts"]["succeeded"], 2);
  EXPECT_EQ(data["counts"]["stopped"], 1);
  EXPECT_EQ(data["counts"]["failed"], 1);
  EXPECT_EQ(data["counts"]["running"], 1);
  EXPECT_EQ(data["counts"]["pending"], 0);
  EXPECT_TRUE(data["source"]["running"].get<bool>());
  EXPECT_EQ(data["primary"]["key"], "test");
  // The wall time of a running sweep runs to now.
  EXPECT_EQ(data["started"], 1000.0);
  EXPECT_EQ(data["wall_seconds"], 200.0);
  // Early termination: 5 jobs x 100 planned, c stopped at 30 of 100.
  EXPECT_EQ(data["compute"]["steps_planned"], 500);
  EXPECT_EQ(data["compute"]["steps_saved"], 70);
  EXPECT_EQ(data["compute"]["steps_run"], 230);
  // The best: b (0.80), with its commands.
  EXPECT_EQ(data["best"]["job"], 1);
  EXPECT_EQ(data["best"]["adapter"], "/out/s/adapters/b");
  EXPECT_EQ(data["best"]["eval"],
            "promptsweep eval '/models/m' --adapter '/out/s/adapters/b' --data '/data/test.jsonl'");
  // Parameters: numbers as numbers, in the columnar jobs too.
  EXPECT_EQ(data["parameters"][0]["type"], "number");
  EXPECT_TRUE(data["parameters"][0]["log"].get<bool>());
  EXPECT_EQ(data["parameters"][0]["values"], json::parse("[0.01, 0.1]"));
  EXPECT_EQ(data["parameters"][1]["values"], json::parse(R"(["text", "random"])"));
  EXPECT_EQ(data["jobs"]["params"][0][3], 0.01);
  EXPECT_EQ(data["jobs"]["test"][3], nullptr);
  EXPECT_EQ(data["jobs"]["stopped_at_step"][2], 30);
  // Settings over seeds: (0.1, text) pools a and b: mean 0.75, sample std sqrt(0.005).
  ASSERT_EQ(data["groups"].size(), 4u);
  const json& pooled = data["groups"][0];
  EXPECT_EQ(pooled["jobs"], json::parse("[0, 1]"));
  EXPECT_EQ(pooled["n"], 2);
  EXPECT_NEAR(pooled["mean"].get<double>(), 0.75, 1e-12);
  EXPECT_NEAR(pooled["std"].get<double>(), std::sqrt(0.005), 1e-12);
  EXPECT_NEAR(pooled["dev_mean"].get<double>(), 0.75, 1e-12);
  EXPECT_EQ(data["groups"][2]["n"], 0);  // the failed job's setting
  EXPECT_EQ(data["groups"][2]["mean"], nullptr);
  // One heatmap: x = learning_rate bins (0.01, 0.1), y = init bins (text, random).
  ASSERT_EQ(data["heatmaps"].size(), 1u);
  EXPECT_EQ(data["heatmaps"][0]["z"][0][0], 0.60);
  EXPECT_NEAR(data["heatmaps"][0]["z"][0][1].get<double>(), 0.75, 1e-12);
  EXPECT_EQ(data["heatmaps"][0]["z"][1][0], nullptr);
  EXPECT_EQ(data["heatmaps"][0]["n"], json::parse("[[1, 2], [0, 0]]"));
  // Importance: learning_rate over {0.6} vs {0.7, 0.8}: SS_total 0.02, SS_within 0.005,
  // MS_within 0.005; (0.015 - 0.005) / 0.02 = 0.5. init has one rated bin: not listed.
  // seed: {0.7, 0.6} vs {0.8}: SS_within 0.005 -> (0.015 - 0.005) / 0.02 = 0.5 too.
  // (Equal shares: their order is up to rounding.)
  ASSERT_EQ(data["importance"]["items"].size(), 2u);
  for (const json& item : data["importance"]["items"]) {
    EXPECT_TRUE(item["name"] == "learning_rate" || item["name"] == "seed") << item;
    EXPECT_NEAR(item["share"].get<double>(), 0.5, 1e-9) << item;
  }
  // Curves: a's train loss and dev accuracy (not its dev loss; not unknown jobs).
  ASSERT_EQ(data["curves"]["jobs"].size(), 1u);
  EXPECT_EQ(data["curves"]["jobs"][0]["train"], json::parse("[2.5]"));
  EXPECT_EQ(data["curves"]["jobs"][0]["dev"], json::parse("[0.6]"));
  // Rungs at evaluations 1, 3, 9 of 10: steps 10, 30, 90.
  EXPECT_EQ(data["rungs"]["steps"], json::parse("[10, 30, 90]"));
  EXPECT_EQ(data["rungs"]["values"][0]["job"], 2);
  // Timeline: two workers, an open attempt.
  EXPECT_EQ(data["timeline"]["workers"], json::parse(R"(["w1", "w2"])"));
  EXPECT_EQ(data["timeline"]["attempts"][1]["outcome"], "running");
  EXPECT_EQ(data["timeline"]["attempts"][1]["end"], nullptr);
  EXPECT_EQ(data["timeline"]["attempts"][0]["step"], 100);
}

TEST(ReportDataTest, EmptyAndAllFailedSweepsHaveNoBestAndNoStatistics) {
  SweepSource empty;
  empty.name = "empty";
  empty.parameters = {"learning_rate"};
  json data = BuildReportData(empty, {});
  EXPECT_EQ(data["counts"]["total"], 0);
  EXPECT_EQ(data["best"], nullptr);
  EXPECT_EQ(data["primary"]["key"], "best_dev");
  EXPECT_TRUE(data["groups"].empty());
  EXPECT_TRUE(data["jobs"]["id"].empty());
  EXPECT_EQ(data["parameters"][0]["values"], json::array());
  EXPECT_EQ(data["wall_seconds"], nullptr);
  EXPECT_EQ(data["rungs"], nullptr);
  EXPECT_TRUE(HasText(RenderReportMarkdown(data), "No jobs."));

  SweepSource failed = SmallSweep();
  for (SourceJob& job : failed.jobs) {
    job = Job(job.row.job_id, job.row.swept, job.row.seed, "failed", std::nullopt, std::nullopt);
  }
  data = BuildReportData(failed, {});
  EXPECT_EQ(data["best"], nullptr);
  EXPECT_TRUE(data["importance"]["items"].empty());
  EXPECT_EQ(data["groups"][0]["mean"], nullptr);
  EXPECT_EQ(data["heatmaps"][0]["z"][0][0], nullptr);
  const std::string markdown = RenderReportMarkdown(data);
  EXPECT_TRUE(HasText(markdown, "- jobs: 5 (5 failed)"));
  EXPECT_TRUE(HasText(markdown, "| 0.1 | text | 0 | n/a | n/a | 2 |"));
}

TEST(ReportRenderTest, MarkdownTablesAndPivot) {
  const json data = BuildReportData(SmallSweep(), {});
  MarkdownOptions options;
  options.pivot = {"init", "learning_rate"};
  const std::string markdown = RenderReportMarkdown(data, options);
  EXPECT_TRUE(HasText(markdown, "# Sweep s\n"));
  EXPECT_TRUE(HasText(markdown, "| learning_rate | init | n | test accuracy (%) | best dev accuracy (%) | failed |"));
  EXPECT_TRUE(HasText(markdown, "| 0.1 | text | 2 | 75.0 ± 7.1 | 75.0 ± 4.2 | 0 |"));
  EXPECT_TRUE(HasText(markdown, "| init \\ learning_rate | 0.01 | 0.1 | mean |"));
  EXPECT_TRUE(HasText(markdown, "| text | 60.0 ± 0.0 | 75.0 ± 7.1 | 67.5 |"));
  EXPECT_TRUE(HasText(markdown, "| random | n/a | n/a | n/a |"));
  EXPECT_TRUE(HasText(markdown, "| mean | 60.0 | 75.0 |  |"));
  EXPECT_TRUE(HasText(markdown, "| b | 0.1 | text | 1 | succeeded | 80.0 |"));
  options.pivot = {"init", "lr"};
  EXPECT_EQ(ErrorOf([&] { RenderReportMarkdown(data, options); }),
            "--pivot: 'lr' is not a swept parameter of sweep s (swept: learning_rate, init)");
}

TEST(ReportRenderTest, HtmlInlinesTheLibraryAndDataThatCannotCloseItsElement) {
  SweepSource source = SmallSweep();
  source.jobs[0].row.message = "</script><script>alert(1)</script> /*@PLOTLY@*/ /*@DATA@*/";
  const json data = BuildReportData(source, {});
  const std::string html = RenderReportHtml(data, "window.lib = 1;",
                                            "<script>/*@PLOTLY@*/</script><script type=\"application/json\">"
                                            "/*@DATA@*/</script>");
  EXPECT_TRUE(HasText(html, "<script>window.lib = 1;</script>"));
  EXPECT_FALSE(HasText(html, "</script><script>alert"));
  EXPECT_TRUE(HasText(html, "\\u003c/script>\\u003cscript>alert(1)\\u003c/script> /*@PLOTLY@*/ /*@DATA@*/"));
  // The JSON in the page parses back to the data.
  const size_t from = html.find("\">") + 2, to = html.rfind("</script>");
  EXPECT_EQ(json::parse(html.substr(from, to - from)), data);
  EXPECT_TRUE(HasText(ErrorOf([&] { RenderReportHtml(data, "x</SCRIPT>", "/*@PLOTLY@*//*@DATA@*/"); }),
                      "would end its <script> element early"));
  EXPECT_EQ(ErrorOf([&] { RenderReportHtml(data, "x", "/*@PLOTLY@*/"); }),
            "the report template must hold /*@DATA@*/ exactly once");
  // The shipped template has both placeholders.
  EXPECT_NO_THROW(RenderReportHtml(data, "x"));
}

// --- Reading a sweep: SQLite beside a live scheduler, and the CSVs ---

TEST(SweepSourceTest, StateAndCsvsAgreeOnFinishedJobsAndTheStateSeesTheRest) {
  ScopedTempDir dir;
  SchedulerOptions options;
  options.state_dir = dir.File("state");
  options.lease_timeout_seconds = 30;
  double now = 1000.0;
  options.clock = [&now] { return now; };
  auto scheduler = std::make_unique<Scheduler>(options);
  SweepSubmission sweep;
  sweep.name = "s";
  sweep.sweep_file = "/sweeps/s.yaml";
  sweep.yaml = "name: s\nparameters:\n  learning_rate: {distribution: log_uniform_values, min: 0.001, max: 1}\n";
  sweep.metric_name = "accuracy";
  sweep.parameters = {"learning_rate"};
  for (const char* id : {"j1", "j2", "j3"}) {
    SweepSubmission::Job& job = sweep.jobs.emplace_back();
    job.id = id;
    job.kind = std::string(kSleepJob);
    job.settings = {{"seconds", "0"}, {"max_steps", "30"}, {"eval_every", "10"}};
    job.swept = {{"learning_rate", id == std::string("j2") ? "0.5" : "0.002"}};
    job.seed = id == std::string("j3") ? 1 : 0;
  }
  const std::string out = scheduler->Submit(sweep).output_dir;
  const std::string worker = scheduler->RegisterWorker({});
  for (int i = 0; i < 2; ++i) {
    const std::optional<JobSpec> spec = scheduler->Lease(worker, {});
    ASSERT_TRUE(spec);
    JobOutcome outcome;
    outcome.state = JobState::kSucceeded;
    outcome.best_dev = 0.5 + 0.25 * i;
    outcome.test = 0.125 + i;
    outcome.steps = 30;
    outcome.wall_seconds = 2.5;
    outcome.message = "a, \"quoted\"\nmessage";
    outcome.history = {{10, "train", "loss", 2.0}, {10, "dev", "accuracy", 0.5}};
    ASSERT_TRUE(scheduler->ReportResult(worker, {"s", spec->job_id, spec->attempt}, outcome).accepted);
  }
  ASSERT_TRUE(scheduler->Lease(worker, {}));  // j3 running

  const SweepSource state = LoadSweepSource(out);  // the scheduler still holds the state
  EXPECT_EQ(state.kind, "sqlite");
  EXPECT_EQ(state.name, "s");
  ASSERT_EQ(state.jobs.size(), 3u);
  EXPECT_EQ(state.jobs[2].row.status, "leased");
  EXPECT_EQ(state.jobs[0].max_steps, 30);
  ASSERT_EQ(state.attempts.size(), 3u);
  EXPECT_TRUE(state.attempts_exact);
  EXPECT_FALSE(state.attempts[2].ended);
  EXPECT_EQ(state.metrics.size(), 4u);
  EXPECT_TRUE(BuildReportData(state, {})["parameters"][0]["log"].get<bool>());  // from the YAML

  const SweepSource csv = LoadSweepCsv(out);
  EXPECT_EQ(csv.kind, "csv");
  EXPECT_EQ(csv.metric, "accuracy");
  EXPECT_EQ(csv.parameters, state.parameters);
  ASSERT_EQ(csv.jobs.size(), 2u);  // finished jobs only
  for (size_t j = 0; j < 2; ++j) {
    const ResultRow& a = state.jobs[j].row;
    const ResultRow& b = csv.jobs[j].row;
    EXPECT_EQ(a.job_id, b.job_id);
    EXPECT_EQ(a.swept, b.swept);
    EXPECT_EQ(a.seed, b.seed);
    EXPECT_EQ(a.status, b.status);
    EXPECT_EQ(a.best_dev, b.best_dev);
    EXPECT_EQ(a.test, b.test);
    EXPECT_EQ(a.steps, b.steps);
    EXPECT_EQ(a.message, b.message);
    EXPECT_EQ(a.worker, b.worker);
  }
  EXPECT_EQ(csv.metrics.size(), state.metrics.size());
  EXPECT_TRUE(csv.attempts.empty());

  // Not a sweep's directory; a damaged CSV.
  EXPECT_TRUE(HasText(ErrorOf([&] { LoadSweepSource(dir.File("nope")); }), "no such directory"));
  std::filesystem::create_directories(dir.File("empty"));
  EXPECT_TRUE(HasText(ErrorOf([&] { LoadSweepSource(dir.File("empty")); }), "not a sweep's output directory"));
  test::WriteFileBytes(dir.File("empty/results.csv"), "job_id,x,seed,status,test_accuracy\nj,1,0\n");
  EXPECT_TRUE(HasText(ErrorOf([&] { LoadSweepSource(dir.File("empty")); }), "results.csv:2: 3 fields, the header has 5"));
}

}  // namespace
}  // namespace promptsweep
