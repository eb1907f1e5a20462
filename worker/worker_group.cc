#include "worker/worker_group.h"

#include <exception>
#include <string>
#include <utility>
#include <vector>

#include <torch/torch.h>

#include "common/error.h"
#include "client/proto_convert.h"

namespace promptsweep {
namespace {

// How long the ranks wait for each other after a job. They leave the job's
// last collective together, so only a rank stuck elsewhere (or gone) is late.
constexpr double kMeetAfterJobSeconds = 60.0;

// The first byte of a control message.
constexpr char kJobMessage = 'J';
constexpr char kExitMessage = 'X';

constexpr char kOutOfStep[] = "the ranks fell out of step in the last job (reported); ending the group";

}  // namespace

WorkerGroup::WorkerGroup(MpiContext& mpi, JobExecutor run_job) : mpi_(mpi), run_job_(std::move(run_job)) {}

SweepWorkerSummary WorkerGroup::RunLeader(SweepWorkerOptions options,
                                          std::function<std::vector<std::string>()> loaded_models,
                                          const std::atomic<bool>& shutdown) {
  PS_CHECK(mpi_.rank() == 0, "RunLeader on rank ", mpi_.rank());
  if (options.slots > 1) {
    // The ranks train one job together; K jobs would need K rounds of the protocol at once.
    SendExit();
    throw Error(StrCat("--pack ", options.slots, ": MPI worker groups train one job at a time; drop --pack or run "
                       "workers without mpirun"));
  }
  options.info.ranks = mpi_.size();
  // SweepWorker asks for the loaded models before every lease, so after the
  // report of a job that left the ranks out of step: the group ends there.
  auto models = [this, loaded_models = std::move(loaded_models)] {
    if (broken_.load()) mpi_.Abort(kOutOfStep);
    return loaded_models ? loaded_models() : std::vector<std::string>{};
  };
  SweepWorker worker(
      std::move(options), [this](const JobSpec& job, const JobContext& context) { return LeadJob(job, context); },
      models);
  SweepWorkerSummary summary;
  try {
    summary = worker.Run(shutdown);
  } catch (const std::exception&) {
    // Registration refused, coordinator gone: the other ranks still wait for a message.
    SendExit();
    throw;
  }
  if (broken_.load()) mpi_.Abort(kOutOfStep);
  SendExit();
  return summary;
}

void WorkerGroup::RunFollower(const JobContext& context) {
  try {
    while (true) {
      std::string bytes;
      mpi_.control().BroadcastBytes(bytes, /*root=*/0);
      if (!bytes.empty() && bytes[0] == kExitMessage) return;
      v1::Job message;
      if (bytes.empty() || bytes[0] != kJobMessage ||
          !message.ParseFromArray(bytes.data() + 1, static_cast<int>(bytes.size() - 1))) {
        mpi_.Abort("rank 0 sent a message this rank cannot read (do all ranks run the same promptsweep?)");
      }
      const JobSpec job = FromProto(message);
      // Rank 0 reports the outcome; this rank's matters only when the ranks part.
      const JobOutcome outcome = run_job_(job, context);
      if (!MeetAfterJob()) {
        mpi_.Abort(StrCat("job ", job.job_id, " attempt ", job.attempt, " ended here as ", JobStateName(outcome.state),
                          outcome.message.empty() ? "" : StrCat(" (", outcome.message, ")"),
                          ", but rank 0 did not finish it within ", kMeetAfterJobSeconds,
                          " s (it waits in a collective this rank left); ending the group: the coordinator "
                          "re-queues the job when its lease expires"));
      }
    }
  } catch (const std::exception& e) {
    mpi_.Abort(StrCat("MPI failed: ", e.what()));
  }
}

JobOutcome WorkerGroup::LeadJob(const JobSpec& job, const JobContext& context) {
  try {
    v1::Job message;
    ToProto(job, &message);
    std::string bytes(1, kJobMessage);
    bytes += message.SerializeAsString();
    mpi_.control().BroadcastBytes(bytes, /*root=*/0);
  } catch (const std::exception& e) {
    mpi_.Abort(StrCat("MPI failed: ", e.what()));
  }
  JobOutcome outcome = run_job_(job, context);
  if (!MeetAfterJob()) {
    // Rank 0 left the job while another rank waits inside a collective (or
    // is gone): report what rank 0 has, then the group ends (RunLeader).
    broken_ = true;
    if (outcome.state == JobState::kFailed) {
      outcome.retryable = true;
      outcome.message += StrCat(" (on rank 0 of ", mpi_.size(), "; the other ranks did not finish the job, so the "
                                "worker group ends)");
    }
  }
  return outcome;
}

bool WorkerGroup::MeetAfterJob() {
  try {
    torch::Tensor present = torch::ones({1}, torch::kInt64);
    return mpi_.control().AllReduceSumWithin(present, kMeetAfterJobSeconds);
  } catch (const std::exception& e) {
    mpi_.Abort(StrCat("MPI failed: ", e.what()));
  }
}

void WorkerGroup::SendExit() {
  try {
    std::string bytes(1, kExitMessage);
    mpi_.control().BroadcastBytes(bytes, /*root=*/0);
  } catch (const std::exception& e) {
    mpi_.Abort(StrCat("MPI failed: ", e.what()));
  }
}

}  // namespace promptsweep
