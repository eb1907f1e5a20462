#include "coordinator/job_table.h"

#include <memory>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "common/error.h"
#include "coordinator/fake_scheduler_store.h"
#include "coordinator/sweep_spec.h"
#include "test_utils.h"

namespace promptsweep {
namespace {

using test::ErrorOf;
using test::FakeSchedulerStore;
using test::HasText;

constexpr char kRoot[] = "/state/sweeps";

SweepSubmission Sweep(const std::string& name, const std::vector<std::string>& ids) {
  SweepSubmission sweep;
  sweep.name = name;
  sweep.metric_name = "accuracy";
  sweep.parameters = {"learning_rate"};
  for (const std::string& id : ids) {
    SweepSubmission::Job& job = sweep.jobs.emplace_back();
    job.id = id;
    job.kind = std::string(kSleepJob);
    job.settings = {{"seconds", "1"}};
    job.swept = {{"learning_rate", "0.1"}};
  }
  return sweep;
}

// A train job on `model` with training data `train`; its id is the hash of its settings.
SweepSubmission::Job TrainJob(const std::string& model, const std::string& train, const std::string& learning_rate) {
  SweepSubmission::Job job;
  job.kind = std::string(kTrainJob);
  job.settings = {{"model", model}, {"tokenizer", ""}, {"dtype", "float32"}, {"train", train},
                  {"learning_rate", learning_rate}};
  job.verbalizer = {{"ham", " software"}, {"spam", " money"}};
  job.id = JobId(JobSettings{job.settings, job.verbalizer});
  job.swept = {{"learning_rate", learning_rate}};
  return job;
}

std::string PackKeyOf(const SweepSubmission::Job& job) { return PackKey(job.settings, job.verbalizer); }

JobOutcome Succeeded() {
  JobOutcome outcome;
  outcome.state = JobState::kSucceeded;
  outcome.best_dev = 0.75;
  outcome.wall_seconds = 10;
  outcome.history = {{10, "dev", "accuracy", 0.75}};
  return outcome;
}

LeaseRef RefOf(const JobSpec& spec) { return {spec.sweep, spec.job_id, spec.attempt}; }

class JobTableTest : public ::testing::Test {
 protected:
  JobTableTest() : table_(std::make_unique<JobTable>(Options())) {}

  JobTableOptions Options(int64_t max_attempts = 3) {
    JobTableOptions options;
    options.default_output_root = kRoot;
    options.lease_timeout_seconds = 30;
    options.max_attempts = max_attempts;
    options.clock = [this] { return now_; };
    return options;
  }
  // What the scheduler does with every plan: the store first, then memory.
  void Commit(const Effects& effects) {
    store_.Commit(effects.writes);
    table_->Apply(effects);
  }
  void Submit(const SweepSubmission& sweep) { Commit(table_->PlanSubmit(sweep).effects); }
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
  JobState StateOf(const std::string& sweep, size_t index) const { return table_->Status(sweep, true).jobs[index].state; }

  double now_ = 100.0;
  FakeSchedulerStore store_;
  std::unique_ptr<JobTable> table_;
};

TEST_F(JobTableTest, SubmitPlansTheSweepItsJobsAndFreshFiles) {
  JobTable::Submission plan = table_->PlanSubmit(Sweep("s", {"a", "b"}));
  EXPECT_EQ(plan.result.added, 2);
  EXPECT_EQ(plan.new_output_dir, std::string(kRoot) + "/s");
  ASSERT_EQ(plan.effects.writes.sweeps.size(), 1u);
  EXPECT_EQ(plan.effects.writes.sweeps[0].seq, 1);
  EXPECT_EQ(plan.effects.writes.sweeps[0].max_attempts, 3);
  ASSERT_EQ(plan.effects.writes.jobs.size(), 2u);
  EXPECT_EQ(plan.effects.writes.jobs[1].seq, 2);
  ASSERT_EQ(plan.effects.results.size(), 1u);
  EXPECT_TRUE(plan.effects.results[0].new_sweep);
  EXPECT_TRUE(plan.effects.results[0].rows.empty());
  EXPECT_TRUE(table_->SweepNames().empty());  // nothing until Apply
  Commit(plan.effects);

  JobTable::Submission again = table_->PlanSubmit(Sweep("s", {"a", "b", "c"}));
  EXPECT_EQ(again.result.added, 1);
  EXPECT_EQ(again.result.existing, 2);
  EXPECT_TRUE(again.effects.writes.sweeps.empty());
  EXPECT_TRUE(again.effects.results.empty());
  EXPECT_TRUE(again.new_output_dir.empty());
  EXPECT_EQ(again.effects.writes.jobs.at(0).seq, 3);
  SweepSubmission other = Sweep("s", {"a"});
  other.metric_name = "loss";
  EXPECT_TRUE(HasText(ErrorOf([&] { table_->PlanSubmit(other); }), "exists with metric accuracy"));
  EXPECT_TRUE(HasText(ErrorOf([&] { JobTable::ValidateSubmission(Sweep("s", {"a", "a"})); }), "appears twice"));
}

TEST_F(JobTableTest, LeaseIsCommittedBeforeTheTableChanges) {
  Submit(Sweep("s", {"a"}));
  const std::string worker = Register();
  EXPECT_EQ(worker, "w1");
  JobTable::LeaseGrant grant = table_->PlanLease(worker, {});
  ASSERT_TRUE(grant.spec);
  EXPECT_EQ(grant.spec->attempt, 1);
  ASSERT_EQ(grant.effects.writes.updates.size(), 1u);
  const JobUpdate& update = grant.effects.writes.updates[0];
  EXPECT_EQ(update.job_id, "a");
  EXPECT_EQ(update.durable.state, JobState::kLeased);
  EXPECT_EQ(update.durable.attempt, 1);
  EXPECT_EQ(update.durable.worker, worker);
  EXPECT_EQ(grant.effects.renew.size(), 1u);
  EXPECT_TRUE(grant.effects.results.empty());
  EXPECT_TRUE(grant.checkpoint_path.empty());

  // A failed commit: the caller never applies, the job is still pending.
  store_.fail_next_commit = true;
  EXPECT_TRUE(HasText(ErrorOf([&] { Commit(grant.effects); }), "commit failed"));
  EXPECT_EQ(StateOf("s", 0), JobState::kPending);
  EXPECT_EQ(Lease(worker).attempt, 1);
  EXPECT_EQ(StateOf("s", 0), JobState::kLeased);
  EXPECT_FALSE(table_->PlanLease(worker, {}).spec);
  EXPECT_TRUE(HasText(ErrorOf([&] { table_->PlanLease("w9", {}); }), "unknown worker 'w9'"));
}

TEST_F(JobTableTest, ExpiryRequeuesThenFailsAfterMaxAttempts) {
  Submit(Sweep("s", {"a"}));
  const std::string worker = Register();
  const JobSpec first = Lease(worker);
  now_ += 30;
  EXPECT_EQ(table_->PlanExpiry().count, 0);  // not past the deadline yet
  now_ += 1;
  JobTable::Batch expired = table_->PlanExpiry();
  EXPECT_EQ(expired.count, 1);
  ASSERT_EQ(expired.effects.writes.updates.size(), 1u);
  EXPECT_EQ(expired.effects.writes.updates[0].durable.state, JobState::kPending);
  EXPECT_EQ(expired.effects.writes.updates[0].durable.failures, 1);
  EXPECT_TRUE(expired.effects.results.empty());  // not finished: no rows
  Commit(expired.effects);

  const JobSpec second = Lease(worker);
  EXPECT_EQ(second.attempt, 2);
  now_ += 31;
  Commit(table_->PlanExpiry().effects);
  Lease(worker);
  now_ += 31;
  JobTable::Batch last = table_->PlanExpiry();
  ASSERT_EQ(last.effects.writes.updates.size(), 1u);
  const JobDurable& failed = last.effects.writes.updates[0].durable;
  EXPECT_EQ(failed.state, JobState::kFailed);
  EXPECT_EQ(failed.failures, 3);
  EXPECT_EQ(failed.finish_seq, 1);
  EXPECT_TRUE(HasText(failed.message, "failed after 3 failed attempts (max_attempts 3)"));
  ASSERT_EQ(last.effects.results.size(), 1u);
  ASSERT_EQ(last.effects.results[0].rows.size(), 1u);
  EXPECT_EQ(last.effects.results[0].rows[0].result.status, "failed");
  EXPECT_EQ(last.effects.results[0].rows[0].result.attempts, 3);
  Commit(last.effects);
  EXPECT_FALSE(table_->PlanLease(worker, {}).spec);
  EXPECT_EQ(store_.FindJob("s", "a").durable.state, JobState::kFailed);
}

TEST_F(JobTableTest, StaleReportIsRejectedWithNoEffects) {
  Submit(Sweep("s", {"a"}));
  const std::string w1 = Register(), w2 = Register();
  const JobSpec first = Lease(w1);
  now_ += 31;
  Commit(table_->PlanExpiry().effects);
  const JobSpec second = Lease(w2);

  JobTable::Report late = table_->PlanResult(w1, RefOf(first), Succeeded());
  EXPECT_FALSE(late.ack.accepted);
  EXPECT_EQ(late.ack.reason, "job a attempt 1 is stale: current attempt is 2");
  EXPECT_TRUE(late.effects.writes.empty());
  EXPECT_TRUE(late.effects.results.empty());
  EXPECT_FALSE(late.stage);
  EXPECT_TRUE(HasText(table_->PlanResult(w1, RefOf(second), Succeeded()).ack.reason, "is leased to worker w2"));
  EXPECT_EQ(table_->Heartbeat(w1, {RefOf(first)}).size(), 1u);

  JobOutcome outcome = Succeeded();
  outcome.files = {{"adapter_config.json", "{}"}};
  JobTable::Report report = table_->PlanResult(w2, RefOf(second), outcome);
  ASSERT_TRUE(report.ack.accepted);
  ASSERT_TRUE(report.stage);
  EXPECT_EQ(report.stage->kind, FilesToStage::Kind::kAdapter);
  EXPECT_EQ(report.stage->target, std::string(kRoot) + "/s/adapters/a");
  ASSERT_EQ(report.effects.writes.metrics.size(), 1u);
  EXPECT_EQ(report.effects.writes.metrics[0].rows.size(), 1u);
  ASSERT_EQ(report.effects.results.size(), 1u);
  const FinishedJobRows& rows = report.effects.results[0].rows.at(0);
  EXPECT_EQ(rows.result.adapter, "adapters/a");
  EXPECT_EQ(rows.result.worker, w2);
  EXPECT_EQ(rows.metrics.size(), 1u);
  Commit(report.effects);
  // The replay: already finished, nothing to do.
  JobTable::Report replay = table_->PlanResult(w2, RefOf(second), outcome);
  EXPECT_EQ(replay.ack.reason, "job a is already succeeded");
  EXPECT_TRUE(replay.effects.writes.empty());
}

TEST_F(JobTableTest, CheckpointGoesToTheNextLeaseAndIsDroppedWhenTheJobFinishes) {
  table_ = std::make_unique<JobTable>(Options(/*max_attempts=*/1));
  Submit(Sweep("s", {"a"}));
  const std::string worker = Register();
  const JobSpec first = Lease(worker);
  JobTable::Report report = table_->PlanCheckpoint(worker, RefOf(first), "state bytes", 40);
  ASSERT_TRUE(report.ack.accepted);
  ASSERT_TRUE(report.stage);
  const std::string path = std::string(kRoot) + "/s/checkpoints/a.state";
  EXPECT_EQ(report.stage->kind, FilesToStage::Kind::kCheckpoint);
  EXPECT_EQ(report.stage->target, path);
  const JobDurable& pending = report.effects.writes.updates.at(0).durable;
  EXPECT_EQ(pending.state, JobState::kPending);
  EXPECT_EQ(pending.failures, 0);  // a preemption is not a failure
  EXPECT_EQ(pending.checkpoint_path, path);
  EXPECT_EQ(pending.checkpoint_step, 40);
  EXPECT_EQ(table_->PlanCheckpoint(worker, RefOf(first), "", 1).ack.reason, "job a: empty checkpoint");
  Commit(report.effects);
  EXPECT_EQ(table_->PlanCheckpoint(worker, RefOf(first), "x", 41).ack.accepted, false);

  JobTable::LeaseGrant grant = table_->PlanLease(worker, {});
  ASSERT_TRUE(grant.spec);
  EXPECT_EQ(grant.spec->attempt, 2);
  EXPECT_EQ(grant.checkpoint_path, path);
  Commit(grant.effects);
  // The file could not be read: the job starts over, for this attempt only.
  EXPECT_TRUE(table_->PlanCheckpointLost({"s", "a", 1}, path, "gone").writes.empty());
  Effects lost = table_->PlanCheckpointLost(RefOf(*grant.spec), path, "gone");
  ASSERT_EQ(lost.writes.updates.size(), 1u);
  EXPECT_TRUE(lost.writes.updates[0].durable.checkpoint_path.empty());
  EXPECT_EQ(lost.writes.updates[0].durable.message, "checkpoint unreadable (gone); started from scratch");

  // Not committed: when the job finishes, the checkpoint goes after its rows.
  JobTable::Report done = table_->PlanResult(worker, RefOf(*grant.spec), Succeeded());
  ASSERT_TRUE(done.ack.accepted);
  EXPECT_FALSE(done.stage);  // no files
  EXPECT_TRUE(done.effects.writes.updates.at(0).durable.checkpoint_path.empty());
  ASSERT_EQ(done.effects.results.size(), 1u);
  EXPECT_EQ(done.effects.results[0].obsolete_files, std::vector<std::string>{path});
}

TEST_F(JobTableTest, AttemptLogRecordsEachLeaseAndHowItEnded) {
  Submit(Sweep("s", {"a", "b", "c"}));
  const std::string w1 = Register(), w2 = Register();
  // a: preempted at step 40 on w1, then succeeds on w2.
  const JobSpec a1 = Lease(w1);
  const JobSpec b1 = Lease(w1);
  Commit(table_->PlanCheckpoint(w1, RefOf(a1), "state", 40).effects);
  // b: its lease expires on w1.
  JobProgress progress;
  progress.step = 7;
  Commit(table_->PlanProgress(w1, RefOf(b1), progress).effects);
  now_ += 31;
  Commit(table_->PlanExpiry().effects);
  // Pending in submission order: a (its checkpoint), b, c.
  const JobSpec a2 = Lease(w2);
  ASSERT_EQ(a2.job_id, "a");
  JobOutcome done = Succeeded();
  done.steps = 100;
  Commit(table_->PlanResult(w2, RefOf(a2), done).effects);
  const JobSpec b2 = Lease(w2);
  ASSERT_EQ(b2.job_id, "b");
  JobOutcome retry;
  retry.state = JobState::kFailed;
  retry.retryable = true;
  retry.message = "out of memory";
  Commit(table_->PlanResult(w2, RefOf(b2), retry).effects);
  const JobSpec b3 = Lease(w1);  // b again (older than c)
  ASSERT_EQ(b3.attempt, 3);
  Commit(table_->PlanCancel("s", {}).effects);  // b while held, c never leased

  const std::vector<StoredAttempt> log = store_.LoadAttempts("s");
  struct Expected {
    std::string job;
    int64_t attempt;
    std::string worker, outcome;
    int64_t start_step, end_step;
  };
  const std::vector<Expected> expected = {{"a", 1, w1, "preempted", 0, 40},
                                          {"b", 1, w1, "expired", 0, 7},
                                          {"a", 2, w2, "succeeded", 40, 100},
                                          {"b", 2, w2, "retry", 0, 0},
                                          {"b", 3, w1, "cancelled", 0, 0}};
  ASSERT_EQ(log.size(), expected.size());
  for (size_t i = 0; i < log.size(); ++i) {
    SCOPED_TRACE(i);
    EXPECT_EQ(log[i].job_id, expected[i].job);
    EXPECT_EQ(log[i].attempt, expected[i].attempt);
    EXPECT_EQ(log[i].worker, expected[i].worker);
    EXPECT_EQ(log[i].outcome, expected[i].outcome);
    EXPECT_EQ(log[i].start_step, expected[i].start_step);
    EXPECT_EQ(log[i].end_step, expected[i].end_step);
    ASSERT_TRUE(log[i].ended);
    EXPECT_GE(*log[i].ended, log[i].started);
    EXPECT_GT(log[i].started, 1.7e9);  // unix time, not the scheduler's clock
  }
}

TEST_F(JobTableTest, CancelFinishesUnfinishedJobsInOrder) {
  Submit(Sweep("s", {"a", "b", "c"}));
  const std::string worker = Register();
  const JobSpec a = Lease(worker);
  Commit(table_->PlanResult(worker, RefOf(a), Succeeded()).effects);
  const JobSpec b = Lease(worker);

  EXPECT_TRUE(HasText(ErrorOf([&] { table_->PlanCancel("s", {"zz"}); }), "unknown job id 'zz' in sweep s"));
  EXPECT_TRUE(HasText(ErrorOf([&] { table_->PlanCancel("t", {}); }), "unknown sweep 't' (known: s)"));
  EXPECT_EQ(table_->PlanCancel("s", {"a"}).count, 0);  // finished already
  JobTable::Batch cancel = table_->PlanCancel("s", {});
  EXPECT_EQ(cancel.count, 2);
  ASSERT_EQ(cancel.effects.writes.updates.size(), 2u);
  EXPECT_EQ(cancel.effects.writes.updates[0].job_id, "b");
  EXPECT_EQ(cancel.effects.writes.updates[0].durable.finish_seq, 2);
  EXPECT_EQ(cancel.effects.writes.updates[1].durable.finish_seq, 3);
  ASSERT_EQ(cancel.effects.results.size(), 1u);
  ASSERT_EQ(cancel.effects.results[0].rows.size(), 2u);
  EXPECT_EQ(cancel.effects.results[0].rows[1].result.job_id, "c");
  EXPECT_EQ(cancel.effects.results[0].rows[1].result.message, "cancelled by user");
  Commit(cancel.effects);
  EXPECT_EQ(table_->Heartbeat(worker, {RefOf(b)}).size(), 1u);
  EXPECT_EQ(table_->PlanResult(worker, RefOf(b), Succeeded()).ack.reason, "job b is already cancelled");
  EXPECT_TRUE(table_->Status("s", false).done);
}

TEST_F(JobTableTest, RunningPacksComeFirstThenLoadedModelsThenTheOldest) {
  const auto oldest = TrainJob("/models/a", "/d/other.jsonl", "0.1");
  const auto loaded = TrainJob("/models/b", "/d/t.jsonl", "0.2");
  const auto p1 = TrainJob("/models/a", "/d/t.jsonl", "0.3");
  const auto p2 = TrainJob("/models/a", "/d/t.jsonl", "0.4");
  ASSERT_EQ(PackKeyOf(p1), PackKeyOf(p2));
  ASSERT_NE(PackKeyOf(p1), PackKeyOf(oldest));
  SweepSubmission sweep = Sweep("s", {});
  sweep.jobs = {oldest, loaded, p1, p2};
  Submit(sweep);
  Submit(Sweep("later", {"z"}));  // a sleep job: no pack key
  const std::string worker = Register();
  const std::vector<std::string> models = {ModelKey(loaded.settings)};
  const std::vector<std::string> packs = {PackKeyOf(p1)};
  const auto lease = [&](const std::vector<std::string>& loaded_models, const std::vector<std::string>& running) {
    JobTable::LeaseGrant grant = table_->PlanLease(worker, loaded_models, running);
    EXPECT_TRUE(grant.spec);
    Commit(grant.effects);
    return grant.spec.value_or(JobSpec{});
  };

  // The running pack beats an older job of a loaded model and the oldest job.
  const JobSpec first = lease(models, packs);
  EXPECT_EQ(first.job_id, p1.id);
  // Back to pending (a checkpoint): indexed under its pack again, and older than p2.
  Commit(table_->PlanCheckpoint(worker, RefOf(first), "state", 5).effects);
  EXPECT_EQ(lease(models, packs).job_id, p1.id);
  EXPECT_EQ(lease(models, packs).job_id, p2.id);
  // The pack has no pending job left: the loaded model, then the oldest.
  EXPECT_EQ(lease(models, packs).job_id, loaded.id);
  // An empty key (a sleep job's) never matches.
  EXPECT_EQ(lease({}, {""}).job_id, oldest.id);

  // An expired lease is pending again and found by its pack, also after a reload.
  now_ += 31;
  Commit(table_->PlanExpiry().effects);
  JobTable reloaded(Options());
  reloaded.Load(store_.Load());
  JobTable::LeaseGrant grant = reloaded.PlanLease(worker, {}, packs);
  ASSERT_TRUE(grant.spec);
  EXPECT_EQ(grant.spec->job_id, p1.id);
  EXPECT_EQ(lease({}, {PackKeyOf(p2), PackKeyOf(oldest)}).job_id, oldest.id);  // the oldest of both packs
  EXPECT_EQ(lease({}, packs).job_id, p1.id);
}

TEST_F(JobTableTest, ReloadedTableKeepsStateAndGivesLeasesAFreshDeadline) {
  Submit(Sweep("s", {"a", "b"}));
  const std::string worker = Register();
  const JobSpec a = Lease(worker);
  Commit(table_->PlanResult(worker, RefOf(a), Succeeded()).effects);
  const JobSpec b = Lease(worker);

  now_ += 1000;
  JobTable reloaded(Options());
  reloaded.Load(store_.Load());
  EXPECT_TRUE(reloaded.KnownWorker(worker));
  EXPECT_EQ(reloaded.PlanExpiry().count, 0);
  EXPECT_TRUE(reloaded.Heartbeat(worker, {RefOf(b)}).empty());
  EXPECT_EQ(reloaded.PlanRegisterWorker({}).worker_id, "w2");
  const std::vector<FinishedJobRows> rows = reloaded.FinishedRows("s", store_.LoadMetrics("s"));
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0].result.job_id, "a");
  EXPECT_EQ(rows[0].metrics.size(), 1u);
  const SweepStatus status = reloaded.Status("s", true);
  EXPECT_EQ(status.succeeded, 1);
  EXPECT_EQ(status.leased, 1);
  EXPECT_EQ(status.live_workers, 1);  // seen again at its heartbeat
  EXPECT_DOUBLE_EQ(status.eta_seconds, 10.0);  // b, at a's wall time
}

}  // namespace
}  // namespace promptsweep
