#include "worker/mpi_context.h"

#include <mpi.h>

#include <algorithm>
#include <chrono>
#include <climits>
#include <cstdlib>
#include <thread>
#include <utility>

#include "common/error.h"
#include "common/log.h"

namespace promptsweep {

struct MpiCollective::Comm {
  MPI_Comm comm = MPI_COMM_NULL;
};

namespace {

using Clock = std::chrono::steady_clock;

std::string MpiMessage(int code) {
  char text[MPI_MAX_ERROR_STRING];
  int length = 0;
  if (MPI_Error_string(code, text, &length) != MPI_SUCCESS) return StrCat("MPI error code ", code);
  return std::string(text, static_cast<std::size_t>(length));
}

// Error for a failed MPI call on `rank` of `size`.
void CheckMpi(int code, const char* call, int rank, int size) {
  if (code == MPI_SUCCESS) return;
  throw Error(StrCat(call, " failed on rank ", rank, " of ", size, ": ", MpiMessage(code)));
}

MPI_Datatype DataType(const torch::Tensor& tensor) {
  switch (tensor.scalar_type()) {
    case torch::kFloat32: return MPI_FLOAT;
    case torch::kFloat64: return MPI_DOUBLE;
    case torch::kInt64: return MPI_INT64_T;
    case torch::kInt32: return MPI_INT32_T;
    default: break;
  }
  throw Error(StrCat("MPI collectives take float32, float64, int64 or int32 tensors, not ", tensor.scalar_type()));
}

int Count(const torch::Tensor& tensor) {
  if (!tensor.is_contiguous()) throw Error("MPI collectives need a contiguous tensor");
  if (tensor.numel() > INT_MAX) throw Error(StrCat("MPI collective of ", tensor.numel(), " elements (at most ", INT_MAX, ")"));
  return static_cast<int>(tensor.numel());
}

// Runs `fn` on a CPU tensor holding `tensor`'s values and, unless it returns
// false, writes the result back. The MPI here is not CUDA-aware, so a GPU
// tensor is staged through a host copy (prompts and metric sums are small).
template <typename Fn>
bool OnHost(torch::Tensor& tensor, Fn fn) {
  if (tensor.device().is_cpu()) return fn(tensor);
  torch::Tensor host = tensor.to(torch::kCPU).contiguous();
  if (!fn(host)) return false;
  tensor.copy_(host);
  return true;
}

// Polls `request` until it completes (true) or `timeout_seconds` pass
// (false; negative: never), sleeping between polls (50 µs growing to 10 ms)
// so that a waiting rank does not hold a core.
bool WaitPolitely(MPI_Request& request, double timeout_seconds, int rank, int size) {
  const Clock::time_point start = Clock::now();
  auto pause = std::chrono::microseconds(50);
  while (true) {
    int done = 0;
    CheckMpi(MPI_Test(&request, &done, MPI_STATUS_IGNORE), "MPI_Test", rank, size);
    if (done != 0) return true;
    if (timeout_seconds >= 0 && std::chrono::duration<double>(Clock::now() - start).count() >= timeout_seconds) {
      return false;
    }
    std::this_thread::sleep_for(pause);
    pause = std::min<std::chrono::microseconds>(pause * 2, std::chrono::milliseconds(10));
  }
}

// The value of environment variable `name` as a whole number, or -1.
long EnvNumber(const char* name) {
  const char* value = std::getenv(name);
  if (value == nullptr || *value == '\0') return -1;
  char* end = nullptr;
  const long number = std::strtol(value, &end, 10);
  return *end == '\0' ? number : -1;
}

}  // namespace

// --- MpiCollective. ---

MpiCollective::MpiCollective(std::unique_ptr<Comm> comm, int rank, int size)
    : comm_(std::move(comm)), rank_(rank), size_(size) {}

MpiCollective::~MpiCollective() {
  int finalized = 0;
  MPI_Finalized(&finalized);
  if (finalized == 0 && comm_->comm != MPI_COMM_NULL) MPI_Comm_free(&comm_->comm);
}

void MpiCollective::AllReduceSum(torch::Tensor& tensor) {
  const MPI_Datatype type = DataType(tensor);
  const int count = Count(tensor);
  OnHost(tensor, [&](torch::Tensor& host) {
    CheckMpi(MPI_Allreduce(MPI_IN_PLACE, host.data_ptr(), count, type, MPI_SUM, comm_->comm), "MPI_Allreduce", rank_,
          size_);
    return true;
  });
}

void MpiCollective::Broadcast(torch::Tensor& tensor, int root) {
  PS_CHECK(root >= 0 && root < size_, "broadcast root ", root, " of ", size_);
  const MPI_Datatype type = DataType(tensor);
  const int count = Count(tensor);
  OnHost(tensor, [&](torch::Tensor& host) {
    CheckMpi(MPI_Bcast(host.data_ptr(), count, type, root, comm_->comm), "MPI_Bcast", rank_, size_);
    return true;
  });
}

bool MpiCollective::AllReduceSumWithin(torch::Tensor& tensor, double timeout_seconds) {
  const MPI_Datatype type = DataType(tensor);
  const int count = Count(tensor);
  return OnHost(tensor, [&](torch::Tensor& host) {
    MPI_Request request = MPI_REQUEST_NULL;
    CheckMpi(MPI_Iallreduce(MPI_IN_PLACE, host.data_ptr(), count, type, MPI_SUM, comm_->comm, &request),
          "MPI_Iallreduce", rank_, size_);
    return WaitPolitely(request, timeout_seconds, rank_, size_);
  });
}

void MpiCollective::BroadcastBytes(std::string& bytes, int root) {
  PS_CHECK(root >= 0 && root < size_, "broadcast root ", root, " of ", size_);
  int64_t length = rank_ == root ? static_cast<int64_t>(bytes.size()) : 0;
  MPI_Request request = MPI_REQUEST_NULL;
  CheckMpi(MPI_Ibcast(&length, 1, MPI_INT64_T, root, comm_->comm, &request), "MPI_Ibcast", rank_, size_);
  WaitPolitely(request, /*timeout_seconds=*/-1, rank_, size_);
  if (rank_ != root) bytes.assign(static_cast<std::size_t>(length), '\0');
  for (int64_t offset = 0; offset < length; offset += INT_MAX) {
    const int chunk = static_cast<int>(std::min<int64_t>(INT_MAX, length - offset));
    CheckMpi(MPI_Ibcast(bytes.data() + offset, chunk, MPI_BYTE, root, comm_->comm, &request), "MPI_Ibcast", rank_,
          size_);
    WaitPolitely(request, /*timeout_seconds=*/-1, rank_, size_);
  }
}

// --- MpiContext. ---

bool MpiContext::LaunchedUnderMpi() {
  // Launchers that say how many ranks they started: Open MPI's mpirun,
  // MPICH / Intel MPI (Hydra) and srun --mpi=pmi2 (PMI_SIZE), MVAPICH2.
  for (const char* name : {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "MV2_COMM_WORLD_SIZE"}) {
    const long size = EnvNumber(name);
    if (size >= 0) return size > 1;
  }
  // srun over several tasks with an MPI plugin (PMIx sets PMIX_RANK; others
  // show in SLURM_MPI_TYPE). Without one every task would be a world of one.
  const char* mpi_type = std::getenv("SLURM_MPI_TYPE");
  const bool plugin = std::getenv("PMIX_RANK") != nullptr || (mpi_type != nullptr && std::string(mpi_type) != "none");
  return plugin && EnvNumber("SLURM_STEP_NUM_TASKS") > 1;
}

MpiContext::MpiContext() {
  int initialized = 0;
  int finalized = 0;
  MPI_Initialized(&initialized);
  MPI_Finalized(&finalized);
  if (initialized != 0 || finalized != 0) throw Error("MPI was already started in this process (one MpiContext per process)");
  int provided = 0;
  const int code = MPI_Init_thread(nullptr, nullptr, MPI_THREAD_FUNNELED, &provided);
  if (code != MPI_SUCCESS) throw Error(StrCat("MPI_Init_thread failed: ", MpiMessage(code)));
  try {
    if (provided < MPI_THREAD_FUNNELED) {
      throw Error("this MPI library does not support MPI_THREAD_FUNNELED (the worker's gRPC threads need it)");
    }
    int rank = 0;
    int size = 1;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    // Errors come back as codes (thrown as Error) instead of ending the process.
    CheckMpi(MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN), "MPI_Comm_set_errhandler", rank, size);
    auto duplicate = [&] {
      auto comm = std::unique_ptr<MpiCollective::Comm>(new MpiCollective::Comm);
      CheckMpi(MPI_Comm_dup(MPI_COMM_WORLD, &comm->comm), "MPI_Comm_dup", rank, size);
      CheckMpi(MPI_Comm_set_errhandler(comm->comm, MPI_ERRORS_RETURN), "MPI_Comm_set_errhandler", rank, size);
      return std::unique_ptr<MpiCollective>(new MpiCollective(std::move(comm), rank, size));
    };
    collective_ = duplicate();
    control_ = duplicate();
    MPI_Comm node = MPI_COMM_NULL;
    CheckMpi(MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, rank, MPI_INFO_NULL, &node),
          "MPI_Comm_split_type", rank, size);
    MPI_Comm_rank(node, &local_rank_);
    MPI_Comm_size(node, &local_size_);
    MPI_Comm_free(&node);
  } catch (...) {
    collective_.reset();
    control_.reset();
    MPI_Finalize();
    throw;
  }
}

MpiContext::~MpiContext() {
  collective_.reset();
  control_.reset();
  MPI_Finalize();
}

void MpiContext::Abort(const std::string& why, int exit_code) {
  Logger("worker").critical("rank {} of {}: {}", rank(), size(), why);
  Logger("worker").flush();
  MPI_Abort(MPI_COMM_WORLD, exit_code);
  std::_Exit(exit_code);  // MPI_Abort does not return; should it, end this rank anyway
}

}  // namespace promptsweep
