// The seam between the trainer and data parallelism (as Horovod's controller
// keeps collectives behind an interface): a group of `size()` ranks trains one
// prompt; every rank holds the frozen model and the same prompt, computes on
// its shard of each batch, and the group sums gradients and metric sums.
//
// The protocol the trainer follows (so results do not depend on the rank count):
//   1. Every rank sees the same global order of examples (seeded shuffle) and
//      so the same global micro-batch of B examples.
//   2. Rank r takes the contiguous block ShardOf(B, r, R) of it (the first
//      B % R ranks get one example more). A rank may get zero examples.
//   3. Each rank sums the per-token losses of its shard (no mean), backprops
//      that sum divided by the global target-token count of the whole
//      optimizer step (known to every rank from step 1, no communication), so
//      the local gradients add up to the gradient of the global mean loss.
//   4. AllReduceSum of the prompt gradient, then of one tensor packing the
//      metric sums (loss sum, token count, ...), then every rank runs the same
//      optimizer update on the same numbers and stays in lockstep.
//   5. Evaluation shards examples the same way and all-reduces its sums.
// Only the floating-point summation order changes with R.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <vector>

#include <torch/torch.h>

namespace promptsweep {

// Collective operations over the ranks of one worker group. Every rank must
// call the same operations in the same order with tensors of the same shape
// and dtype. Thread safety: one object per rank, used by that rank's thread.
class Collective {
 public:
  virtual ~Collective() = default;

  virtual int rank() const = 0;
  virtual int size() const = 0;

  // Replaces `tensor` (contiguous, on any device) by the element-wise sum
  // over all ranks.
  virtual void AllReduceSum(torch::Tensor& tensor) = 0;
  // Replaces `tensor` on every rank by rank `root`'s.
  virtual void Broadcast(torch::Tensor& tensor, int root) = 0;
};

// A group of one: every collective is the identity.
class LocalCollective final : public Collective {
 public:
  int rank() const override { return 0; }
  int size() const override { return 1; }
  void AllReduceSum(torch::Tensor& tensor) override {}
  void Broadcast(torch::Tensor& tensor, int root) override {}
};

// R ranks as R threads of one process (tests of the multi-rank protocol
// without MPI). Create the group, hand Rank(r) to thread r. Thread-safe.
class InProcessGroup {
 public:
  explicit InProcessGroup(int size);
  ~InProcessGroup();
  InProcessGroup(const InProcessGroup&) = delete;
  InProcessGroup& operator=(const InProcessGroup&) = delete;

  Collective& Rank(int rank);
  int size() const { return size_; }

 private:
  class Member;
  friend class Member;

  // Every rank deposits `tensor`; the last to arrive combines them (sum, or
  // the root's value), then all copy the result back. Ranks contribute in
  // rank order, so the sum is the same whichever thread arrives last.
  void Exchange(int rank, torch::Tensor& tensor, int broadcast_root);

  const int size_;
  std::vector<std::unique_ptr<Member>> members_;
  std::mutex mutex_;
  std::condition_variable changed_;
  std::vector<torch::Tensor> inputs_;  // guarded by mutex_
  torch::Tensor result_;               // guarded by mutex_
  int arrived_ = 0;                    // guarded by mutex_
  int departed_ = 0;                   // guarded by mutex_
  bool draining_ = false;              // result ready, not yet read by all; guarded by mutex_
  int64_t generation_ = 0;             // guarded by mutex_
};

// Rank `rank`'s contiguous block [begin, end) of `n` items split over `size`
// ranks; the first n % size ranks get one more.
struct ShardRange {
  int64_t begin = 0;
  int64_t end = 0;
  int64_t Size() const { return end - begin; }
};
ShardRange ShardOf(int64_t n, int rank, int size);

}  // namespace promptsweep
