// The worker side of a sweep: registers with the coordinator, leases jobs
// one after another, runs each through an executor while a heartbeat thread
// keeps the lease and watches for shutdown, streams progress and reports the
// outcome. On shutdown (SIGTERM / SIGUSR2 in the CLI) the running job is
// preempted: its checkpoint goes to the coordinator, which hands it to the
// next worker. With `slots` K > 1 (worker --pack K) K such lease loops run
// at once, each on its own thread, so up to K jobs run together (the train
// executor packs compatible ones into one forward/backward per step). No
// LibTorch here: executors are injected (the train executor lives in
// worker/train_executor; the sleep executor below exercises the orchestrator).
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <exception>
#include <functional>
#include <mutex>
#include <string>
#include <vector>

#include "common/job.h"
#include "client/coordinator_client.h"

namespace promptsweep {

struct SweepWorkerOptions {
  ClientOptions client;
  WorkerInfo info;             // host, device, ranks, threads, memory
  // How many leases the worker holds at once (--pack K): K lease loops, so
  // the executor runs up to K jobs concurrently. 1: one job after another.
  int64_t slots = 1;
  // Exit after this many jobs (0: no limit), counted over all slots: never
  // more than this many leases in total.
  int64_t max_jobs = 0;
  // Exit when no slot ran or got a job for this long (0: never).
  double idle_exit_seconds = 0.0;
  int64_t lease_wait_ms = 2000;    // one long-poll; shutdown is noticed between polls
  // Progress goes out at most this often (plus every evaluation and the last step).
  double progress_interval_seconds = 0.5;
  // Test hook: receives each log line (no prefix) instead of the log
  // (common/log.h, component "worker <id>"). Called from several threads
  // (heartbeats, slots).
  std::function<void(const std::string&)> log;
};

// How the worker's Run ended.
struct SweepWorkerSummary {
  int64_t jobs = 0;         // attempts run to an outcome
  int64_t preempted = 0;    // handed back with a checkpoint
  std::string exit_reason;  // "shutdown", "max jobs", "idle"
};

// Thread safety: one Run at a time. With slots = K, `train` and
// `loaded_models` are called from up to K threads at once (K concurrent
// executor calls, which is what lets the packing train executor train them
// together); with slots = 1 from one thread, one job after another.
class SweepWorker {
 public:
  // `train` runs "train" jobs; `loaded_models` lists the ModelKeys it holds
  // (sent with every lease so the coordinator can prefer them).
  SweepWorker(SweepWorkerOptions options, JobExecutor train, std::function<std::vector<std::string>()> loaded_models);

  // Runs until `shutdown` becomes true or a limit is reached; on shutdown
  // every running job is preempted and its checkpoint handed back. Error when
  // the coordinator cannot be reached for reconnect_timeout or refuses the
  // worker (with several slots: after the other slots' jobs were preempted).
  SweepWorkerSummary Run(const std::atomic<bool>& shutdown);

 private:
  // One slot's lease loop until the worker is done; its error stops the others.
  void RunSlot(size_t slot, const std::atomic<bool>& shutdown);
  // The loop itself; returns why it ended.
  std::string LeaseLoop(size_t slot, const std::atomic<bool>& shutdown);
  // Why the slot must stop before its next lease ("" to go on); when it may
  // lease, reserves one lease of max_jobs. Under mutex_.
  std::string StopReasonLocked(const std::atomic<bool>& shutdown);
  void Register();
  // Registers again after the coordinator said it does not know `stale_id`,
  // unless another slot already did.
  void RegisterAgain(const std::string& stale_id);
  std::string worker_id() const;
  // Runs one leased job to its report.
  enum class Ended { kReported, kPreempted, kDropped };  // kDropped: revoked or not reported
  Ended RunJob(const JobSpec& job, const std::string& worker_id, const std::atomic<bool>& shutdown);
  enum class Level { kInfo, kWarn };
  void Log(Level level, const std::string& line) const;

  SweepWorkerOptions options_;
  JobExecutor train_;
  std::function<std::vector<std::string>()> loaded_models_;
  CoordinatorClient client_;  // thread-safe
  std::mutex register_mutex_;  // one re-registration at a time
  mutable std::mutex id_mutex_;
  std::string worker_id_;  // guarded by id_mutex_
  std::atomic<int64_t> heartbeat_interval_ms_{10000};
  // A slot failed (its error is in error_): the other slots preempt their
  // jobs and stop.
  std::atomic<bool> abort_{false};

  // The slots' shared state, guarded by mutex_.
  std::mutex mutex_;
  SweepWorkerSummary summary_;
  int64_t reserved_ = 0;                   // leases asked for or held, not yet counted in summary_
  int64_t running_ = 0;                    // jobs running now
  std::chrono::steady_clock::time_point last_job_;  // a job leased or ended (idle_exit)
  bool idle_ = false;                      // some slot found the worker idle: all stop
  std::vector<std::string> running_packs_; // per slot: PackKey of its job ("" when none)
  std::exception_ptr error_;               // the first slot error
};

// The "sleep" job kind: sleeps the job's `seconds` setting (default 1),
// stopping early when asked, and succeeds with nothing but its wall time.
JobOutcome RunSleepJob(const JobSpec& job, const JobContext& context);

}  // namespace promptsweep
