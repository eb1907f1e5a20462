// Early termination: the rung rule of each type (DecideAtRung) and the job
// table around it (rung values and decisions committed with the progress
// report, delivered by heartbeat, kept across a reload, stop_at_step on a
// later lease, the stopped result and its results.csv row).
#include "coordinator/early_stopper.h"

#include <memory>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "common/early_termination.h"
#include "common/error.h"
#include "coordinator/fake_scheduler_store.h"
#include "coordinator/job_table.h"
#include "coordinator/sweep_spec.h"
#include "test_utils.h"

namespace promptsweep {
namespace {

using test::FakeSchedulerStore;
using test::HasText;

EarlyTermination Hyperband(int64_t min_iter, double eta = 3.0, bool strict = true) {
  EarlyTermination config = DefaultEarlyTermination(EarlyTerminationType::kHyperband);
  config.min_iter = min_iter;
  config.eta = eta;
  config.strict = strict;
  return config;
}

using test::AshaPolicy;
using test::MedianPolicy;

RungReport At(int64_t iteration, double value, int64_t evaluations = 9, int64_t eval_every = 50) {
  return RungReport{iteration, iteration * eval_every, evaluations, value};
}

// --- DecideAtRung ---

TEST(DecideAtRungTest, HyperbandKeepsTheTopOfTheJobsAtTheRungLikeWandb) {
  const EarlyTermination config = Hyperband(1);  // rungs 1, 3, 9
  // Alone at a rung: kept (nothing to compare with).
  RungDecision first = DecideAtRung(config, "accuracy", true, At(1, 0.2), {});
  EXPECT_TRUE(first.rung);
  EXPECT_FALSE(first.stop);
  // 9 jobs: sorted best first, the cutoff is the one at index floor(9/3) = 3.
  const std::vector<double> others = {0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2};
  EXPECT_FALSE(DecideAtRung(config, "accuracy", true, At(3, 0.65), others).stop);  // 4th of 9: the cutoff itself
  const RungDecision out = DecideAtRung(config, "accuracy", true, At(3, 0.55), others);
  EXPECT_TRUE(out.stop);
  EXPECT_EQ(out.reason, "rung 2 (150 steps): dev accuracy 0.55 not in top 1/3 of 9 (cutoff 0.6)");
  // Not a rung: nothing recorded, nothing decided.
  const RungDecision between = DecideAtRung(config, "accuracy", true, At(2, 0.0), others);
  EXPECT_FALSE(between.rung);
  EXPECT_FALSE(between.stop);
  // The last evaluation is recorded but ends the job anyway.
  const RungDecision last = DecideAtRung(config, "accuracy", true, At(9, 0.0, 9), others);
  EXPECT_TRUE(last.rung);
  EXPECT_FALSE(last.stop);
}

TEST(DecideAtRungTest, TiesAreKept) {
  const std::vector<double> same(8, 0.5);
  EXPECT_FALSE(DecideAtRung(Hyperband(1), "accuracy", true, At(1, 0.5), same).stop);
  EXPECT_FALSE(DecideAtRung(AshaPolicy(1, 3, 100), "accuracy", true, At(1, 0.5), same).stop);
  EXPECT_FALSE(DecideAtRung(MedianPolicy(0, 3), "accuracy", true, At(1, 0.5), same).stop);
}

TEST(DecideAtRungTest, MinimizedMetricsCompareTheOtherWay) {
  const std::vector<double> losses = {0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8};
  EXPECT_FALSE(DecideAtRung(Hyperband(1), "loss", false, At(1, 0.15), losses).stop);
  const RungDecision out = DecideAtRung(Hyperband(1), "loss", false, At(1, 0.45), losses);
  EXPECT_TRUE(out.stop);
  EXPECT_TRUE(HasText(out.reason, "dev loss 0.45 not in top 1/3 of 9 (cutoff 0.4)")) << out.reason;
}

TEST(DecideAtRungTest, AshaComparesWithTheQuantileOfEarlierJobsLikeRay) {
  const EarlyTermination config = AshaPolicy(1, 4, 100);  // rungs 1, 4, 16, 64
  // The first job at a rung goes on whatever it scored.
  EXPECT_FALSE(DecideAtRung(config, "accuracy", true, At(1, 0.0, 100), {}).stop);
  // numpy.percentile([0.2, 0.4, 0.6, 0.8], 75) = 0.65.
  const std::vector<double> earlier = {0.2, 0.4, 0.6, 0.8};
  EXPECT_FALSE(DecideAtRung(config, "accuracy", true, At(4, 0.65, 100), earlier).stop);
  const RungDecision out = DecideAtRung(config, "accuracy", true, At(4, 0.64, 100), earlier);
  EXPECT_TRUE(out.stop);
  EXPECT_EQ(out.reason, "rung 2 (200 steps): dev accuracy 0.64 below the top 1/4 cutoff 0.65 of 4 earlier jobs");
  EXPECT_FALSE(DecideAtRung(config, "accuracy", true, At(5, 0.0, 100), earlier).rung);
  // max_t: the job stops at its max_t-th evaluation, rung or not.
  const RungDecision at_max = DecideAtRung(AshaPolicy(1, 4, 6), "accuracy", true, At(6, 1.0, 20), {});
  EXPECT_TRUE(at_max.stop);
  EXPECT_EQ(at_max.reason, "evaluation 6 (300 steps): reached max_t 6");
}

TEST(DecideAtRungTest, MedianNeedsMinJobsAndWaitsForTheWarmup) {
  const EarlyTermination config = MedianPolicy(/*warmup_evals=*/2, /*min_jobs=*/3);
  const std::vector<double> others = {0.5, 0.6, 0.7};
  EXPECT_FALSE(DecideAtRung(config, "accuracy", true, At(2, 0.1), others).rung);  // warm-up
  EXPECT_FALSE(DecideAtRung(config, "accuracy", true, At(3, 0.1), {0.5, 0.6}).stop);  // too few jobs
  EXPECT_FALSE(DecideAtRung(config, "accuracy", true, At(3, 0.6), others).stop);
  const RungDecision out = DecideAtRung(config, "accuracy", true, At(3, 0.55), others);
  EXPECT_TRUE(out.stop);
  EXPECT_EQ(out.reason, "evaluation 3 (150 steps): best dev accuracy 0.55 worse than the median 0.6 of 3 other jobs");
  // An even count: the mean of the middle two (0.55).
  EXPECT_FALSE(DecideAtRung(config, "accuracy", true, At(3, 0.55), {0.4, 0.5, 0.6, 0.7}).stop);
  EXPECT_TRUE(DecideAtRung(config, "accuracy", true, At(3, 0.54), {0.4, 0.5, 0.6, 0.7}).stop);
}

TEST(DecideAtRungTest, NonFiniteValuesDecideNothing) {
  const std::vector<double> others = {0.9, 0.8};
  const RungDecision nan = DecideAtRung(Hyperband(1), "accuracy", true, At(1, std::nan("")), others);
  EXPECT_FALSE(nan.stop);
}

TEST(DecideAtRungTest, RungValueIsTheBestSoFarWhereTheRuleSaysSo) {
  EXPECT_EQ(RungValue(Hyperband(1), 0.5, 0.7), 0.5);
  EXPECT_EQ(RungValue(Hyperband(1, 3, /*strict=*/false), 0.5, 0.7), 0.7);
  EXPECT_EQ(RungValue(AshaPolicy(1, 4, 100), 0.5, 0.7), 0.5);
  EXPECT_EQ(RungValue(MedianPolicy(0, 3), 0.5, 0.7), 0.7);
}

// --- The job table ---

constexpr char kRoot[] = "/state/sweeps";

// A sweep of train jobs, one per learning rate, 450 steps with an evaluation every 50.
SweepSubmission TrainSweep(const std::vector<std::string>& learning_rates, const EarlyTermination& config) {
  SweepSubmission sweep;
  sweep.name = "et";
  sweep.metric_name = "accuracy";
  sweep.parameters = {"learning_rate"};
  sweep.early_terminate = config;
  for (const std::string& lr : learning_rates) {
    SweepSubmission::Job& job = sweep.jobs.emplace_back();
    job.kind = std::string(kTrainJob);
    job.settings = {{"model", "/m"}, {"train", "/t.jsonl"}, {"dev", "/d.jsonl"}, {"learning_rate", lr},
                    {"max_steps", "450"}, {"eval_every", "50"}};
    job.verbalizer = {{"ham", " software"}, {"spam", " money"}};
    job.id = JobId(JobSettings{job.settings, job.verbalizer});
    job.swept = {{"learning_rate", lr}};
  }
  return sweep;
}

JobProgress Eval(int64_t step, double dev, double best) {
  JobProgress progress;
  progress.step = step;
  progress.max_steps = 450;
  progress.dev_metric = dev;
  progress.best_metric = best;
  return progress;
}

LeaseRef RefOf(const JobSpec& spec) { return {spec.sweep, spec.job_id, spec.attempt}; }

class EarlyTerminationTableTest : public ::testing::Test {
 protected:
  EarlyTerminationTableTest() { Reload(); }

  // A new table from what the store holds: a coordinator restart.
  void Reload() {
    JobTableOptions options;
    options.default_output_root = kRoot;
    options.lease_timeout_seconds = 30;
    options.max_attempts = 3;
    options.clock = [this] { return now_; };
    table_ = std::make_unique<JobTable>(options);
    table_->Load(store_.Load());
  }
  void Commit(const Effects& effects) {
    store_.Commit(effects.writes);
    table_->Apply(effects);
  }
  std::string Register() {
    JobTable::Registration plan = table_->PlanRegisterWorker({});
    Commit(plan.effects);
    return plan.worker_id;
  }
  JobSpec Lease(const std::string& worker) {
    JobTable::LeaseGrant grant = table_->PlanLease(worker, {});
    EXPECT_TRUE(grant.spec);
    Commit(grant.effects);
    return grant.spec.value_or(JobSpec{});
  }
  void Progress(const std::string& worker, const JobSpec& job, const JobProgress& progress) {
    JobTable::Report report = table_->PlanProgress(worker, RefOf(job), progress);
    ASSERT_TRUE(report.ack.accepted) << report.ack.reason;
    Commit(report.effects);
  }
  std::vector<StopOrder> Beat(const std::string& worker, const JobSpec& job) {
    std::vector<StopOrder> stop;
    EXPECT_TRUE(table_->Heartbeat(worker, {RefOf(job)}, &stop).empty());
    return stop;
  }
  JobTable::Report Finish(const std::string& worker, const JobSpec& job, JobState state, int64_t steps,
                          double best_dev) {
    JobOutcome outcome;
    outcome.state = state;
    outcome.steps = steps;
    outcome.best_dev = best_dev;
    outcome.test = best_dev;
    outcome.files = {{"adapter_model.safetensors", "x"}};
    JobTable::Report report = table_->PlanResult(worker, RefOf(job), outcome);
    EXPECT_TRUE(report.ack.accepted) << report.ack.reason;
    Commit(report.effects);
    return report;
  }
  // Runs a job from lease to its result at `steps`, reporting `curve` (one dev value per evaluation).
  void RunToEnd(const std::string& worker, const std::vector<double>& curve) {
    const JobSpec job = Lease(worker);
    double best = 0;
    for (size_t k = 0; k < curve.size(); ++k) {
      best = std::max(best, curve[k]);
      Progress(worker, job, Eval(50 * static_cast<int64_t>(k + 1), curve[k], best));
    }
    Finish(worker, job, JobState::kSucceeded, 50 * static_cast<int64_t>(curve.size()), best);
  }

  double now_ = 100.0;
  FakeSchedulerStore store_;
  std::unique_ptr<JobTable> table_;
};

TEST_F(EarlyTerminationTableTest, ABadJobIsStoppedAtItsRungDeliveredByHeartbeatAndFinishedAsStopped) {
  Commit(table_->PlanSubmit(TrainSweep({"0.3", "0.1", "3.0"}, Hyperband(1))).effects);  // rungs 1, 3, 9
  const std::string w = Register();
  RunToEnd(w, {0.7, 0.75, 0.8, 0.8, 0.8, 0.8, 0.8, 0.8, 0.85});
  RunToEnd(w, {0.6, 0.7, 0.72, 0.72, 0.72, 0.72, 0.72, 0.72, 0.72});
  const JobSpec bad = Lease(w);
  Progress(w, bad, Eval(50, 0.5, 0.5));  // 3 at rung 1: cutoff = sorted[1] = 0.6
  EXPECT_TRUE(store_.commits.back().updates.size() == 1 && !store_.commits.back().updates[0].durable.stop_reason.empty())
      << "the decision is committed with the report";
  EXPECT_EQ(store_.commits.back().rungs.size(), 1u);
  const std::vector<StopOrder> stop = Beat(w, bad);
  ASSERT_EQ(stop.size(), 1u);
  EXPECT_EQ(stop[0].reason, "rung 1 (50 steps): dev accuracy 0.5 not in top 1/3 of 3 (cutoff 0.6)");
  EXPECT_EQ(Beat(w, bad).size(), 1u) << "repeated until the result comes";

  Finish(w, bad, JobState::kStopped, 52, 0.5);
  const SweepStatus status = table_->Status("et", true);
  EXPECT_EQ(status.stopped, 1);
  EXPECT_EQ(status.succeeded, 2);
  EXPECT_TRUE(status.done);
  EXPECT_EQ(status.steps_planned, 3 * 450);
  EXPECT_EQ(status.steps_saved, 450 - 52);
  EXPECT_EQ(status.jobs[2].state, JobState::kStopped);
  EXPECT_EQ(status.jobs[2].message, stop[0].reason + "; stopped at step 52");
  const std::vector<FinishedJobRows> rows = table_->FinishedRows("et", {});
  ASSERT_EQ(rows.size(), 3u);
  EXPECT_EQ(rows[2].result.status, "stopped");
  EXPECT_EQ(rows[2].result.stopped_at_step, 52);
  EXPECT_EQ(rows[2].result.adapter, "adapters/" + bad.job_id);
  EXPECT_FALSE(rows[0].result.stopped_at_step);
}

TEST_F(EarlyTerminationTableTest, PromotedJobsGoOnAndTooFewJobsAtARungKeepEveryone) {
  Commit(table_->PlanSubmit(TrainSweep({"0.3", "0.1"}, Hyperband(3))).effects);  // rungs 3, 9
  const std::string w = Register();
  const JobSpec a = Lease(w);
  const JobSpec b = Lease(w);
  Progress(w, a, Eval(50, 0.1, 0.1));  // not a rung
  Progress(w, b, Eval(50, 0.9, 0.9));
  Progress(w, a, Eval(150, 0.2, 0.2));  // first at rung 3: alone, kept
  EXPECT_TRUE(Beat(w, a).empty());
  Progress(w, b, Eval(150, 0.9, 0.9));  // better: kept
  EXPECT_TRUE(Beat(w, b).empty());
  EXPECT_EQ(table_->Status("et", false).stopped, 0);
}

TEST_F(EarlyTerminationTableTest, DecisionsAndRungValuesSurviveARestartBeforeDelivery) {
  Commit(table_->PlanSubmit(TrainSweep({"0.3", "0.1", "3.0", "1e-05"}, Hyperband(1))).effects);
  const std::string w = Register();
  RunToEnd(w, {0.8, 0.8, 0.8, 0.8, 0.8, 0.8, 0.8, 0.8, 0.8});
  RunToEnd(w, {0.7, 0.7, 0.7, 0.7, 0.7, 0.7, 0.7, 0.7, 0.7});
  const JobSpec bad = Lease(w);
  Progress(w, bad, Eval(50, 0.1, 0.1));  // decided, not yet heard
  Reload();                              // the coordinator restarts in between
  const std::vector<StopOrder> stop = Beat(w, bad);
  ASSERT_EQ(stop.size(), 1u) << "the decision was committed before it was sent";
  EXPECT_TRUE(HasText(stop[0].reason, "rung 1 (50 steps)"));
  // The rung values came back too: the 4th job is compared with all three.
  const JobSpec fourth = Lease(w);
  Progress(w, fourth, Eval(50, 0.65, 0.65));  // 4 at rung 1: cutoff sorted[1] = 0.7
  ASSERT_EQ(Beat(w, fourth).size(), 1u);
  EXPECT_TRUE(HasText(Beat(w, fourth)[0].reason, "of 4 (cutoff 0.7)"));
}

TEST_F(EarlyTerminationTableTest, ARequeuedJobKeepsItsRungHistoryAndGetsTheStopWithItsNextLease) {
  Commit(table_->PlanSubmit(TrainSweep({"0.3", "3.0"}, Hyperband(1, 2))).effects);
  const std::string w = Register();
  RunToEnd(w, {0.8, 0.8, 0.8, 0.8, 0.8, 0.8, 0.8, 0.8, 0.8});
  const JobSpec bad = Lease(w);
  Progress(w, bad, Eval(50, 0.2, 0.2));  // 2 at rung 1, eta 2: cutoff sorted[1] = 0.2 -> kept
  EXPECT_TRUE(Beat(w, bad).empty());
  Progress(w, bad, Eval(100, 0.1, 0.2));  // rung 2: 0.8 and 0.1, cutoff sorted[1] = 0.1 -> kept
  // The worker dies; the lease expires; the job reruns from scratch.
  now_ += 100;
  Commit(table_->PlanExpiry().effects);
  const JobSpec again = Lease(w);
  EXPECT_EQ(again.attempt, 2);
  EXPECT_EQ(again.stop_at_step, 0);
  const size_t rungs_before = store_.Load().rungs.size();
  Progress(w, again, Eval(50, 0.9, 0.9));  // rung 1 again: the first report stands
  EXPECT_EQ(store_.Load().rungs.size(), rungs_before);
  EXPECT_TRUE(Beat(w, again).empty());

}

TEST_F(EarlyTerminationTableTest, AStopNotHeardBeforeTheLeaseWasLostComesWithTheNextLease) {
  Commit(table_->PlanSubmit(TrainSweep({"0.3", "0.1", "3.0"}, Hyperband(1))).effects);
  const std::string w = Register();
  RunToEnd(w, {0.8, 0.8, 0.8, 0.8, 0.8, 0.8, 0.8, 0.8, 0.8});
  RunToEnd(w, {0.7, 0.7, 0.7, 0.7, 0.7, 0.7, 0.7, 0.7, 0.7});
  const JobSpec bad = Lease(w);
  Progress(w, bad, Eval(50, 0.1, 0.1));
  now_ += 100;  // lost before any heartbeat
  Commit(table_->PlanExpiry().effects);
  const JobSpec again = Lease(w);
  EXPECT_EQ(again.attempt, 2);
  EXPECT_EQ(again.stop_at_step, 50);
  EXPECT_TRUE(HasText(again.stop_reason, "rung 1 (50 steps)"));
  EXPECT_TRUE(Beat(w, again).empty()) << "the lease carried it";
  Finish(w, again, JobState::kStopped, 50, 0.1);
  EXPECT_EQ(table_->Status("et", false).stopped, 1);
}

TEST_F(EarlyTerminationTableTest, ADivergingJobNeitherEntersNorMovesTheCutoff) {
  Commit(table_->PlanSubmit(TrainSweep({"0.3", "30", "0.1"}, Hyperband(1))).effects);
  const std::string w = Register();
  RunToEnd(w, {0.8, 0.8, 0.8, 0.8, 0.8, 0.8, 0.8, 0.8, 0.8});
  const JobSpec diverging = Lease(w);
  Progress(w, diverging, Eval(50, std::nan(""), std::nan("")));
  EXPECT_EQ(store_.Load().rungs.size(), 3u) << "NaN is not recorded (the first job's rungs 1, 3, 9 are)";
  EXPECT_TRUE(Beat(w, diverging).empty());
  Finish(w, diverging, JobState::kDiverged, 50, std::nan(""));
  // The third job is compared with the first alone: 2 at rung 1, cutoff sorted[0] = 0.8.
  const JobSpec third = Lease(w);
  Progress(w, third, Eval(50, 0.75, 0.75));
  ASSERT_EQ(Beat(w, third).size(), 1u);
  EXPECT_TRUE(HasText(Beat(w, third)[0].reason, "of 2 (cutoff 0.8)"));
}

TEST_F(EarlyTerminationTableTest, AshaBracketsCompareOnlyWithinABracket) {
  const EarlyTermination config = AshaPolicy(1, 2, 8, /*brackets=*/2);
  SweepSubmission sweep = TrainSweep({"0.1", "0.2", "0.3", "0.4", "0.5", "0.6"}, config);
  Commit(table_->PlanSubmit(sweep).effects);
  const std::string w = Register();
  std::vector<JobSpec> jobs;
  for (int i = 0; i < 6; ++i) jobs.push_back(Lease(w));
  // Every job scores 0.9 at iteration 2 except the last; whether the last is
  // stopped depends on whether a job of its bracket met rung 2 before it.
  int64_t same_bracket_before = 0;
  const int64_t last_bracket = BracketOf(config, jobs[5].job_id);
  for (int i = 0; i < 5; ++i) {
    Progress(w, jobs[i], Eval(100, 0.9, 0.9));
    same_bracket_before += BracketOf(config, jobs[i].job_id) == last_bracket ? 1 : 0;
  }
  Progress(w, jobs[5], Eval(100, 0.1, 0.1));
  EXPECT_EQ(Beat(w, jobs[5]).size(), same_bracket_before > 0 ? 1u : 0u);
}

TEST_F(EarlyTerminationTableTest, MedianStopsBelowTheMedianOfTheOthersAtTheSameEvaluation) {
  Commit(table_->PlanSubmit(TrainSweep({"0.3", "0.2", "0.1", "3.0"}, MedianPolicy(1, 3))).effects);
  const std::string w = Register();
  RunToEnd(w, {0.5, 0.8, 0.8, 0.8, 0.8, 0.8, 0.8, 0.8, 0.8});
  RunToEnd(w, {0.5, 0.7, 0.7, 0.7, 0.7, 0.7, 0.7, 0.7, 0.7});
  RunToEnd(w, {0.5, 0.6, 0.6, 0.6, 0.6, 0.6, 0.6, 0.6, 0.6});
  const JobSpec bad = Lease(w);
  Progress(w, bad, Eval(50, 0.1, 0.1));  // warm-up evaluation: no rung
  EXPECT_TRUE(Beat(w, bad).empty());
  Progress(w, bad, Eval(100, 0.69, 0.69));  // median of 0.8, 0.7, 0.6 = 0.7
  ASSERT_EQ(Beat(w, bad).size(), 1u);
  EXPECT_TRUE(HasText(Beat(w, bad)[0].reason, "worse than the median 0.7 of 3 other jobs"));
}

TEST_F(EarlyTerminationTableTest, ASweepMergesOnlyWithTheSamePolicy) {
  Commit(table_->PlanSubmit(TrainSweep({"0.3"}, Hyperband(1))).effects);
  EXPECT_TRUE(HasText(test::ErrorOf([&] { table_->PlanSubmit(TrainSweep({"0.3"}, Hyperband(3))); }),
                      "exists with early_terminate hyperband"));
  EXPECT_TRUE(HasText(test::ErrorOf([&] {
                        EarlyTermination bad = Hyperband(1, 1.0);
                        JobTable::ValidateSubmission(TrainSweep({"0.3"}, bad));
                      }),
                      "early_terminate.eta must be > 1"));
}

}  // namespace
}  // namespace promptsweep
