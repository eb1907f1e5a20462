// An in-memory SchedulerStore for the job table's tests: keeps what was
// committed (so a table can be reloaded from it), records every commit, and
// fails the next one on request.
#pragma once

#include <algorithm>
#include <string>
#include <utility>
#include <vector>

#include "common/error.h"
#include "coordinator/scheduler_store.h"

namespace promptsweep::test {

class FakeSchedulerStore : public SchedulerStore {
 public:
  StoredState Load() override { return state_; }

  void Commit(const StoreWrites& writes) override {
    if (fail_next_commit) {
      fail_next_commit = false;
      throw Error("fake store: commit failed");
    }
    commits.push_back(writes);
    for (const StoredSweep& sweep : writes.sweeps) state_.sweeps.push_back(sweep);
    for (const StoredJob& job : writes.jobs) state_.jobs.push_back(job);
    for (const JobUpdate& update : writes.updates) FindJob(update.sweep, update.job_id).durable = update.durable;
    for (const JobMetrics& metrics : writes.metrics) {
      for (const MetricRow& row : metrics.rows) metrics_.push_back({metrics.sweep, {metrics.job_id, row}});
    }
    for (const StoredWorker& worker : writes.workers) state_.workers.push_back(worker);
    for (const StoredRung& rung : writes.rungs) {  // INSERT OR IGNORE, as SQLite
      const bool known = std::any_of(state_.rungs.begin(), state_.rungs.end(), [&](const StoredRung& r) {
        return r.sweep == rung.sweep && r.job_id == rung.job_id && r.iteration == rung.iteration;
      });
      if (!known) state_.rungs.push_back(rung);
    }
    for (const StoredAttempt& attempt : writes.attempts) {  // as SQLite: a start inserts, an end updates
      auto found = std::find_if(attempts_.begin(), attempts_.end(), [&](const StoredAttempt& a) {
        return a.sweep == attempt.sweep && a.job_id == attempt.job_id && a.attempt == attempt.attempt;
      });
      if (found == attempts_.end()) {
        attempts_.push_back(attempt);
      } else if (attempt.ended) {
        found->ended = attempt.ended;
        found->outcome = attempt.outcome;
        found->end_step = attempt.end_step;
      } else {
        *found = attempt;
      }
    }
  }

  std::vector<StoredAttempt> LoadAttempts(const std::string& sweep) override {
    std::vector<StoredAttempt> rows;
    for (const StoredAttempt& attempt : attempts_) {
      if (attempt.sweep == sweep) rows.push_back(attempt);
    }
    return rows;
  }

  std::vector<StoredMetric> LoadMetrics(const std::string& sweep) override {
    std::vector<StoredMetric> rows;
    for (const auto& [name, row] : metrics_) {
      if (name == sweep) rows.push_back(row);
    }
    return rows;
  }

  StoredJob& FindJob(const std::string& sweep, const std::string& job_id) {
    auto found = std::find_if(state_.jobs.begin(), state_.jobs.end(),
                              [&](const StoredJob& job) { return job.sweep == sweep && job.id == job_id; });
    if (found == state_.jobs.end()) throw Error("fake store: no job " + sweep + "/" + job_id);
    return *found;
  }

  std::vector<StoreWrites> commits;  // every successful commit, in order
  bool fail_next_commit = false;

 private:
  StoredState state_;
  std::vector<StoredAttempt> attempts_;
  std::vector<std::pair<std::string, StoredMetric>> metrics_;  // sweep, (job, row)
};

}  // namespace promptsweep::test
