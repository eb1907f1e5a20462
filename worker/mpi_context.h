// MPI for worker groups, owned by one RAII context (as Horovod's
// mpi_context.h): `promptsweep worker` started by mpirun or srun with R > 1
// ranks initialises MPI here once, trains through MpiCollective (the
// Collective of worker/collective.h) and finalises when the context goes.
//
// Threading: MPI_THREAD_FUNNELED. Only the thread that created the context
// calls MPI (the worker's main thread, which also runs the trainer); gRPC,
// heartbeat and progress threads never do.
//
// mpi.h stays out of this header, so code that only drives a group (cli/)
// needs no MPI include path: the communicator lives in MpiCollective::Comm.
#pragma once

#include <memory>
#include <string>

#include <torch/torch.h>

#include "engine/collective.h"

namespace promptsweep {

// The Collective over one MPI communicator. Every rank must call the same
// operations in the same order (collective.h); MPI errors are returned, not
// fatal (MPI_ERRORS_RETURN), and thrown as promptsweep::Error naming the rank
// and MPI's message. Tensors: contiguous float32, float64, int64 or int32 on
// any device (a GPU tensor goes through a CPU copy: the MPI here is not
// CUDA-aware, and prompts and metric sums are small). Thread safety: the
// context's thread only.
class MpiCollective final : public Collective {
 public:
  ~MpiCollective() override;
  MpiCollective(const MpiCollective&) = delete;
  MpiCollective& operator=(const MpiCollective&) = delete;

  int rank() const override { return rank_; }
  int size() const override { return size_; }
  void AllReduceSum(torch::Tensor& tensor) override;
  void Broadcast(torch::Tensor& tensor, int root) override;

  // Replaces `bytes` on every rank by rank `root`'s (any length). Waiting
  // ranks poll and sleep instead of spinning, so a group idle between jobs
  // leaves its cores to others.
  void BroadcastBytes(std::string& bytes, int root);
  // AllReduceSum that gives up after `timeout_seconds` and returns false: a
  // rank that never arrives (dead, or stuck in another collective) must not
  // hang the caller. After false this communicator is unusable (the
  // operation stays pending); the caller ends the group (MpiContext::Abort).
  bool AllReduceSumWithin(torch::Tensor& tensor, double timeout_seconds);

 private:
  friend class MpiContext;
  struct Comm;  // the MPI_Comm
  MpiCollective(std::unique_ptr<Comm> comm, int rank, int size);

  std::unique_ptr<Comm> comm_;
  const int rank_;
  const int size_;
};

// Owns MPI for the process: MPI_Init_thread in the constructor, MPI_Finalize
// in the destructor; at most one per process. Holds two duplicates of
// MPI_COMM_WORLD: one for training (collective()) and one for the group's
// own messages (control()), so a rank waiting for the next job can never be
// matched with a rank still inside a training collective.
class MpiContext {
 public:
  // Whether this process is one of several ranks started by an MPI launcher
  // (mpirun/mpiexec of Open MPI, MPICH or Intel MPI, srun with an MPI
  // plugin), judged from the environment they set; false for a plain
  // command, which then never initialises MPI.
  static bool LaunchedUnderMpi();

  // Error when MPI cannot start, lacks MPI_THREAD_FUNNELED, or was started before.
  MpiContext();
  ~MpiContext();
  MpiContext(const MpiContext&) = delete;
  MpiContext& operator=(const MpiContext&) = delete;

  int rank() const { return collective_->rank(); }
  int size() const { return collective_->size(); }
  // Ranks on this node (MPI_COMM_TYPE_SHARED) and this rank's index among them.
  int local_rank() const { return local_rank_; }
  int local_size() const { return local_size_; }

  MpiCollective& collective() { return *collective_; }
  MpiCollective& control() { return *control_; }

  // Ends every rank of the group (MPI_Abort; with Open MPI's default error
  // manager mpirun then kills the other ranks) after printing `why` on stderr.
  [[noreturn]] void Abort(const std::string& why, int exit_code = 1);

 private:
  std::unique_ptr<MpiCollective> collective_;
  std::unique_ptr<MpiCollective> control_;
  int local_rank_ = 0;
  int local_size_ = 1;
};

}  // namespace promptsweep
