#include "coordinator/scheduler.h"

#include <algorithm>
#include <cmath>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "common/error.h"
#include "coordinator/sqlite_db.h"
#include "coordinator/sqlite_store.h"
#include "coordinator/sweep_spec.h"
#include "test_utils.h"

namespace promptsweep {
namespace {

namespace fs = std::filesystem;
using test::ErrorOf;
using test::HasText;
using test::ReadFileBytes;
using test::ScopedTempDir;

constexpr char kModelA[] = "/models/a";
constexpr char kModelB[] = "/models/b";

std::string ModelKeyOf(const std::string& model) { return ModelKey({{"model", model}, {"tokenizer", ""}}); }

// A train job as sweep_spec expands it: its id is the hash of its settings.
SweepSubmission::Job TrainJob(const std::string& learning_rate, uint64_t seed, const std::string& model = kModelA) {
  SweepSubmission::Job job;
  job.kind = std::string(kTrainJob);
  job.settings = {{"model", model}, {"tokenizer", ""}, {"dtype", "float32"}, {"learning_rate", learning_rate},
                  {"seed", std::to_string(seed)}};
  job.verbalizer = {{"spam", " money"}, {"ham", " software"}};
  job.id = JobId(JobSettings{job.settings, job.verbalizer});
  job.swept = {{"learning_rate", learning_rate}};
  job.seed = seed;
  return job;
}

SweepSubmission::Job SleepJob(const std::string& id) {
  SweepSubmission::Job job;
  job.id = id;
  job.kind = std::string(kSleepJob);
  job.settings = {{"seconds", "1"}};
  job.swept = {{"learning_rate", "0"}};
  return job;
}

SweepSubmission Sweep(const std::string& name, std::vector<SweepSubmission::Job> jobs) {
  SweepSubmission sweep;
  sweep.name = name;
  sweep.sweep_file = "/sweeps/" + name + ".yaml";
  sweep.yaml = "name: " + name + "\n";
  sweep.metric_name = "accuracy";
  sweep.maximize = true;
  sweep.parameters = {"learning_rate"};
  sweep.jobs = std::move(jobs);
  return sweep;
}

JobOutcome Succeeded(double best_dev) {
  JobOutcome outcome;
  outcome.state = JobState::kSucceeded;
  outcome.metric_name = "accuracy";
  outcome.final_dev = 0.5;
  outcome.best_dev = best_dev;
  outcome.test = 0.625;
  outcome.best_step = 20;
  outcome.steps = 30;
  outcome.train_loss = 1.25;
  outcome.tokens_per_second = 1000;
  outcome.wall_seconds = 10;
  outcome.history = {{10, "train", "loss", 2.5}, {20, "dev", "accuracy", best_dev}};
  return outcome;
}

JobOutcome Failed(const std::string& message, bool retryable) {
  JobOutcome outcome;
  outcome.state = JobState::kFailed;
  outcome.message = message;
  outcome.retryable = retryable;
  return outcome;
}

LeaseRef RefOf(const JobSpec& spec) { return {spec.sweep, spec.job_id, spec.attempt}; }

class SchedulerTest : public ::testing::Test {
 protected:
  std::unique_ptr<Scheduler> Open(int64_t max_attempts = 3) {
    SchedulerOptions options;
    options.state_dir = state_dir();
    options.lease_timeout_seconds = 30;
    options.max_attempts = max_attempts;
    options.clock = [this] { return now_; };
    return std::make_unique<Scheduler>(options);
  }
  std::string state_dir() const { return dir_.File("state"); }
  std::string OutputDir(const std::string& sweep) const { return state_dir() + "/sweeps/" + sweep; }
  std::string ResultsCsvText(const std::string& sweep) const {
    return ReadFileBytes(OutputDir(sweep) + "/results.csv");
  }
  std::string MetricsCsvText(const std::string& sweep) const {
    return ReadFileBytes(OutputDir(sweep) + "/metrics.csv");
  }

  ScopedTempDir dir_;
  double now_ = 1000.0;
};

constexpr char kResultsHeader[] =
    "job_id,learning_rate,seed,status,attempts,final_dev_accuracy,best_dev_accuracy,best_step,test_accuracy,"
    "train_loss,steps,stopped_at_step,tokens_per_second,wall_seconds,worker,adapter,message\n";

TEST_F(SchedulerTest, SubmitLeaseResultHappyPath) {
  auto scheduler = Open();
  const SweepSubmission::Job job = TrainJob("0.3", 1);
  const SubmitResult submitted = scheduler->Submit(Sweep("spam", {job}));
  EXPECT_EQ(submitted.added, 1);
  EXPECT_EQ(submitted.existing, 0);
  EXPECT_EQ(submitted.output_dir, OutputDir("spam"));
  EXPECT_EQ(ResultsCsvText("spam"), kResultsHeader);  // created with the sweep

  WorkerInfo info;
  info.host = "node 1";
  const std::string worker = scheduler->RegisterWorker(info);
  EXPECT_EQ(worker, "w1-node_1");
  EXPECT_TRUE(scheduler->KnownWorker(worker));
  EXPECT_FALSE(scheduler->KnownWorker("w9"));

  std::optional<JobSpec> spec = scheduler->Lease(worker, {});
  ASSERT_TRUE(spec);
  EXPECT_EQ(spec->sweep, "spam");
  EXPECT_EQ(spec->job_id, job.id);
  EXPECT_EQ(spec->attempt, 1);
  EXPECT_EQ(spec->kind, "train");
  EXPECT_EQ(spec->settings, job.settings);
  EXPECT_EQ(spec->verbalizer, job.verbalizer);
  EXPECT_TRUE(spec->checkpoint.empty());
  EXPECT_FALSE(scheduler->Lease(worker, {}));
  EXPECT_EQ(scheduler->Status("spam").leased, 1);

  JobProgress progress;
  progress.step = 10;
  progress.max_steps = 30;
  progress.train_loss = 2.0;
  progress.best_metric = 0.4;
  EXPECT_TRUE(scheduler->Progress(worker, RefOf(*spec), progress).accepted);
  SweepStatus status = scheduler->Status("spam");
  EXPECT_EQ(status.running, 1);
  EXPECT_EQ(status.jobs[0].step, 10);
  EXPECT_EQ(status.jobs[0].best_dev, 0.4);

  JobOutcome outcome = Succeeded(0.75);
  outcome.files = {{"adapter_config.json", "{}"}, {"adapter_model.safetensors", std::string("\0\1\2", 3)}};
  const ReportAck ack = scheduler->ReportResult(worker, RefOf(*spec), outcome);
  EXPECT_TRUE(ack.accepted) << ack.reason;

  EXPECT_EQ(ResultsCsvText("spam"), std::string(kResultsHeader) + job.id +
                                        ",0.3,1,succeeded,1,0.5,0.75,20,0.625,1.25,30,,1000,10,w1-node_1,adapters/" +
                                        job.id + ",\n");
  EXPECT_EQ(MetricsCsvText("spam"),
            "job_id,step,split,metric,value\n" + job.id + ",10,train,loss,2.5\n" + job.id + ",20,dev,accuracy,0.75\n");
  const std::string adapter = OutputDir("spam") + "/adapters/" + job.id;
  EXPECT_EQ(ReadFileBytes(adapter + "/adapter_config.json"), "{}");
  EXPECT_EQ(ReadFileBytes(adapter + "/adapter_model.safetensors"), std::string("\0\1\2", 3));
  EXPECT_FALSE(fs::exists(OutputDir("spam") + "/adapters/." + job.id + ".tmp"));

  status = scheduler->Status("spam");
  EXPECT_EQ(status.succeeded, 1);
  EXPECT_TRUE(status.done);
  EXPECT_EQ(status.best_dev, 0.75);
  EXPECT_EQ(status.best_job, job.id);
  EXPECT_EQ(status.jobs[0].step, 30);
  EXPECT_EQ(status.jobs[0].test, 0.625);

  // A replay of the same report is rejected; nothing is added.
  EXPECT_EQ(scheduler->ReportResult(worker, RefOf(*spec), outcome).reason, "job " + job.id + " is already succeeded");
  EXPECT_EQ(scheduler->SweepNames(), std::vector<std::string>{"spam"});
  EXPECT_EQ(scheduler->lease_timeout_seconds(), 30.0);
}

TEST_F(SchedulerTest, ResubmitAddsOnlyMissingJobsAndNeverRerunsFinished) {
  auto scheduler = Open();
  const auto a = TrainJob("0.1", 0), b = TrainJob("0.2", 0), c = TrainJob("0.3", 0);
  EXPECT_EQ(scheduler->Submit(Sweep("s", {a, b})).added, 2);
  const std::string worker = scheduler->RegisterWorker({});
  auto first = scheduler->Lease(worker, {});
  ASSERT_TRUE(first);
  EXPECT_EQ(first->job_id, a.id);
  ASSERT_TRUE(scheduler->ReportResult(worker, RefOf(*first), Succeeded(0.5)).accepted);

  SubmitResult again = scheduler->Submit(Sweep("s", {a, b}));
  EXPECT_EQ(again.added, 0);
  EXPECT_EQ(again.existing, 2);
  again = scheduler->Submit(Sweep("s", {a, b, c}));
  EXPECT_EQ(again.added, 1);
  EXPECT_EQ(again.existing, 2);

  auto second = scheduler->Lease(worker, {});
  auto third = scheduler->Lease(worker, {});
  ASSERT_TRUE(second && third);
  EXPECT_EQ(second->job_id, b.id);
  EXPECT_EQ(third->job_id, c.id);
  EXPECT_FALSE(scheduler->Lease(worker, {}));
  EXPECT_EQ(scheduler->Status("s").total, 3);
}

TEST_F(SchedulerTest, OlderSweepsFirstAndJobsAddedLaterKeepTheirSweepsPlace) {
  auto scheduler = Open();
  scheduler->Submit(Sweep("first", {SleepJob("f1")}));
  scheduler->Submit(Sweep("second", {SleepJob("s1")}));
  scheduler->Submit(Sweep("first", {SleepJob("f1"), SleepJob("f2")}));
  const std::string worker = scheduler->RegisterWorker({});
  std::vector<std::string> order;
  while (auto spec = scheduler->Lease(worker, {})) order.push_back(spec->sweep + "/" + spec->job_id);
  EXPECT_EQ(order, (std::vector<std::string>{"first/f1", "first/f2", "second/s1"}));
  EXPECT_EQ(scheduler->SweepNames(), (std::vector<std::string>{"first", "second"}));
}

TEST_F(SchedulerTest, ExpiredLeaseRequeuesAndRejectsTheLateResult) {
  auto scheduler = Open();
  const auto job = TrainJob("0.3", 1);
  scheduler->Submit(Sweep("s", {job}));
  const std::string w1 = scheduler->RegisterWorker({});
  const std::string w2 = scheduler->RegisterWorker({});
  auto lease1 = scheduler->Lease(w1, {});
  ASSERT_TRUE(lease1);

  // Heartbeats keep it.
  now_ += 20;
  EXPECT_TRUE(scheduler->Heartbeat(w1, {RefOf(*lease1)}).empty());
  now_ += 20;
  EXPECT_EQ(scheduler->ExpireLeases(), 0);
  now_ += 11;  // 31 s after the heartbeat
  EXPECT_EQ(scheduler->ExpireLeases(), 1);
  SweepStatus status = scheduler->Status("s");
  EXPECT_EQ(status.pending, 1);
  EXPECT_EQ(status.jobs[0].message, "lease expired on worker w1 (no heartbeat for 31s), attempt 1");

  auto lease2 = scheduler->Lease(w2, {});
  ASSERT_TRUE(lease2);
  EXPECT_EQ(lease2->attempt, 2);

  // The old holder learns it lost the lease; its late reports are refused.
  const std::vector<LeaseRef> lost = scheduler->Heartbeat(w1, {RefOf(*lease1)});
  ASSERT_EQ(lost.size(), 1u);
  EXPECT_EQ(lost[0].attempt, 1);
  EXPECT_FALSE(scheduler->Progress(w1, RefOf(*lease1), JobProgress{}).accepted);
  const ReportAck late = scheduler->ReportResult(w1, RefOf(*lease1), Succeeded(0.9));
  EXPECT_FALSE(late.accepted);
  EXPECT_EQ(late.reason, "job " + job.id + " attempt 1 is stale: current attempt is 2");
  // Right attempt, wrong worker.
  EXPECT_TRUE(HasText(scheduler->ReportResult(w1, RefOf(*lease2), Succeeded(0.9)).reason, "is leased to worker w2"));

  EXPECT_TRUE(scheduler->ReportResult(w2, RefOf(*lease2), Succeeded(0.6)).accepted);
  EXPECT_FALSE(scheduler->ReportResult(w1, RefOf(*lease1), Succeeded(0.9)).accepted);
  const std::string results = ResultsCsvText("s");
  EXPECT_EQ(results,
            std::string(kResultsHeader) + job.id + ",0.3,1,succeeded,2,0.5,0.6,20,0.625,1.25,30,,1000,10,w2,,\n");
}

TEST_F(SchedulerTest, LeaseExpiriesUpToMaxAttemptsFailTheJob) {
  auto scheduler = Open(/*max_attempts=*/2);
  scheduler->Submit(Sweep("s", {SleepJob("j1")}));
  const std::string worker = scheduler->RegisterWorker({});
  for (int attempt = 1; attempt <= 2; ++attempt) {
    auto spec = scheduler->Lease(worker, {});
    ASSERT_TRUE(spec);
    EXPECT_EQ(spec->attempt, attempt);
    now_ += 60;
    EXPECT_EQ(scheduler->ExpireLeases(), 1);
  }
  EXPECT_FALSE(scheduler->Lease(worker, {}));
  const SweepStatus status = scheduler->Status("s");
  EXPECT_EQ(status.failed, 1);
  EXPECT_TRUE(status.done);
  EXPECT_EQ(status.jobs[0].message,
            "lease expired on worker w1 (no heartbeat for 60s), attempt 2; failed after 2 failed attempts "
            "(max_attempts 2)");
  EXPECT_EQ(ResultsCsvText("s"), std::string(kResultsHeader) +
                                     "j1,0,0,failed,2,,,,,,,,,,w1,,\"lease expired on worker w1 (no heartbeat for "
                                     "60s), attempt 2; failed after 2 failed attempts (max_attempts 2)\"\n");
}

TEST_F(SchedulerTest, RetryableFailureRequeuesAndOtherFailuresFinish) {
  auto scheduler = Open(/*max_attempts=*/2);
  scheduler->Submit(Sweep("s", {SleepJob("retry"), SleepJob("fatal")}));
  const std::string worker = scheduler->RegisterWorker({});
  auto retry1 = scheduler->Lease(worker, {});
  ASSERT_TRUE(retry1 && retry1->job_id == "retry");
  ASSERT_TRUE(scheduler->ReportResult(worker, RefOf(*retry1), Failed("rank 1 lost", true)).accepted);
  SweepStatus status = scheduler->Status("s");
  EXPECT_EQ(status.pending, 2);
  EXPECT_EQ(status.jobs[0].message, "rank 1 lost (attempt 1; will retry)");

  auto retry2 = scheduler->Lease(worker, {});
  ASSERT_TRUE(retry2 && retry2->job_id == "retry");
  EXPECT_EQ(retry2->attempt, 2);
  ASSERT_TRUE(scheduler->ReportResult(worker, RefOf(*retry2), Failed("rank 1 lost", true)).accepted);
  status = scheduler->Status("s");
  EXPECT_EQ(status.jobs[0].state, JobState::kFailed);
  EXPECT_EQ(status.jobs[0].message, "rank 1 lost (attempt 2; 2 failed attempts of max_attempts 2)");

  auto fatal = scheduler->Lease(worker, {});
  ASSERT_TRUE(fatal && fatal->job_id == "fatal");
  ASSERT_TRUE(scheduler->ReportResult(worker, RefOf(*fatal), Failed("no such file: train.jsonl", false)).accepted);
  status = scheduler->Status("s");
  EXPECT_EQ(status.failed, 2);
  EXPECT_EQ(status.jobs[1].attempts, 1);
  EXPECT_EQ(status.jobs[1].message, "no such file: train.jsonl");
}

TEST_F(SchedulerTest, DivergedAndCancelledOutcomesFinish) {
  auto scheduler = Open();
  scheduler->Submit(Sweep("s", {SleepJob("d"), SleepJob("c")}));
  const std::string worker = scheduler->RegisterWorker({});
  auto d = scheduler->Lease(worker, {});
  auto c = scheduler->Lease(worker, {});
  JobOutcome diverged = Succeeded(0.5);
  diverged.state = JobState::kDiverged;
  diverged.train_loss = std::numeric_limits<double>::quiet_NaN();
  diverged.message = "loss is NaN at step 3";
  diverged.files = {{"adapter_config.json", "{}"}};  // only succeeded jobs keep files
  ASSERT_TRUE(scheduler->ReportResult(worker, RefOf(*d), diverged).accepted);
  JobOutcome cancelled;
  cancelled.state = JobState::kCancelled;
  cancelled.message = "stopped";
  ASSERT_TRUE(scheduler->ReportResult(worker, RefOf(*c), cancelled).accepted);
  const SweepStatus status = scheduler->Status("s");
  EXPECT_EQ(status.diverged, 1);
  EXPECT_EQ(status.cancelled, 1);
  EXPECT_FALSE(status.best_dev);  // only succeeded jobs count
  EXPECT_FALSE(fs::exists(OutputDir("s") + "/adapters/d"));
  const std::string before = ResultsCsvText("s");
  EXPECT_TRUE(HasText(before, "d,0,0,diverged,1,0.5,0.5,20,0.625,nan,30,,1000,10,w1,,loss is NaN at step 3\n"));
  // The NaN went through SQLite as NULL: the rebuilt file still says nan.
  scheduler.reset();
  scheduler = Open();
  EXPECT_EQ(ResultsCsvText("s"), before);
}

TEST_F(SchedulerTest, CheckpointReturnsTheJobWithoutCountingAnAttempt) {
  auto scheduler = Open(/*max_attempts=*/1);
  scheduler->Submit(Sweep("s", {SleepJob("j")}));
  const std::string w1 = scheduler->RegisterWorker({});
  const std::string w2 = scheduler->RegisterWorker({});
  auto first = scheduler->Lease(w1, {});
  ASSERT_TRUE(first);
  const std::string state_bytes("trainer\0state", 13);
  ASSERT_TRUE(scheduler->ReportCheckpoint(w1, RefOf(*first), state_bytes, 40).accepted);
  SweepStatus status = scheduler->Status("s");
  EXPECT_EQ(status.pending, 1);
  EXPECT_TRUE(status.jobs[0].has_checkpoint);
  EXPECT_EQ(status.jobs[0].step, 40);
  const std::string checkpoint_file = OutputDir("s") + "/checkpoints/j.state";
  EXPECT_EQ(ReadFileBytes(checkpoint_file), state_bytes);
  // The stale holder cannot checkpoint again.
  EXPECT_FALSE(scheduler->ReportCheckpoint(w1, RefOf(*first), "x", 41).accepted);

  auto second = scheduler->Lease(w2, {});
  ASSERT_TRUE(second);
  EXPECT_EQ(second->attempt, 2);
  EXPECT_EQ(second->checkpoint, state_bytes);
  // Preempted again, this time the way a stopping worker reports it.
  JobOutcome preempted;
  preempted.state = JobState::kCancelled;
  preempted.steps = 80;
  preempted.checkpoint = "newer state";
  ASSERT_TRUE(scheduler->ReportResult(w2, RefOf(*second), preempted).accepted);
  EXPECT_EQ(scheduler->Status("s").jobs[0].step, 80);

  auto third = scheduler->Lease(w1, {});
  ASSERT_TRUE(third);
  EXPECT_EQ(third->attempt, 3);
  EXPECT_EQ(third->checkpoint, "newer state");
  // max_attempts 1, yet the job finishes: preemptions are not failures.
  ASSERT_TRUE(scheduler->ReportResult(w1, RefOf(*third), Succeeded(0.8)).accepted);
  status = scheduler->Status("s");
  EXPECT_EQ(status.succeeded, 1);
  EXPECT_FALSE(status.jobs[0].has_checkpoint);
  EXPECT_FALSE(fs::exists(checkpoint_file));
}

TEST_F(SchedulerTest, PrefersJobsOfALoadedModel) {
  auto scheduler = Open();
  const auto a1 = TrainJob("0.1", 0, kModelA), b1 = TrainJob("0.2", 0, kModelB), a2 = TrainJob("0.3", 0, kModelA),
             b2 = TrainJob("0.4", 0, kModelB);
  scheduler->Submit(Sweep("s", {a1, b1, a2, b2}));
  const std::string worker = scheduler->RegisterWorker({});
  EXPECT_EQ(scheduler->Lease(worker, {ModelKeyOf(kModelB)})->job_id, b1.id);
  EXPECT_EQ(scheduler->Lease(worker, {ModelKeyOf(kModelB)})->job_id, b2.id);
  // No pending job of B left: the oldest pending job.
  EXPECT_EQ(scheduler->Lease(worker, {ModelKeyOf(kModelB), "/models/c||float32"})->job_id, a1.id);
  EXPECT_EQ(scheduler->Lease(worker, {})->job_id, a2.id);
}

TEST_F(SchedulerTest, PrefersJobsOfARunningPackOverLoadedModels) {
  auto scheduler = Open();
  // Same model, another training file: another pack.
  const auto with_train = [](SweepSubmission::Job job, const std::string& train) {
    job.settings.emplace_back("train", train);
    job.id = JobId(JobSettings{job.settings, job.verbalizer});
    return job;
  };
  const auto oldest = with_train(TrainJob("0.1", 0, kModelA), "/d/other.jsonl");
  const auto b1 = TrainJob("0.2", 0, kModelB);
  const auto p1 = with_train(TrainJob("0.3", 0, kModelA), "/d/t.jsonl");
  const auto p2 = with_train(TrainJob("0.4", 1, kModelA), "/d/t.jsonl");
  scheduler->Submit(Sweep("s", {oldest, b1, p1, p2}));
  const std::string worker = scheduler->RegisterWorker({});
  const std::vector<std::string> packs = {PackKey(p1.settings, p1.verbalizer)};
  EXPECT_EQ(scheduler->Lease(worker, {ModelKeyOf(kModelB)}, packs)->job_id, p1.id);
  EXPECT_EQ(scheduler->Lease(worker, {ModelKeyOf(kModelB)}, packs)->job_id, p2.id);
  EXPECT_EQ(scheduler->Lease(worker, {ModelKeyOf(kModelB)}, packs)->job_id, b1.id);
  EXPECT_EQ(scheduler->Lease(worker, {}, packs)->job_id, oldest.id);
}

// Early termination through SQLite: a stop decided and committed, then the
// coordinator gone before any heartbeat; the reopened one delivers it, and
// the stopped result lands in results.csv as such.
TEST_F(SchedulerTest, AStopDecisionSurvivesACoordinatorLostBeforeItsDelivery) {
  auto job = [](const std::string& lr) {
    SweepSubmission::Job j = TrainJob(lr, 0);
    j.settings.push_back({"max_steps", "300"});
    j.settings.push_back({"eval_every", "50"});
    j.id = JobId(JobSettings{j.settings, j.verbalizer});
    return j;
  };
  SweepSubmission sweep = Sweep("et", {job("0.3"), job("3.0")});
  sweep.early_terminate.type = EarlyTerminationType::kHyperband;
  sweep.early_terminate.min_iter = 1;
  JobProgress progress;
  progress.step = 50;
  progress.max_steps = 300;
  std::string worker;
  std::optional<JobSpec> bad;
  {
    auto scheduler = Open();
    scheduler->Submit(sweep);
    worker = scheduler->RegisterWorker({});
    auto good = scheduler->Lease(worker, {});
    progress.dev_metric = progress.best_metric = 0.8;
    ASSERT_TRUE(scheduler->Progress(worker, RefOf(*good), progress).accepted);
    ASSERT_TRUE(scheduler->ReportResult(worker, RefOf(*good), Succeeded(0.8)).accepted);
    bad = scheduler->Lease(worker, {});
    progress.dev_metric = progress.best_metric = 0.4;
    ASSERT_TRUE(scheduler->Progress(worker, RefOf(*bad), progress).accepted);
  }  // no heartbeat came: the decision is only in the database
  auto scheduler = Open();
  std::vector<StopOrder> stop;
  EXPECT_TRUE(scheduler->Heartbeat(worker, {RefOf(*bad)}, &stop).empty());
  ASSERT_EQ(stop.size(), 1u);
  EXPECT_EQ(stop[0].reason, "rung 1 (50 steps): dev accuracy 0.4 not in top 1/3 of 2 (cutoff 0.8)");
  JobOutcome stopped = Succeeded(0.4);
  stopped.state = JobState::kStopped;
  stopped.steps = 51;
  stopped.files = {{"adapter_model.safetensors", "x"}};
  ASSERT_TRUE(scheduler->ReportResult(worker, RefOf(*bad), stopped).accepted);
  const SweepStatus status = scheduler->Status("et");
  EXPECT_EQ(status.stopped, 1);
  EXPECT_EQ(status.steps_saved, 300 - 51);
  EXPECT_TRUE(HasText(ResultsCsvText("et"), ",stopped,1,0.5,0.4,20,0.625,1.25,51,51,1000,10,w1,adapters/" + bad->job_id +
                                                ",rung 1 (50 steps): dev accuracy 0.4 not in top 1/3 of 2 (cutoff 0.8); "
                                                "stopped at step 51\n"))
      << ResultsCsvText("et");
}

TEST_F(SchedulerTest, ReopenKeepsStateAndHoldersCanStillReport) {
  const auto a = TrainJob("0.1", 0), b = TrainJob("0.2", 0), c = TrainJob("0.3", 0);
  std::string worker;
  std::optional<JobSpec> leased_b;
  std::string results_before;
  {
    auto scheduler = Open();
    scheduler->Submit(Sweep("s", {a, b, c}));
    worker = scheduler->RegisterWorker({});
    auto lease_a = scheduler->Lease(worker, {});
    ASSERT_TRUE(scheduler->ReportResult(worker, RefOf(*lease_a), Succeeded(0.5)).accepted);
    leased_b = scheduler->Lease(worker, {});
    ASSERT_TRUE(leased_b);
    JobProgress progress;
    progress.step = 3;
    ASSERT_TRUE(scheduler->Progress(worker, RefOf(*leased_b), progress).accepted);
    results_before = ResultsCsvText("s");
    // A second coordinator on the same state is refused while this one runs.
    EXPECT_TRUE(HasText(ErrorOf([&] { Open(); }), "in use by another coordinator"));
  }
  now_ += 1000;  // the new scheduler's leases start afresh whatever the clock says
  auto scheduler = Open();
  EXPECT_EQ(ResultsCsvText("s"), results_before);
  SweepStatus status = scheduler->Status("s");
  EXPECT_EQ(status.succeeded, 1);
  EXPECT_EQ(status.running, 1);
  EXPECT_EQ(status.pending, 1);
  EXPECT_EQ(scheduler->ExpireLeases(), 0);
  EXPECT_TRUE(scheduler->KnownWorker(worker));
  EXPECT_TRUE(scheduler->Heartbeat(worker, {RefOf(*leased_b)}).empty());
  ASSERT_TRUE(scheduler->ReportResult(worker, RefOf(*leased_b), Succeeded(0.7)).accepted);
  auto lease_c = scheduler->Lease(worker, {});
  ASSERT_TRUE(lease_c);
  EXPECT_EQ(lease_c->job_id, c.id);
  // Worker ids keep counting after a restart.
  EXPECT_EQ(scheduler->RegisterWorker({}), "w2");

  const std::string results = ResultsCsvText("s");
  EXPECT_EQ(results, std::string(kResultsHeader) + a.id + ",0.1,0,succeeded,1,0.5,0.5,20,0.625,1.25,30,,1000,10,w1,,\n" +
                         b.id + ",0.2,0,succeeded,1,0.5,0.7,20,0.625,1.25,30,,1000,10,w1,,\n");
  const std::string metrics = MetricsCsvText("s");

  // A crash in the middle of an append leaves half a row; reopening rebuilds.
  scheduler.reset();
  {
    std::FILE* file = std::fopen((OutputDir("s") + "/results.csv").c_str(), "a");
    std::fputs("deadbeef00000000,0.3,0,succ", file);
    std::fclose(file);
    file = std::fopen((OutputDir("s") + "/metrics.csv").c_str(), "a");
    std::fputs("deadbeef00000000,10,tr", file);
    std::fclose(file);
  }
  scheduler = Open();
  EXPECT_EQ(ResultsCsvText("s"), results);
  EXPECT_EQ(MetricsCsvText("s"), metrics);
  EXPECT_EQ(scheduler->Status("s").leased, 1);
}

TEST_F(SchedulerTest, CancelFinishesUnfinishedJobs) {
  auto scheduler = Open();
  scheduler->Submit(Sweep("s", {SleepJob("a"), SleepJob("b"), SleepJob("c"), SleepJob("d")}));
  const std::string worker = scheduler->RegisterWorker({});
  auto a = scheduler->Lease(worker, {});
  ASSERT_TRUE(scheduler->ReportResult(worker, RefOf(*a), Succeeded(0.5)).accepted);
  auto b = scheduler->Lease(worker, {});
  ASSERT_TRUE(b);

  EXPECT_EQ(scheduler->Cancel("s", {"c"}), 1);
  EXPECT_EQ(scheduler->Cancel("s", {"c", "a"}), 0);  // finished already
  EXPECT_TRUE(HasText(ErrorOf([&] { scheduler->Cancel("s", {"zz"}); }), "unknown job id 'zz' in sweep s"));
  EXPECT_TRUE(HasText(ErrorOf([&] { scheduler->Cancel("nope", {}); }), "unknown sweep 'nope' (known: s)"));
  EXPECT_EQ(scheduler->Cancel("s", {}), 2);  // b (leased) and d

  // The holder of b learns it from its heartbeat; its result is refused.
  EXPECT_EQ(scheduler->Heartbeat(worker, {RefOf(*b)}).size(), 1u);
  EXPECT_EQ(scheduler->ReportResult(worker, RefOf(*b), Succeeded(0.9)).reason, "job b is already cancelled");
  EXPECT_FALSE(scheduler->Lease(worker, {}));

  const SweepStatus status = scheduler->Status("s");
  EXPECT_EQ(status.cancelled, 3);
  EXPECT_EQ(status.succeeded, 1);
  EXPECT_TRUE(status.done);
  EXPECT_EQ(status.jobs[1].message, "cancelled by user");
  EXPECT_EQ(ResultsCsvText("s"), std::string(kResultsHeader) +
                                     "a,0,0,succeeded,1,0.5,0.5,20,0.625,1.25,30,,1000,10,w1,,\n"
                                     "c,0,0,cancelled,0,,,,,,,,,,,,cancelled by user\n"
                                     "b,0,0,cancelled,1,,,,,,,,,,w1,,cancelled by user\n"
                                     "d,0,0,cancelled,0,,,,,,,,,,,,cancelled by user\n");
}

TEST_F(SchedulerTest, StatusCountsBestAndEta) {
  auto scheduler = Open();
  SweepSubmission sweep = Sweep("s", {SleepJob("a"), SleepJob("b"), SleepJob("c"), SleepJob("d"), SleepJob("e")});
  scheduler->Submit(sweep);
  sweep.name = "low";
  sweep.maximize = false;
  sweep.metric_name = "loss";
  scheduler->Submit(sweep);
  const std::string w1 = scheduler->RegisterWorker({});
  const std::string w2 = scheduler->RegisterWorker({});
  const std::vector<double> best = {0.5, 0.7, 0.6};
  for (double value : best) {
    auto spec = scheduler->Lease(w1, {});
    ASSERT_TRUE(scheduler->ReportResult(w1, RefOf(*spec), Succeeded(value)).accepted);
  }
  now_ += 100;
  scheduler->Lease(w2, {});  // d leased; w1 not seen for 100 s, so one live worker
  SweepStatus status = scheduler->Status("s");
  EXPECT_EQ(status.total, 5);
  EXPECT_EQ(status.succeeded, 3);
  EXPECT_EQ(status.leased, 1);
  EXPECT_EQ(status.pending, 1);
  EXPECT_FALSE(status.done);
  EXPECT_EQ(status.best_dev, 0.7);
  EXPECT_EQ(status.best_job, "b");
  EXPECT_EQ(status.live_workers, 1);
  EXPECT_DOUBLE_EQ(status.eta_seconds, 2 * 10.0 / 1);
  EXPECT_DOUBLE_EQ(status.elapsed_seconds, 100.0);
  EXPECT_EQ(status.jobs[3].worker, w2);
  const SweepStatus brief = scheduler->Status("s", /*with_jobs=*/false);
  EXPECT_TRUE(brief.jobs.empty());
  EXPECT_EQ(brief.succeeded, 3);
  EXPECT_EQ(brief.best_job, "b");
  EXPECT_DOUBLE_EQ(brief.eta_seconds, status.eta_seconds);

  EXPECT_EQ(scheduler->Cancel("s", {"e"}), 1);
  for (const char* id : {"a", "b"}) {
    auto spec = scheduler->Lease(w1, {});
    ASSERT_EQ(spec->sweep, "low");
    ASSERT_EQ(spec->job_id, id);
    ASSERT_TRUE(scheduler->ReportResult(w1, RefOf(*spec), Succeeded(std::string(id) == "a" ? 0.9 : 0.3)).accepted);
  }
  status = scheduler->Status("low");
  EXPECT_EQ(status.best_dev, 0.3);  // minimize
  EXPECT_EQ(status.best_job, "b");
  EXPECT_EQ(status.live_workers, 2);
  EXPECT_EQ(status.metric_name, "loss");
  EXPECT_TRUE(HasText(ResultsCsvText("low"), "final_dev_loss,best_dev_loss,best_step,test_loss"));
}

TEST_F(SchedulerTest, RejectsBadSubmissions) {
  auto scheduler = Open();
  auto job = TrainJob("0.3", 0);

  SweepSubmission bad_id = Sweep("s", {job});
  bad_id.jobs[0].id = "0000000000000000";
  EXPECT_TRUE(HasText(ErrorOf([&] { scheduler->Submit(bad_id); }),
                      "job id 0000000000000000 does not match its settings (their id is " + job.id));
  EXPECT_TRUE(
      HasText(ErrorOf([&] { scheduler->Submit(Sweep("s", {job, job})); }), "job id " + job.id + " appears twice"));
  EXPECT_TRUE(HasText(ErrorOf([&] { scheduler->Submit(Sweep("a/b", {job})); }), "sweep name 'a/b' is not valid"));
  EXPECT_TRUE(HasText(ErrorOf([&] { scheduler->Submit(Sweep("..", {job})); }), "sweep name '..' is not valid"));
  EXPECT_TRUE(
      HasText(ErrorOf([&] { scheduler->Submit(Sweep("s", {SleepJob("../x")})); }), "job id '../x' is not valid"));
  EXPECT_TRUE(HasText(ErrorOf([&] { scheduler->Submit(Sweep("s", {SleepJob(".x")})); }), "job id '.x' is not valid"));
  SweepSubmission bad_kind = Sweep("s", {SleepJob("x")});
  bad_kind.jobs[0].kind = "dance";
  EXPECT_TRUE(HasText(ErrorOf([&] { scheduler->Submit(bad_kind); }), "unknown kind 'dance'"));
  EXPECT_TRUE(scheduler->SweepNames().empty());  // nothing stored

  scheduler->Submit(Sweep("s", {job}));
  SweepSubmission other_parameters = Sweep("s", {job});
  other_parameters.parameters = {"learning_rate", "init"};
  EXPECT_TRUE(HasText(ErrorOf([&] { scheduler->Submit(other_parameters); }), "exists with other swept parameters"));
  SweepSubmission other_output = Sweep("s", {job});
  other_output.output_dir = dir_.File("elsewhere");
  EXPECT_TRUE(HasText(ErrorOf([&] { scheduler->Submit(other_output); }), "exists with output directory"));
  SweepSubmission same_output = Sweep("s", {job});
  same_output.output_dir = OutputDir("s") + "/";
  EXPECT_EQ(scheduler->Submit(same_output).existing, 1);
  SweepSubmission shared_output = Sweep("t", {job});
  shared_output.output_dir = OutputDir("s");
  EXPECT_TRUE(HasText(ErrorOf([&] { scheduler->Submit(shared_output); }), "belongs to sweep s"));

  EXPECT_TRUE(HasText(ErrorOf([&] { scheduler->Status("t"); }), "unknown sweep 't' (known: s)"));
  EXPECT_TRUE(HasText(ErrorOf([&] { scheduler->Lease("w7", {}); }), "unknown worker 'w7'"));
}

TEST_F(SchedulerTest, RejectsResultFilesThatAreNotPlainNames) {
  auto scheduler = Open();
  scheduler->Submit(Sweep("s", {SleepJob("j")}));
  const std::string worker = scheduler->RegisterWorker({});
  auto spec = scheduler->Lease(worker, {});
  for (const std::string name : {"../escape", "sub/file", "..", ""}) {
    JobOutcome outcome = Succeeded(0.5);
    outcome.files = {{name, "x"}};
    const ReportAck ack = scheduler->ReportResult(worker, RefOf(*spec), outcome);
    EXPECT_FALSE(ack.accepted);
    EXPECT_TRUE(HasText(ack.reason, "is not a plain file name")) << name;
  }
  EXPECT_EQ(scheduler->Status("s").leased, 1);  // still the worker's to report properly
  JobOutcome running;
  running.state = JobState::kRunning;
  EXPECT_FALSE(scheduler->ReportResult(worker, RefOf(*spec), running).accepted);
  EXPECT_TRUE(HasText(scheduler->ReportResult(worker, {"s", "nope", 1}, Succeeded(0.5)).reason, "unknown job nope"));
  EXPECT_TRUE(HasText(scheduler->ReportResult(worker, {"x", "j", 1}, Succeeded(0.5)).reason, "unknown sweep 'x'"));
}

TEST_F(SchedulerTest, UnusableDatabaseIsAnErrorNamingTheFile) {
  fs::create_directories(state_dir());
  const std::string db = state_dir() + "/promptsweep.db";
  test::WriteFileBytes(db, std::string(4096, 'x'));
  const std::string message = ErrorOf([&] { Open(); });
  EXPECT_TRUE(HasText(message, db));
  EXPECT_TRUE(HasText(message, "move the file away"));

  fs::remove(db);
  Open().reset();
  {
    SqliteDb raw(db);
    raw.Exec("UPDATE meta SET value = 4 WHERE key = 'schema_version'");
  }
  EXPECT_TRUE(HasText(ErrorOf([&] { Open(); }), "state schema version 4, but this promptsweep reads version 3"));
}

// A state written before early termination (schema version 1) opens, gains
// the new columns and table, and keeps its sweeps, jobs and results.
TEST_F(SchedulerTest, AVersionOneStateIsMigrated) {
  const std::string db = state_dir() + "/promptsweep.db";
  std::string worker;
  {
    auto scheduler = Open();
    scheduler->Submit(Sweep("s", {SleepJob("j1"), SleepJob("j2")}));
    worker = scheduler->RegisterWorker({});
    auto lease = scheduler->Lease(worker, {});
    ASSERT_TRUE(scheduler->ReportResult(worker, RefOf(*lease), Succeeded(0.5)).accepted);
  }
  {
    SqliteDb raw(db);  // what version 1 had
    raw.Exec("ALTER TABLE sweeps DROP COLUMN early_terminate; ALTER TABLE jobs DROP COLUMN stop_reason; "
             "ALTER TABLE jobs DROP COLUMN stop_step; ALTER TABLE jobs DROP COLUMN stop_attempt; DROP TABLE rungs; "
             "DROP TABLE attempts; UPDATE meta SET value = 1 WHERE key = 'schema_version'");
  }
  auto scheduler = Open();
  const SweepStatus status = scheduler->Status("s");
  EXPECT_EQ(status.succeeded, 1);
  EXPECT_EQ(status.pending, 1);
  EXPECT_TRUE(scheduler->Lease(worker, {}));
  scheduler.reset();
  SqliteDb raw(db);
  EXPECT_EQ(raw.QueryInt("SELECT value FROM meta WHERE key = 'schema_version'"), 3);
  EXPECT_EQ(raw.QueryInt("SELECT count(*) FROM rungs"), 0);
  EXPECT_EQ(raw.QueryInt("SELECT count(*) FROM attempts"), 1);  // the lease after the migration
}

// A state from before the attempt log (version 2) gains the table; attempts
// leased before it have no start time, and their end is still recorded.
TEST_F(SchedulerTest, AVersionTwoStateGainsTheAttemptLog) {
  const std::string db = state_dir() + "/promptsweep.db";
  std::string worker;
  std::optional<JobSpec> held;
  {
    auto scheduler = Open();
    scheduler->Submit(Sweep("s", {SleepJob("j1"), SleepJob("j2")}));
    worker = scheduler->RegisterWorker({});
    held = scheduler->Lease(worker, {});
    ASSERT_TRUE(held);
  }
  {
    SqliteDb raw(db);
    raw.Exec("DROP TABLE attempts; UPDATE meta SET value = 2 WHERE key = 'schema_version'");
  }
  {  // a report reads version 2 as it is: no attempt log, nothing changed
    auto reader = SqliteStore::OpenForReading(db);
    EXPECT_EQ(reader->Load().jobs.size(), 2u);
    EXPECT_TRUE(reader->LoadAttempts("s").empty());
    SqliteDb raw(db);
    EXPECT_EQ(raw.QueryInt("SELECT value FROM meta WHERE key = 'schema_version'"), 2);
  }
  auto scheduler = Open();
  ASSERT_TRUE(scheduler->ReportResult(worker, RefOf(*held), Succeeded(0.5)).accepted);
  auto second = scheduler->Lease(worker, {});
  ASSERT_TRUE(second);
  scheduler.reset();
  auto reader = SqliteStore::OpenForReading(db);
  const std::vector<StoredAttempt> log = reader->LoadAttempts("s");
  ASSERT_EQ(log.size(), 2u);
  EXPECT_EQ(log[0].job_id, held->job_id);
  EXPECT_TRUE(std::isnan(log[0].started));  // leased before the log existed
  EXPECT_EQ(log[0].outcome, "succeeded");
  ASSERT_TRUE(log[0].ended);
  EXPECT_EQ(log[1].job_id, second->job_id);
  EXPECT_EQ(log[1].worker, worker);
  EXPECT_FALSE(log[1].ended);  // still held
  EXPECT_EQ(log[1].outcome, "");
}

// Reports read the state beside a running coordinator: no lock, no writes.
TEST_F(SchedulerTest, ReadingTheStateNeedsNoLockAndWritesNothing) {
  const std::string db = state_dir() + "/promptsweep.db";
  auto scheduler = Open();
  scheduler->Submit(Sweep("s", {SleepJob("j1")}));
  const std::string worker = scheduler->RegisterWorker({});
  auto lease = scheduler->Lease(worker, {});
  ASSERT_TRUE(lease);
  auto reader = SqliteStore::OpenForReading(db);  // while the scheduler holds the state directory
  const StoredState state = reader->Load();
  ASSERT_EQ(state.jobs.size(), 1u);
  EXPECT_EQ(state.jobs[0].durable.state, JobState::kLeased);
  ASSERT_EQ(reader->LoadAttempts("s").size(), 1u);
  EXPECT_TRUE(HasText(ErrorOf([&] { SqliteStore::OpenForReading(state_dir() + "/nope.db"); }),
                      "nope.db: no such state database"));
  ASSERT_TRUE(scheduler->ReportResult(worker, RefOf(*lease), Succeeded(0.5)).accepted);
  EXPECT_EQ(reader->LoadAttempts("s").at(0).outcome, "succeeded");  // sees later commits
}

TEST_F(SchedulerTest, DamagedRowsAreAnErrorNamingTheFileNotACheck) {
  const std::string db = state_dir() + "/promptsweep.db";
  {
    auto scheduler = Open();
    scheduler->Submit(Sweep("s", {SleepJob("j1")}));
  }
  {
    SqliteDb raw(db);
    raw.Exec("UPDATE jobs SET state = 'exploded' WHERE job_id = 'j1'");
  }
  std::string message = ErrorOf([&] { Open(); });
  EXPECT_TRUE(HasText(message, db + ": job j1 of sweep s has unknown state 'exploded'"));
  EXPECT_TRUE(HasText(message, "damaged or from another version"));
  EXPECT_TRUE(HasText(message, "move the file away"));
  {
    SqliteDb raw(db);
    raw.Exec("UPDATE jobs SET state = 'pending', settings = '{\"not\": \"pairs\"' WHERE job_id = 'j1'");
  }
  EXPECT_TRUE(HasText(ErrorOf([&] { Open(); }), db + ": job j1 of sweep s has settings that are not a JSON list"));
  {
    SqliteDb raw(db);
    raw.Exec("UPDATE jobs SET settings = '[]', sweep = 'gone' WHERE job_id = 'j1'");
  }
  EXPECT_TRUE(HasText(ErrorOf([&] { Open(); }), "job j1 of sweep gone has no such sweep in the sweeps table"));
  {
    SqliteDb raw(db);
    raw.Exec("UPDATE jobs SET sweep = 's'; UPDATE sweeps SET max_attempts = 0");
  }
  EXPECT_TRUE(HasText(ErrorOf([&] { Open(); }), db + ": sweep s has max_attempts 0 (out of range)"));
  {
    SqliteDb raw(db);
    raw.Exec("UPDATE sweeps SET max_attempts = 2; ALTER TABLE workers RENAME COLUMN pid TO process");
  }
  message = ErrorOf([&] { Open(); });
  EXPECT_TRUE(HasText(message, "table workers has no column named pid"));
  EXPECT_TRUE(HasText(message, "move the file away"));
}

TEST_F(SchedulerTest, UnreadableCheckpointStartsTheJobOver) {
  auto scheduler = Open();
  scheduler->Submit(Sweep("s", {SleepJob("j")}));
  const std::string worker = scheduler->RegisterWorker({});
  auto first = scheduler->Lease(worker, {});
  ASSERT_TRUE(scheduler->ReportCheckpoint(worker, RefOf(*first), "state", 7).accepted);
  fs::remove(OutputDir("s") + "/checkpoints/j.state");
  auto second = scheduler->Lease(worker, {});
  ASSERT_TRUE(second);
  EXPECT_EQ(second->attempt, 2);
  EXPECT_TRUE(second->checkpoint.empty());
  const SweepStatus status = scheduler->Status("s");
  EXPECT_FALSE(status.jobs[0].has_checkpoint);
  EXPECT_TRUE(HasText(status.jobs[0].message, "checkpoint unreadable ("));
  EXPECT_TRUE(HasText(status.jobs[0].message, "); started from scratch"));
  EXPECT_TRUE(scheduler->ReportResult(worker, RefOf(*second), Succeeded(0.5)).accepted);
}

// Reports from many threads: one results.csv row per job, in commit order
// (the rebuild from SQLite on reopen gives the same file), every adapter in place.
TEST_F(SchedulerTest, ConcurrentReportsAppendEachRowOnceInCommitOrder) {
  auto scheduler = Open();
  std::vector<SweepSubmission::Job> jobs;
  for (int i = 0; i < 120; ++i) jobs.push_back(SleepJob("j" + std::to_string(i)));
  scheduler->Submit(Sweep("s", jobs));
  std::vector<std::thread> threads;
  for (int t = 0; t < 6; ++t) {
    threads.emplace_back([&] {
      const std::string worker = scheduler->RegisterWorker({});
      while (auto spec = scheduler->Lease(worker, {})) {
        JobOutcome outcome = Succeeded(0.5);
        outcome.files = {{"adapter_config.json", spec->job_id}};
        EXPECT_TRUE(scheduler->ReportResult(worker, RefOf(*spec), outcome).accepted);
        EXPECT_FALSE(scheduler->ReportResult(worker, RefOf(*spec), outcome).accepted);  // the replay
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  const std::string results = ResultsCsvText("s");
  const std::string metrics = MetricsCsvText("s");
  EXPECT_EQ(std::count(results.begin(), results.end(), '\n'), 121);
  EXPECT_EQ(std::count(metrics.begin(), metrics.end(), '\n'), 1 + 2 * 120);
  for (const auto& job : jobs) {
    EXPECT_TRUE(HasText(results, "\n" + job.id + ",")) << job.id;
    EXPECT_EQ(ReadFileBytes(OutputDir("s") + "/adapters/" + job.id + "/adapter_config.json"), job.id);
  }
  EXPECT_EQ(scheduler->Status("s").succeeded, 120);
  scheduler.reset();
  scheduler = Open();
  EXPECT_EQ(ResultsCsvText("s"), results);
  EXPECT_EQ(MetricsCsvText("s"), metrics);
}

TEST_F(SchedulerTest, WaitForWorkWakesOnSubmitAndShutdown) {
  auto scheduler = Open();
  const auto start = std::chrono::steady_clock::now();
  scheduler->WaitForWork(start + std::chrono::milliseconds(20));  // times out
  EXPECT_GE(std::chrono::steady_clock::now() - start, std::chrono::milliseconds(20));

  std::thread submitter([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    scheduler->Submit(Sweep("s", {SleepJob("j")}));
  });
  scheduler->WaitForWork(std::chrono::steady_clock::now() + std::chrono::seconds(30));
  submitter.join();
  EXPECT_EQ(scheduler->Status("s").pending, 1);

  scheduler->WaitForWork(std::chrono::steady_clock::now() + std::chrono::seconds(30));  // pending: at once
  const std::string worker = scheduler->RegisterWorker({});
  scheduler->Lease(worker, {});
  EXPECT_FALSE(scheduler->shut_down());
  scheduler->Shutdown();
  EXPECT_TRUE(scheduler->shut_down());
  scheduler->WaitForWork(std::chrono::steady_clock::now() + std::chrono::seconds(30));  // shut down: at once
}

// Not a timed test: run by hand (--gtest_also_run_disabled_tests) to see
// what one lease + one result cost with SQLite writes.
TEST_F(SchedulerTest, DISABLED_TenThousandLeaseResultCycles) {
  auto scheduler = Open();
  std::vector<SweepSubmission::Job> jobs;
  for (int i = 0; i < 10000; ++i) jobs.push_back(SleepJob("j" + std::to_string(i)));
  auto t0 = std::chrono::steady_clock::now();
  scheduler->Submit(Sweep("bench", jobs));
  auto t1 = std::chrono::steady_clock::now();
  std::vector<std::string> workers;
  for (int i = 0; i < 100; ++i) workers.push_back(scheduler->RegisterWorker({}));
  JobOutcome outcome = Succeeded(0.5);
  int done = 0;
  for (int i = 0; done < 10000; ++i) {
    const std::string& worker = workers[static_cast<std::size_t>(i % 100)];
    auto spec = scheduler->Lease(worker, {});
    ASSERT_TRUE(spec);
    ASSERT_TRUE(scheduler->Heartbeat(worker, {RefOf(*spec)}).empty());
    ASSERT_TRUE(scheduler->ReportResult(worker, RefOf(*spec), outcome).accepted);
    ++done;
  }
  auto t2 = std::chrono::steady_clock::now();
  const double submit_s = std::chrono::duration<double>(t1 - t0).count();
  const double cycles_s = std::chrono::duration<double>(t2 - t1).count();
  std::printf("submit 10000 jobs: %.3f s; 10000 lease+heartbeat+result cycles: %.3f s (%.1f us per cycle)\n",
              submit_s, cycles_s, cycles_s / 10000 * 1e6);
  auto t4 = std::chrono::steady_clock::now();
  for (int i = 0; i < 10; ++i) scheduler->Status("bench");
  auto t5 = std::chrono::steady_clock::now();
  for (int i = 0; i < 10; ++i) scheduler->Status("bench", /*with_jobs=*/false);
  std::printf("Status of 10000 jobs: %.2f ms, without rows %.3f ms\n",
              std::chrono::duration<double>(t5 - t4).count() * 100,
              std::chrono::duration<double>(std::chrono::steady_clock::now() - t5).count() * 100);
  auto t3 = std::chrono::steady_clock::now();
  scheduler.reset();
  scheduler = Open();
  std::printf("reopen with 10000 finished jobs (rebuild CSVs): %.3f s\n",
              std::chrono::duration<double>(std::chrono::steady_clock::now() - t3).count());
  EXPECT_EQ(scheduler->Status("bench").succeeded, 10000);
}

}  // namespace
}  // namespace promptsweep
