// `promptsweep worker` as a group of MPI ranks (mpirun -np R / srun -n R):
// one worker to the coordinator, R ranks training each job data-parallel.
//
// The group's protocol, on the context's control communicator (training
// collectives use the other one, see worker/mpi_context.h):
//   1. Rank 0 alone talks gRPC: it runs the SweepWorker (registered with
//      ranks = R); ranks > 0 wait for rank 0's next message.
//   2. For each train job rank 0 broadcasts the JobSpec (proto v1::Job,
//      checkpoint bytes included), then every rank runs it with the same
//      executor on the training communicator (worker/collective.h). Rank 0's
//      stop (preemption, lost lease) reaches the others through the trainer,
//      which agrees on stopping every step. Sleep jobs run on rank 0 alone.
//   3. After each job the ranks meet once more (an all-reduce with a
//      deadline). A rank that does not come (it left the job early on an
//      error of its own while the others wait inside a training collective)
//      ends the group: rank 0 reports the job as a retryable failure first
//      when it is the one that failed, then MPI_Abort ends every rank.
//   4. When rank 0's SweepWorker ends (shutdown, --max-jobs, --idle-exit, or
//      an error) it broadcasts "exit" and every rank returns.
// A rank that dies (kill -9, out of memory) takes the group with it: Open
// MPI's mpirun (and srun) kill the other ranks when one exits abnormally, so
// rank 0 stops heartbeating and the coordinator re-queues the job when its
// lease expires (a retryable failure, counted against --max-attempts).
#pragma once

#include <atomic>
#include <functional>

#include "common/job.h"
#include "worker/mpi_context.h"
#include "worker/sweep_worker.h"

namespace promptsweep {

// Thread safety: everything on the thread that owns `mpi`.
class WorkerGroup {
 public:
  // `run_job` runs a train job on this rank (a TrainJobExecutor over
  // mpi.collective()); it must not throw.
  WorkerGroup(MpiContext& mpi, JobExecutor run_job);

  // Rank 0: SweepWorker (options.info.ranks is set to the group's size) until
  // it ends; then the other ranks are told to exit. Rethrows its errors after that.
  // Error (after telling the ranks to exit) for options.slots > 1: a group trains one job at a time.
  SweepWorkerSummary RunLeader(SweepWorkerOptions options, std::function<std::vector<std::string>()> loaded_models,
                               const std::atomic<bool>& shutdown);
  // Ranks > 0: the jobs rank 0 sends, with `context` (device, threads), until "exit".
  void RunFollower(const JobContext& context);

 private:
  // Rank 0's JobExecutor: broadcast, run, meet.
  JobOutcome LeadJob(const JobSpec& job, const JobContext& context);
  // Step 3; false when some rank did not come in time.
  bool MeetAfterJob();
  void SendExit();

  MpiContext& mpi_;
  JobExecutor run_job_;
  std::atomic<bool> broken_{false};  // rank 0: ranks out of step, end after the report
};

}  // namespace promptsweep
