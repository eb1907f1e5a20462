#include "engine/collective.h"

#include <algorithm>

#include "common/error.h"

namespace promptsweep {

class InProcessGroup::Member final : public Collective {
 public:
  Member(InProcessGroup& group, int rank) : group_(group), rank_(rank) {}
  int rank() const override { return rank_; }
  int size() const override { return group_.size(); }
  void AllReduceSum(torch::Tensor& tensor) override { group_.Exchange(rank_, tensor, /*broadcast_root=*/-1); }
  void Broadcast(torch::Tensor& tensor, int root) override {
    PS_CHECK(root >= 0 && root < group_.size(), "broadcast root ", root);
    group_.Exchange(rank_, tensor, root);
  }

 private:
  InProcessGroup& group_;
  const int rank_;
};

InProcessGroup::InProcessGroup(int size) : size_(size) {
  PS_CHECK(size >= 1, "group size ", size);
  for (int r = 0; r < size; ++r) members_.push_back(std::make_unique<Member>(*this, r));
  inputs_.resize(size);
}

InProcessGroup::~InProcessGroup() = default;

Collective& InProcessGroup::Rank(int rank) {
  PS_CHECK(rank >= 0 && rank < size_, "rank ", rank, " of ", size_);
  return *members_[rank];
}

void InProcessGroup::Exchange(int rank, torch::Tensor& tensor, int broadcast_root) {
  std::unique_lock<std::mutex> lock(mutex_);
  changed_.wait(lock, [&] { return !draining_; });  // the previous exchange is still being read
  inputs_[rank] = tensor;
  if (++arrived_ == size_) {
    if (broadcast_root >= 0) {
      result_ = inputs_[broadcast_root].clone();
    } else {
      result_ = inputs_[0].clone();
      for (int r = 1; r < size_; ++r) result_.add_(inputs_[r]);
    }
    draining_ = true;
    ++generation_;
    changed_.notify_all();
  } else {
    const int64_t generation = generation_;
    changed_.wait(lock, [&] { return generation_ != generation; });
  }
  tensor.copy_(result_);
  if (++departed_ == size_) {
    for (torch::Tensor& input : inputs_) input = torch::Tensor();
    result_ = torch::Tensor();
    arrived_ = 0;
    departed_ = 0;
    draining_ = false;
    changed_.notify_all();
  }
}

ShardRange ShardOf(int64_t n, int rank, int size) {
  PS_CHECK(size >= 1 && rank >= 0 && rank < size && n >= 0, "n=", n, " rank=", rank, " size=", size);
  const int64_t base = n / size;
  const int64_t extra = n % size;
  const int64_t begin = rank * base + std::min<int64_t>(rank, extra);
  return ShardRange{begin, begin + base + (rank < extra ? 1 : 0)};
}

}  // namespace promptsweep
