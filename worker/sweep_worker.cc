#include "worker/sweep_worker.h"

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <thread>
#include <utility>

#include "common/error.h"
#include "common/log.h"

namespace promptsweep {
namespace {

using Clock = std::chrono::steady_clock;

double SecondsSince(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

}  // namespace

JobOutcome RunSleepJob(const JobSpec& job, const JobContext& context) {
  const auto start = Clock::now();
  JobOutcome outcome;
  double seconds = 1.0;
  const std::string text = SettingValue(job.settings, "seconds", "1");
  try {
    std::size_t used = 0;
    seconds = std::stod(text, &used);
    if (used != text.size() || !(seconds >= 0.0)) throw std::invalid_argument(text);
  } catch (const std::exception&) {
    outcome.state = JobState::kFailed;
    outcome.message = StrCat("job ", job.job_id, ": seconds: expected a number >= 0, got '", text, "'");
    return outcome;
  }
  const auto end = start + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(seconds));
  while (Clock::now() < end) {
    if (context.stop != nullptr && context.stop->load()) {
      outcome.state = JobState::kCancelled;
      outcome.message = "stopped";
      // A sleep job resumes by sleeping again: its checkpoint is just a marker.
      if (context.preempt != nullptr && context.preempt->load()) outcome.checkpoint = "sleep";
      outcome.wall_seconds = SecondsSince(start);
      return outcome;
    }
    std::this_thread::sleep_for(std::min<Clock::duration>(end - Clock::now(), std::chrono::milliseconds(20)));
  }
  outcome.state = JobState::kSucceeded;
  outcome.wall_seconds = SecondsSince(start);
  return outcome;
}

SweepWorker::SweepWorker(SweepWorkerOptions options, JobExecutor train,
                         std::function<std::vector<std::string>()> loaded_models)
    : options_(std::move(options)),
      train_(std::move(train)),
      loaded_models_(std::move(loaded_models)),
      client_(options_.client) {}

void SweepWorker::Log(Level level, const std::string& line) const {
  if (options_.log) {
    options_.log(line);
    return;
  }
  spdlog::logger& logger = Logger(worker_id_.empty() ? std::string("worker") : StrCat("worker ", worker_id_));
  switch (level) {
    case Level::kInfo:
      logger.info("{}", line);
      break;
    case Level::kWarn:
      logger.warn("{}", line);
      break;
  }
}

void SweepWorker::Register() {
  const RegisterReply reply = client_.RegisterWorker(options_.info, loaded_models_ ? loaded_models_() : std::vector<std::string>{});
  worker_id_ = reply.worker_id;
  heartbeat_interval_ms_ = reply.heartbeat_interval_ms;
  Log(Level::kInfo, StrCat("registered with ", client_.address(), " (", options_.info.ranks,
             options_.info.ranks == 1 ? " rank" : " ranks", ", heartbeat every ", heartbeat_interval_ms_, " ms)"));
}

SweepWorkerSummary SweepWorker::Run(const std::atomic<bool>& shutdown) {
  client_.Handshake();
  Register();
  SweepWorkerSummary summary;
  auto idle_since = Clock::now();
  while (true) {
    if (shutdown.load()) {
      summary.exit_reason = "shutdown";
      break;
    }
    if (options_.max_jobs > 0 && summary.jobs + summary.preempted >= options_.max_jobs) {
      summary.exit_reason = "max jobs";
      break;
    }
    if (options_.idle_exit_seconds > 0.0 && SecondsSince(idle_since) >= options_.idle_exit_seconds) {
      summary.exit_reason = "idle";
      break;
    }
    const std::vector<std::string> models = loaded_models_ ? loaded_models_() : std::vector<std::string>{};
    const LeaseReply lease = client_.LeaseJob(worker_id_, models, options_.lease_wait_ms);
    if (lease.unknown_worker) {
      Log(Level::kWarn, "the coordinator does not know this worker; registering again");
      Register();
      continue;
    }
    if (!lease.job) continue;
    RunJob(*lease.job, shutdown, summary);
    idle_since = Clock::now();
  }
  Log(Level::kInfo, StrCat("exiting (", summary.exit_reason, ") after ", summary.jobs, " jobs",
             summary.preempted > 0 ? StrCat(", ", summary.preempted, " preempted") : std::string()));
  return summary;
}

void SweepWorker::RunJob(const JobSpec& job, const std::atomic<bool>& shutdown, SweepWorkerSummary& summary) {
  const LeaseRef lease{job.sweep, job.job_id, job.attempt};
  const std::string name = StrCat("job ", job.job_id, " attempt ", job.attempt);
  Log(Level::kInfo, StrCat("leased ", name, " (", job.kind, job.checkpoint.empty() ? "" : ", resuming", ")"));

  std::atomic<bool> stop{false};
  std::atomic<bool> preempt{false};
  std::atomic<bool> revoked{false};

  // The heartbeat thread renews the lease, turns a shutdown into a
  // preemption, and stops the job when the coordinator revokes the lease.
  std::mutex mutex;
  std::condition_variable done_cv;
  bool done = false;
  std::thread heartbeat([&] {
    auto next_beat = Clock::now() + std::chrono::milliseconds(heartbeat_interval_ms_);
    std::unique_lock<std::mutex> lock(mutex);
    while (!done) {
      done_cv.wait_for(lock, std::chrono::milliseconds(50));
      if (done) break;
      if (shutdown.load() && !stop.load()) {
        preempt = true;
        stop = true;
      }
      if (Clock::now() < next_beat) continue;
      next_beat = Clock::now() + std::chrono::milliseconds(heartbeat_interval_ms_);
      lock.unlock();
      try {
        const HeartbeatReply reply = client_.Heartbeat(worker_id_, {lease});
        bool lost = reply.unknown_worker;
        for (const LeaseRef& r : reply.revoked) lost |= r.job_id == lease.job_id && r.attempt == lease.attempt;
        if (lost && !revoked.load()) {
          revoked = true;
          stop = true;
        }
      } catch (const std::exception& e) {  // this thread must not throw; the next beat tries again
        Log(Level::kWarn, StrCat("heartbeat failed: ", e.what()));
      }
      lock.lock();
    }
  });

  std::unique_ptr<CoordinatorClient::ProgressStream> stream = client_.OpenProgressStream();
  auto last_progress = Clock::now() - std::chrono::hours(1);
  JobContext context;
  context.stop = &stop;
  context.preempt = &preempt;
  context.device = options_.info.device;
  context.threads = options_.info.threads;
  context.progress = [&](const JobProgress& progress) {
    const bool due = SecondsSince(last_progress) >= options_.progress_interval_seconds ||
                     progress.dev_metric.has_value() || progress.step == progress.max_steps;
    if (!due) return;
    last_progress = Clock::now();
    stream->Write(worker_id_, lease, progress);
  };

  JobOutcome outcome;
  try {
    if (job.kind == kSleepJob) {
      outcome = RunSleepJob(job, context);
    } else if (job.kind == kTrainJob) {
      outcome = train_(job, context);
    } else {
      outcome.state = JobState::kFailed;
      outcome.message = StrCat("unknown job kind '", job.kind, "' (this worker runs: train, sleep)");
    }
  } catch (const std::exception& e) {
    outcome = JobOutcome{};
    outcome.state = JobState::kFailed;
    outcome.retryable = true;
    outcome.message = StrCat("worker error: ", e.what());
  }
  stream.reset();
  {
    std::lock_guard<std::mutex> lock(mutex);
    done = true;
  }
  done_cv.notify_all();
  heartbeat.join();

  if (revoked.load()) {
    Log(Level::kWarn, StrCat(name, ": lease revoked by the coordinator (cancelled or expired); "
               "result dropped"));
    return;
  }
  try {
    if (outcome.state == JobState::kCancelled && !outcome.checkpoint.empty()) {
      const ReportAck ack = client_.ReportCheckpoint(worker_id_, lease, outcome.checkpoint, outcome.steps);
      ++summary.preempted;
      Log(Level::kInfo, StrCat(name, ": preempted at step ", outcome.steps,
                 ack.accepted ? "; checkpoint handed to the coordinator" : StrCat("; checkpoint refused: ", ack.reason)));
      return;
    }
    const ReportAck ack = client_.ReportResult(worker_id_, lease, outcome);
    ++summary.jobs;
    std::string line = StrCat(name, ": ", JobStateName(outcome.state));
    if (outcome.best_dev) line += StrCat(", best dev ", outcome.metric_name, " ", *outcome.best_dev);
    if (!outcome.message.empty() && outcome.state != JobState::kSucceeded) line += StrCat(" (", outcome.message, ")");
    line += StrCat(" in ", static_cast<int64_t>(outcome.wall_seconds * 10.0) / 10.0, " s");
    if (!ack.accepted) line += StrCat("; result refused: ", ack.reason);
    Log(ack.accepted ? Level::kInfo : Level::kWarn, line);
  } catch (const Error& e) {
    // The coordinator stayed away past the reconnect timeout: the job's lease
    // runs out there and another worker runs it again.
    Log(Level::kWarn, StrCat(name, ": could not report: ", e.what()));
  }
}

}  // namespace promptsweep
