#include "engine/train_pack.h"

#include <algorithm>
#include <exception>
#include <future>
#include <map>
#include <utility>

#include "common/error.h"
#include "engine/soft_prompt.h"

namespace promptsweep {

TrainPack::TrainPack(std::shared_ptr<const CausalLM> model) : model_(std::move(model)) {
  PS_CHECK(model_ != nullptr, "TrainPack needs a model");
}

int64_t TrainPack::Add(PromptTrainer* trainer, RunHooks hooks) {
  PS_CHECK(trainer != nullptr, "TrainPack::Add needs a trainer");
  Member member;
  member.slot = next_slot_++;
  member.trainer = trainer;
  member.hooks = std::move(hooks);
  trainer->BeginRun();
  members_.push_back(std::move(member));
  return members_.back().slot;
}

void TrainPack::ForwardBackward(const std::vector<Member*>& stepping, std::vector<double>& loss_sums,
                                std::vector<int64_t>& real_tokens) {
  const int64_t num_members = static_cast<int64_t>(stepping.size());
  std::vector<torch::Tensor> prompts;
  std::vector<int64_t> lengths;
  std::vector<double> step_tokens;  // each member's step target tokens: its loss's denominator
  std::size_t micro_batches = 0;
  for (Member* member : stepping) {
    prompts.push_back(member->trainer->prompt());
    lengths.push_back(member->trainer->prompt().size(0));
    step_tokens.push_back(static_cast<double>(member->trainer->plan().target_tokens));
    micro_batches = std::max(micro_batches, member->trainer->plan().micro_batches.size());
  }
  const torch::Tensor denominators = torch::tensor(step_tokens, torch::kFloat64).to(model_->device(), torch::kFloat32);
  // Micro-batch m of every member that has one: the members' rows in one
  // forward/backward. A member's gradient is its own loss's (the prompts are
  // separate leaves; rows only meet in the batch dimension).
  for (std::size_t m = 0; m < micro_batches; ++m) {
    std::vector<const Example*> rows;
    std::vector<int64_t> index;
    for (int64_t j = 0; j < num_members; ++j) {
      const auto& plan = stepping[static_cast<std::size_t>(j)]->trainer->plan();
      if (m >= plan.micro_batches.size()) continue;
      for (const Example* example : plan.micro_batches[m]) {
        rows.push_back(example);
        index.push_back(j);
        real_tokens[static_cast<std::size_t>(j)] +=
            static_cast<int64_t>(example->input_ids.size() + example->target_ids.size());
      }
    }
    if (rows.empty()) continue;
    const PromptBatch batch = MakePromptBatch(rows, lengths, index, Padding::kRight, model_->device());
    const torch::Tensor log_probs = TargetLogProbs(*model_, prompts, batch);  // [K] float32
    // Each member's summed target loss [P]; the objective is the sum of the
    // members' losses, each over its own step's target tokens.
    const torch::Tensor member_loss =
        -torch::zeros({num_members}, log_probs.options()).index_add(0, batch.target_prompts, log_probs);
    // Divided as PromptTrainer::Run divides a lone job's loss (float32 / its count).
    (member_loss / denominators).sum().backward();
    const torch::Tensor values = member_loss.detach().to(torch::kCPU, torch::kFloat64);
    const auto value = values.accessor<double, 1>();
    for (int64_t j = 0; j < num_members; ++j) loss_sums[static_cast<std::size_t>(j)] += value[j];
  }
}

void TrainPack::EvaluateDue(const std::vector<Member*>& due, std::vector<bool>& failed) {
  // Members evaluating the same dev set with the same options share one pass.
  std::map<std::pair<const TaskData*, bool>, std::vector<std::size_t>> groups;
  for (std::size_t i = 0; i < due.size(); ++i) {
    groups[{due[i]->trainer->dev(), due[i]->trainer->DevOptions().exact_match}].push_back(i);
  }
  for (const auto& [key, members] : groups) {
    std::vector<torch::Tensor> prompts;
    for (std::size_t i : members) prompts.push_back(due[i]->trainer->prompt().detach());
    try {
      PromptTrainer& first = *due[members.front()]->trainer;
      LocalCollective alone;
      const std::vector<EvalResult> results =
          EvaluatePrompts(*model_, first.tokenizer(), prompts, *key.first, first.DevOptions(), alone);
      for (std::size_t k = 0; k < members.size(); ++k) due[members[k]]->trainer->ApplyDev(results[k]);
    } catch (const std::exception& e) {
      for (std::size_t i : members) {
        due[i]->trainer->FailRun(e.what());
        failed[i] = true;
      }
    }
  }
}

std::vector<TrainPack::Finished> TrainPack::Step() {
  std::vector<Member*> stepping;
  std::vector<bool> done(members_.size(), false);
  for (std::size_t i = 0; i < members_.size(); ++i) {
    try {
      if (members_[i].trainer->BeginStep(members_[i].hooks)) {
        stepping.push_back(&members_[i]);
        continue;
      }
    } catch (const std::exception& e) {
      members_[i].trainer->FailRun(e.what());
    }
    done[i] = true;
  }
  auto index_of = [&](const Member* member) { return static_cast<std::size_t>(member - members_.data()); };

  if (!stepping.empty()) {
    std::vector<double> loss_sums(stepping.size(), 0.0);
    std::vector<int64_t> real_tokens(stepping.size(), 0);
    bool shared_ok = true;
    try {
      ForwardBackward(stepping, loss_sums, real_tokens);
    } catch (const std::exception& e) {
      // The shared pass failed (out of memory, a LibTorch error): every member of it.
      for (Member* member : stepping) {
        member->trainer->FailRun(e.what());
        done[index_of(member)] = true;
      }
      shared_ok = false;
    }
    if (shared_ok) {
      std::vector<Member*> due;
      for (std::size_t j = 0; j < stepping.size(); ++j) {
        Member* member = stepping[j];
        try {
          if (!member->trainer->EndStep(loss_sums[j], real_tokens[j])) {
            done[index_of(member)] = true;
            continue;
          }
          if (member->trainer->DevDue()) due.push_back(member);
        } catch (const std::exception& e) {
          member->trainer->FailRun(e.what());
          done[index_of(member)] = true;
        }
      }
      std::vector<bool> eval_failed(due.size(), false);
      if (!due.empty()) EvaluateDue(due, eval_failed);
      for (std::size_t k = 0; k < due.size(); ++k) {
        if (eval_failed[k]) done[index_of(due[k])] = true;
      }
      for (Member* member : stepping) {
        if (done[index_of(member)]) continue;
        try {
          member->trainer->AfterStep(member->hooks);
          // Done now: leave the pack at once, so the slot can be refilled.
          if (member->trainer->RunOver()) done[index_of(member)] = true;
        } catch (const std::exception& e) {
          member->trainer->FailRun(e.what());
          done[index_of(member)] = true;
        }
      }
    }
  }

  std::vector<Finished> finished;
  std::vector<Member> staying;
  for (std::size_t i = 0; i < members_.size(); ++i) {
    if (done[i]) {
      finished.push_back(Finished{members_[i].slot, members_[i].trainer->EndRun()});
    } else {
      staying.push_back(std::move(members_[i]));
    }
  }
  members_ = std::move(staying);
  return finished;
}

// --- PackRunner ---

struct PackRunner::Request {
  PromptTrainer* trainer = nullptr;
  RunHooks hooks;
  std::promise<TrainResult> result;
};

PackRunner::PackRunner(std::shared_ptr<const CausalLM> model) : model_(std::move(model)) {
  PS_CHECK(model_ != nullptr, "PackRunner needs a model");
  thread_ = std::thread([this] { Loop(); });
}

PackRunner::~PackRunner() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    shutdown_ = true;
  }
  work_.notify_all();
  thread_.join();
}

TrainResult PackRunner::Train(PromptTrainer& trainer, const RunHooks& hooks) {
  auto request = std::make_shared<Request>();
  request->trainer = &trainer;
  request->hooks = hooks;
  std::future<TrainResult> result = request->result.get_future();
  {
    std::lock_guard<std::mutex> lock(mutex_);
    PS_CHECK(!shutdown_, "PackRunner::Train after shutdown");
    incoming_.push_back(std::move(request));
    ++active_;
  }
  work_.notify_all();
  return result.get();
}

int64_t PackRunner::active() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return active_;
}

int64_t PackRunner::max_pack_size() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return max_pack_size_;
}

void PackRunner::Loop() {
  TrainPack pack(model_);
  std::map<int64_t, std::shared_ptr<Request>> running;  // by pack slot
  while (true) {
    {
      std::unique_lock<std::mutex> lock(mutex_);
      // Wait for work; with jobs running, take whoever arrived and go on.
      work_.wait(lock, [&] { return shutdown_ || !incoming_.empty() || !pack.empty(); });
      if (pack.empty() && incoming_.empty() && shutdown_) return;
      while (!incoming_.empty()) {
        std::shared_ptr<Request> request = std::move(incoming_.front());
        incoming_.pop_front();
        running.emplace(pack.Add(request->trainer, request->hooks), std::move(request));
      }
      max_pack_size_ = std::max(max_pack_size_, pack.size());
    }
    // The callers' threads wait in Train; nothing else touches their trainers.
    std::vector<TrainPack::Finished> finished = pack.Step();
    for (TrainPack::Finished& done : finished) {
      auto request = running.find(done.slot);
      PS_CHECK(request != running.end(), "pack slot ", done.slot, " finished twice");
      {
        std::lock_guard<std::mutex> lock(mutex_);
        --active_;
      }
      request->second->result.set_value(std::move(done.result));
      running.erase(request);
    }
  }
}

}  // namespace promptsweep
