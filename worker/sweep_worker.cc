#include "worker/sweep_worker.h"

#include <algorithm>
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
      client_(options_.client) {
  PS_CHECK(options_.slots >= 1, "SweepWorker needs at least one slot, got ", options_.slots);
}

std::string SweepWorker::worker_id() const {
  std::lock_guard<std::mutex> lock(id_mutex_);
  return worker_id_;
}

void SweepWorker::Log(Level level, const std::string& line) const {
  if (options_.log) {
    options_.log(line);
    return;
  }
  const std::string id = worker_id();
  spdlog::logger& logger = Logger(id.empty() ? std::string("worker") : StrCat("worker ", id));
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
  {
    std::lock_guard<std::mutex> lock(id_mutex_);
    worker_id_ = reply.worker_id;
  }
  heartbeat_interval_ms_ = reply.heartbeat_interval_ms;
  Log(Level::kInfo, StrCat("registered with ", client_.address(), " (", options_.info.ranks,
             options_.info.ranks == 1 ? " rank" : " ranks", ", heartbeat every ", reply.heartbeat_interval_ms, " ms",
             options_.slots > 1 ? StrCat(", ", options_.slots, " slots") : std::string(), ")"));
}

void SweepWorker::RegisterAgain(const std::string& stale_id) {
  std::lock_guard<std::mutex> lock(register_mutex_);
  if (worker_id() != stale_id) return;  // another slot registered meanwhile
  Log(Level::kWarn, "the coordinator does not know this worker; registering again");
  Register();
}

SweepWorkerSummary SweepWorker::Run(const std::atomic<bool>& shutdown) {
  client_.Handshake();
  Register();
  const auto slots = static_cast<size_t>(options_.slots);
  {
    std::lock_guard<std::mutex> lock(mutex_);
    summary_ = SweepWorkerSummary{};
    reserved_ = 0;
    running_ = 0;
    last_job_ = Clock::now();
    idle_ = false;
    running_packs_.assign(slots, "");
    error_ = nullptr;
  }
  abort_ = false;
  // Slot 0 is this thread: one slot is exactly the plain lease loop.
  std::vector<std::thread> others;
  for (size_t slot = 1; slot < slots; ++slot) others.emplace_back([this, slot, &shutdown] { RunSlot(slot, shutdown); });
  RunSlot(0, shutdown);
  for (std::thread& thread : others) thread.join();

  std::lock_guard<std::mutex> lock(mutex_);
  if (error_) std::rethrow_exception(error_);
  Log(Level::kInfo, StrCat("exiting (", summary_.exit_reason, ") after ", summary_.jobs, " jobs",
             summary_.preempted > 0 ? StrCat(", ", summary_.preempted, " preempted") : std::string()));
  return summary_;
}

void SweepWorker::RunSlot(size_t slot, const std::atomic<bool>& shutdown) {
  try {
    const std::string reason = LeaseLoop(slot, shutdown);
    std::lock_guard<std::mutex> lock(mutex_);
    summary_.exit_reason = reason;  // the last slot to stop ends the worker: its reason
  } catch (...) {
    std::lock_guard<std::mutex> lock(mutex_);
    if (!error_) error_ = std::current_exception();
    abort_ = true;  // the other slots hand their jobs back and stop
  }
}

std::string SweepWorker::StopReasonLocked(const std::atomic<bool>& shutdown) {
  if (shutdown.load()) return "shutdown";
  if (abort_.load()) return "error";
  // Leases other slots asked for or hold count: never more than max_jobs in all.
  if (options_.max_jobs > 0 && summary_.jobs + summary_.preempted + reserved_ >= options_.max_jobs) return "max jobs";
  if (idle_ || (options_.idle_exit_seconds > 0.0 && running_ == 0 &&
                SecondsSince(last_job_) >= options_.idle_exit_seconds)) {
    idle_ = true;  // the worker is idle, not just this slot: every slot stops
    return "idle";
  }
  ++reserved_;
  return "";
}

std::string SweepWorker::LeaseLoop(size_t slot, const std::atomic<bool>& shutdown) {
  while (true) {
    std::vector<std::string> packs;  // of the jobs the other slots run
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (std::string reason = StopReasonLocked(shutdown); !reason.empty()) return reason;
      for (const std::string& pack : running_packs_) {
        if (!pack.empty() && std::find(packs.begin(), packs.end(), pack) == packs.end()) packs.push_back(pack);
      }
    }
    // No job came: give back the lease StopReasonLocked reserved.
    const auto unreserve = [this] {
      std::lock_guard<std::mutex> lock(mutex_);
      --reserved_;
    };
    LeaseReply lease;
    const std::string id = worker_id();
    try {
      const std::vector<std::string> models = loaded_models_ ? loaded_models_() : std::vector<std::string>{};
      lease = client_.LeaseJob(id, models, options_.lease_wait_ms, packs);
    } catch (...) {
      unreserve();
      throw;
    }
    if (!lease.job) {
      unreserve();
      if (lease.unknown_worker) RegisterAgain(id);
      continue;
    }
    const std::string pack = lease.job->kind == kTrainJob ? PackKey(lease.job->settings, lease.job->verbalizer) : "";
    {
      std::lock_guard<std::mutex> lock(mutex_);
      ++running_;
      running_packs_[slot] = pack;
      last_job_ = Clock::now();
    }
    const Ended ended = RunJob(*lease.job, id, shutdown);
    std::lock_guard<std::mutex> lock(mutex_);
    --running_;
    running_packs_[slot].clear();
    last_job_ = Clock::now();
    --reserved_;  // and counted, in the same step, so max_jobs never sees it twice or not at all
    if (ended == Ended::kReported) ++summary_.jobs;
    if (ended == Ended::kPreempted) ++summary_.preempted;
  }
}

SweepWorker::Ended SweepWorker::RunJob(const JobSpec& job, const std::string& worker_id,
                                       const std::atomic<bool>& shutdown) {
  const LeaseRef lease{job.sweep, job.job_id, job.attempt};
  const std::string name = StrCat("job ", job.job_id, " attempt ", job.attempt);
  Log(Level::kInfo, StrCat("leased ", name, " (", job.kind, job.checkpoint.empty() ? "" : ", resuming", ")"));

  std::atomic<bool> stop{false};
  std::atomic<bool> preempt{false};
  std::atomic<bool> revoked{false};
  std::atomic<bool> terminate{false};  // early termination: end as stopped
  // A dev evaluation may have met a rung: beat soon after it, so a stop
  // decision reaches the job within a step or two, not a heartbeat interval.
  std::atomic<bool> beat_soon{false};
  const int64_t heartbeat_interval_ms = heartbeat_interval_ms_.load();
  if (job.stop_at_step > 0) {
    Log(Level::kInfo, StrCat(name, ": early termination decided before (", job.stop_reason, "); trains to step ",
                             job.stop_at_step, ", then stops"));
  }

  // The heartbeat thread renews the lease, turns a shutdown (or another
  // slot's error) into a preemption, and stops the job when the coordinator
  // revokes the lease.
  std::mutex mutex;
  std::condition_variable done_cv;
  bool done = false;
  std::thread heartbeat([&] {
    auto next_beat = Clock::now() + std::chrono::milliseconds(heartbeat_interval_ms);
    std::unique_lock<std::mutex> lock(mutex);
    auto soon = Clock::time_point::max();
    while (!done) {
      done_cv.wait_for(lock, std::chrono::milliseconds(50));
      if (done) break;
      if ((shutdown.load() || abort_.load()) && !stop.load()) {
        preempt = true;
        stop = true;
      }
      // The progress message goes first: the beat waits a moment for it.
      if (beat_soon.exchange(false)) soon = std::min(soon, Clock::now() + std::chrono::milliseconds(200));
      if (Clock::now() < next_beat && Clock::now() < soon) continue;
      soon = Clock::time_point::max();
      next_beat = Clock::now() + std::chrono::milliseconds(heartbeat_interval_ms);
      lock.unlock();
      try {
        const HeartbeatReply reply = client_.Heartbeat(worker_id, {lease});
        bool lost = reply.unknown_worker;
        for (const LeaseRef& r : reply.revoked) lost |= r.job_id == lease.job_id && r.attempt == lease.attempt;
        if (lost && !revoked.load()) {
          revoked = true;
          stop = true;
        }
        for (const StopOrder& order : reply.stop) {
          if (order.lease.job_id != lease.job_id || order.lease.attempt != lease.attempt) continue;
          if (!terminate.exchange(true)) {
            Log(Level::kInfo, StrCat(name, ": stopped by early termination: ", order.reason));
          }
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
  context.terminate = &terminate;
  context.device = options_.info.device;
  context.threads = options_.info.threads;
  context.progress = [&](const JobProgress& progress) {
    if (job.stop_at_step > 0 && progress.step >= job.stop_at_step) terminate = true;
    const bool due = SecondsSince(last_progress) >= options_.progress_interval_seconds ||
                     progress.dev_metric.has_value() || progress.step == progress.max_steps;
    if (!due) return;
    last_progress = Clock::now();
    stream->Write(worker_id, lease, progress);
    if (progress.dev_metric) {
      beat_soon = true;
      done_cv.notify_all();
    }
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
    return Ended::kDropped;
  }
  try {
    if (outcome.state == JobState::kCancelled && !outcome.checkpoint.empty()) {
      const ReportAck ack = client_.ReportCheckpoint(worker_id, lease, outcome.checkpoint, outcome.steps);
      Log(Level::kInfo, StrCat(name, ": preempted at step ", outcome.steps,
                 ack.accepted ? "; checkpoint handed to the coordinator" : StrCat("; checkpoint refused: ", ack.reason)));
      return Ended::kPreempted;
    }
    const ReportAck ack = client_.ReportResult(worker_id, lease, outcome);
    std::string line = StrCat(name, ": ", JobStateName(outcome.state));
    if (outcome.best_dev) line += StrCat(", best dev ", outcome.metric_name, " ", *outcome.best_dev);
    if (!outcome.message.empty() && outcome.state != JobState::kSucceeded) line += StrCat(" (", outcome.message, ")");
    line += StrCat(" in ", static_cast<int64_t>(outcome.wall_seconds * 10.0) / 10.0, " s");
    if (!ack.accepted) line += StrCat("; result refused: ", ack.reason);
    Log(ack.accepted ? Level::kInfo : Level::kWarn, line);
    return Ended::kReported;
  } catch (const Error& e) {
    // The coordinator stayed away past the reconnect timeout: the job's lease
    // runs out there and another worker runs it again.
    Log(Level::kWarn, StrCat(name, ": could not report: ", e.what()));
  }
  return Ended::kDropped;
}

}  // namespace promptsweep
