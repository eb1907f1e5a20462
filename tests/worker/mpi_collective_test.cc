// MpiCollective and the trainer over real MPI. Runs as `mpirun -np 2
// mpi_tests` (ctest label "mpi"): every rank runs every test; rank 0 prints
// the usual output, other ranks print only their failures, and the exit code
// is non-zero on every rank when a test failed on any.
#include "worker/mpi_context.h"

#include <atomic>
#include <iostream>
#include <memory>
#include <string>

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "common/error.h"
#include "test_utils.h"
#include "engine/trainer.h"

namespace promptsweep {
namespace {

MpiContext* g_mpi = nullptr;  // main's

std::string DataPath(const std::string& relative) { return std::string(PROMPTSWEEP_TEST_DATA_DIR) + "/" + relative; }

class MpiCollectiveTest : public ::testing::Test {
 protected:
  static MpiCollective& collective() { return g_mpi->collective(); }
  static int rank() { return g_mpi->rank(); }
  static int size() { return g_mpi->size(); }
};

TEST_F(MpiCollectiveTest, IsTheWholeWorld) {
  EXPECT_GE(size(), 2) << "run under mpirun -np 2 (or more)";
  EXPECT_EQ(collective().size(), size());
  EXPECT_EQ(g_mpi->control().rank(), rank());
  EXPECT_GE(g_mpi->local_size(), 1);
  EXPECT_TRUE(MpiContext::LaunchedUnderMpi());
}

TEST_F(MpiCollectiveTest, AllReduceSumsEverySupportedDtype) {
  for (torch::ScalarType dtype : {torch::kFloat32, torch::kFloat64, torch::kInt64, torch::kInt32}) {
    SCOPED_TRACE(std::string(c10::toString(dtype)));
    torch::Tensor tensor = (torch::arange(6) + 10 * rank()).to(dtype);
    collective().AllReduceSum(tensor);
    // sum over r of (i + 10 r) = size * i + 10 * size (size - 1) / 2
    const torch::Tensor expected = (torch::arange(6) * size() + 5 * size() * (size() - 1)).to(dtype);
    EXPECT_TRUE(torch::equal(tensor, expected)) << tensor;
  }
}

TEST_F(MpiCollectiveTest, BroadcastTakesTheRootsValues) {
  const int root = size() - 1;
  torch::Tensor tensor = torch::full({2, 3}, static_cast<double>(rank() + 1), torch::kFloat32);
  collective().Broadcast(tensor, root);
  EXPECT_TRUE(torch::equal(tensor, torch::full({2, 3}, static_cast<double>(root + 1), torch::kFloat32)));
}

TEST_F(MpiCollectiveTest, BroadcastBytesSendsAnyLength) {
  std::string big(3 << 20, '\0');
  for (std::size_t i = 0; i < big.size(); ++i) big[i] = static_cast<char>(i * 7 + 1);
  for (const std::string& message : {std::string(), std::string("job\0with a zero", 15), big}) {
    std::string bytes = rank() == 0 ? message : std::string("stale");
    g_mpi->control().BroadcastBytes(bytes, /*root=*/0);
    EXPECT_EQ(bytes, message);
  }
}

TEST_F(MpiCollectiveTest, AllReduceWithinADeadlineCompletesWhenAllCome) {
  torch::Tensor present = torch::ones({1}, torch::kInt64);
  EXPECT_TRUE(g_mpi->control().AllReduceSumWithin(present, /*timeout_seconds=*/30));
  EXPECT_EQ(present.item<int64_t>(), size());
}

TEST_F(MpiCollectiveTest, UnsupportedTensorsAreErrorsNotCrashes) {
  torch::Tensor flags = torch::zeros({3}, torch::kBool);
  EXPECT_TRUE(test::HasText(test::ErrorOf([&] { collective().AllReduceSum(flags); }), "float32, float64, int64 or int32"));
  torch::Tensor strided = torch::zeros({4, 4}).t();
  EXPECT_TRUE(test::HasText(test::ErrorOf([&] { collective().Broadcast(strided, 0); }), "contiguous"));
}

// The trainer on the tiny Llama and the toy task (as tests/worker/trainer_test.cc).
class MpiTrainerTest : public MpiCollectiveTest {
 protected:
  static void SetUpTestSuite() {
    torch::set_num_threads(1);
    model_ = CausalLM::Load(DataPath("models/tiny-llama"));
    tokenizer_ = Tokenizer::FromFile(DataPath("models/tiny-llama/tokenizer.json"));
    const TaskSpec spec = test::ToyAnimalsSpec();
    train_ = std::make_unique<TaskData>(LoadTaskData(DataPath("tasks/toy_animals_train.jsonl"), spec, *tokenizer_));
    dev_ = std::make_unique<TaskData>(LoadTaskData(DataPath("tasks/toy_animals_dev.jsonl"), spec, *tokenizer_));
  }
  static void TearDownTestSuite() {
    train_.reset();
    dev_.reset();
    tokenizer_.reset();
    model_.reset();
  }

  static TrainerConfig Config() {
    TrainerConfig config;
    config.prompt.num_virtual_tokens = 4;
    config.optimizer.kind = OptimizerKind::kAdamW;
    config.learning_rate = 0.05;
    config.batch_size = 5;  // splits unevenly over 2 ranks
    config.gradient_accumulation_steps = 2;
    config.max_steps = 20;
    config.eval_every = 10;
    config.log_every = 5;
    config.seed = 11;
    return config;
  }
  static TrainerData Data() { return TrainerData{train_.get(), dev_.get(), nullptr}; }

  // `value` summed over the ranks.
  static int64_t SumOverRanks(int64_t value) {
    torch::Tensor sum = torch::tensor({value}, torch::kInt64);
    g_mpi->collective().AllReduceSum(sum);
    return sum.item<int64_t>();
  }

  static std::shared_ptr<const CausalLM> model_;
  static std::unique_ptr<Tokenizer> tokenizer_;
  static std::unique_ptr<TaskData> train_;
  static std::unique_ptr<TaskData> dev_;
};

std::shared_ptr<const CausalLM> MpiTrainerTest::model_;
std::unique_ptr<Tokenizer> MpiTrainerTest::tokenizer_;
std::unique_ptr<TaskData> MpiTrainerTest::train_;
std::unique_ptr<TaskData> MpiTrainerTest::dev_;

// R ranks with the same global batch and seed train the prompt one process
// trains (each rank computes that reference alone); only the summation order differs.
TEST_F(MpiTrainerTest, RanksTrainTheSamePromptAsOneProcess) {
  LocalCollective alone;
  PromptTrainer single(model_, *tokenizer_, Config(), Data(), alone);
  const torch::Tensor initial = single.prompt().detach().clone();
  const TrainResult expected = single.Run();
  ASSERT_EQ(expected.status, TrainStatus::kSucceeded) << expected.message;

  TrainerConfig config = Config();
  config.verify_every = 5;
  PromptTrainer trainer(model_, *tokenizer_, config, Data(), collective());
  const TrainResult result = trainer.Run();
  ASSERT_EQ(result.status, TrainStatus::kSucceeded) << result.message;
  EXPECT_EQ(result.steps, 20);
  EXPECT_LE((result.final_prompt - expected.final_prompt).abs().max().item<double>(), 1e-5);
  EXPECT_GT((expected.final_prompt - initial).abs().max().item<double>(), 1e-3);  // it did train
  ASSERT_TRUE(result.final_dev.has_value());
  EXPECT_EQ(result.final_dev->num_examples, expected.final_dev->num_examples);
  EXPECT_NEAR(result.final_dev->loss, expected.final_dev->loss, 1e-5);
  EXPECT_EQ(result.final_dev->accuracy, expected.final_dev->accuracy);
  // The ranks hold bit-identical prompts.
  torch::Tensor root = result.final_prompt.clone();
  collective().Broadcast(root, /*root=*/0);
  EXPECT_TRUE(torch::equal(root, result.final_prompt));
}

TEST_F(MpiTrainerTest, ChecksumCatchesARankWhosePromptDiffers) {
  TrainerConfig config = Config();
  config.max_steps = 10;
  config.verify_every = 3;
  PromptTrainer trainer(model_, *tokenizer_, config, Data(), collective());
  if (rank() == 1) {
    torch::NoGradGuard no_grad;
    torch::Tensor prompt = trainer.prompt();  // shares the trainer's storage
    prompt.add_(1e-3);
  }
  const TrainResult result = trainer.Run();
  EXPECT_EQ(result.status, TrainStatus::kFailed);
  EXPECT_EQ(result.steps, 3);
  EXPECT_TRUE(test::HasText(result.message, "rank 1's prompt differs from rank 0's at step 3 (checksum "));
}

TEST_F(MpiTrainerTest, StopOnRankZeroStopsEveryRankAtTheSameStep) {
  TrainerConfig config = Config();
  config.max_steps = 50;
  PromptTrainer trainer(model_, *tokenizer_, config, Data(), collective());
  std::atomic<bool> stop{false};
  RunHooks hooks;
  if (rank() == 0) {  // as a worker group: only rank 0 hears of preemption
    hooks.stop = &stop;
    hooks.progress = [&](const TrainProgress& progress) {
      if (progress.step == 4) stop = true;
    };
  }
  const TrainResult result = trainer.Run(hooks);
  EXPECT_EQ(result.status, TrainStatus::kCancelled);
  EXPECT_EQ(result.steps, 4);
  EXPECT_EQ(SumOverRanks(result.steps), 4 * size());
}

// Failures of ranks > 0 on stderr, prefixed with the rank.
class FailurePrinter : public ::testing::EmptyTestEventListener {
 public:
  explicit FailurePrinter(int rank) : rank_(rank) {}
  void OnTestPartResult(const ::testing::TestPartResult& result) override {
    if (!result.failed()) return;
    std::cerr << "[rank " << rank_ << "] " << (result.file_name() ? result.file_name() : "?") << ":"
              << result.line_number() << ": " << result.summary() << std::endl;
  }

 private:
  const int rank_;
};

}  // namespace
}  // namespace promptsweep

int main(int argc, char** argv) {
  promptsweep::MpiContext mpi;
  promptsweep::g_mpi = &mpi;
  ::testing::InitGoogleTest(&argc, argv);
  if (mpi.rank() != 0) {
    ::testing::TestEventListeners& listeners = ::testing::UnitTest::GetInstance()->listeners();
    delete listeners.Release(listeners.default_result_printer());
    listeners.Append(new promptsweep::FailurePrinter(mpi.rank()));
  }
  const int failed = RUN_ALL_TESTS() != 0 ? 1 : 0;
  torch::Tensor failed_ranks = torch::tensor({static_cast<int64_t>(failed)}, torch::kInt64);
  mpi.collective().AllReduceSum(failed_ranks);
  if (mpi.rank() == 0 && failed_ranks.item<int64_t>() > failed) {
    std::cerr << "tests failed on " << failed_ranks.item<int64_t>() - failed << " other rank(s) (see [rank N] lines)"
              << std::endl;
  }
  return failed_ranks.item<int64_t>() > 0 ? 1 : 0;
}
