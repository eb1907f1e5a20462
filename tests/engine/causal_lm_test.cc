#include "engine/causal_lm.h"

#include <cctype>
#include <filesystem>
#include <functional>
#include <map>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <gtest/gtest.h>

#include "common/error.h"
#include "common/model_config.h"
#include "test_utils.h"
#include "engine/tensor_io.h"

namespace promptsweep {
namespace {

const std::string kModels = std::string(PROMPTSWEEP_TEST_DATA_DIR) + "/models";
const std::string kTinyLlama = "tiny-llama";          // GQA 4/2, tied, rope_theta 500000
const std::string kTinyGpt2 = "tiny-gpt2";            // Conv1D layout, learned positions
const std::string kTinyLlama3 = "tiny-llama3-scaled";  // llama3 rope scaling, untied, biases, head_dim 16, GQA 4/1

std::string ModelDir(const std::string& name) { return kModels + "/" + name; }

// Made by tests/data/models/reference_logits.py from transformers' math.
const std::map<std::string, torch::Tensor>& Reference() {
  static const auto* reference =
      new std::map<std::string, torch::Tensor>(LoadSafetensors(kModels + "/reference_logits.safetensors"));
  return *reference;
}

double MaxAbsDiff(const torch::Tensor& a, const torch::Tensor& b) {
  return (a.to(torch::kFloat64) - b.to(torch::kFloat64)).abs().max().item<double>();
}

// Logits [B, T, V] of the plain model (no prompt) for ids and a padding mask.
torch::Tensor Logits(const CausalLM& model, const torch::Tensor& ids, const torch::Tensor& mask) {
  torch::NoGradGuard no_grad;
  const torch::Tensor hidden = model.Forward(model.EmbedTokens(ids), mask, PositionIdsFromMask(mask));
  return model.LmHead(hidden);
}

class CausalLmTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { torch::set_num_threads(1); }

  static std::shared_ptr<const CausalLM> LoadModel(const std::string& name,
                                                   torch::ScalarType dtype = torch::kFloat32) {
    ModelLoadOptions options;
    options.dtype = dtype;
    return CausalLM::Load(ModelDir(name), options);
  }
};

// ---------------------------------------------------------------- logits ----

class CausalLmReferenceTest : public CausalLmTest, public ::testing::WithParamInterface<std::string> {};

TEST_P(CausalLmReferenceTest, LogitsEqualIndependentReference) {
  const std::string name = GetParam();
  const torch::Tensor ids = Reference().at(name + ".input_ids");
  const torch::Tensor mask = Reference().at(name + ".attention_mask");
  const torch::Tensor expected = Reference().at(name + ".logits");
  const torch::Tensor logits = Logits(*LoadModel(name), ids, mask);
  ASSERT_EQ(logits.sizes(), expected.sizes());
  EXPECT_EQ(logits.scalar_type(), torch::kFloat32);

  const torch::Tensor real = mask.to(torch::kBool);
  ASSERT_GT(expected.index({real}).abs().max().item<double>(), 0.5) << "reference logits too small to compare";
  EXPECT_LE(MaxAbsDiff(logits.index({real}), expected.index({real})), 1e-4) << name;
  EXPECT_TRUE(torch::isfinite(logits).all().item<bool>()) << "padding positions must stay finite";
}

// A padded row (right- or left-padded) gives the same logits at its real
// positions as the same tokens run alone without padding.
TEST_P(CausalLmReferenceTest, PaddingIsIgnored) {
  const std::string name = GetParam();
  const auto model = LoadModel(name);
  const torch::Tensor ids = Reference().at(name + ".input_ids");
  const torch::Tensor mask = Reference().at(name + ".attention_mask");
  const torch::Tensor padded_logits = Logits(*model, ids, mask);
  for (int64_t row : {1, 2}) {  // row 1 right-padded, row 2 left-padded
    const torch::Tensor real = mask[row].to(torch::kBool);
    ASSERT_LT(real.sum().item<int64_t>(), ids.size(1)) << "row " << row << " must be padded";
    const torch::Tensor alone_ids = ids[row].index({real}).unsqueeze(0);
    const torch::Tensor alone = Logits(*model, alone_ids, torch::ones_like(alone_ids))[0];
    EXPECT_LE(MaxAbsDiff(padded_logits[row].index({real}), alone), 1e-5) << name << " row " << row;
  }
}

INSTANTIATE_TEST_SUITE_P(CausalLmTinyModels, CausalLmReferenceTest, ::testing::Values(kTinyLlama, kTinyGpt2, kTinyLlama3),
                         [](const ::testing::TestParamInfo<std::string>& param_info) {
                           std::string test_name = param_info.param;
                           for (char& c : test_name) c = std::isalnum(static_cast<unsigned char>(c)) ? c : '_';
                           return test_name;
                         });

TEST_F(CausalLmTest, GptCheckpointWithoutPrefixAndWithMaskBuffersLoads) {
  test::ScopedTempDir dir;
  std::vector<std::pair<std::string, torch::Tensor>> renamed;
  for (const auto& [name, tensor] : LoadSafetensors(ModelDir(kTinyGpt2) + "/model.safetensors")) {
    renamed.emplace_back(name.substr(std::string("transformer.").size()), tensor);
  }
  // GPT2Model checkpoints of old transformers versions carry these buffers.
  for (int layer = 0; layer < 2; ++layer) {
    renamed.emplace_back(StrCat("h.", layer, ".attn.bias"), torch::ones({1, 1, 64, 64}).tril());
    renamed.emplace_back(StrCat("h.", layer, ".attn.masked_bias"), torch::tensor(-1e4));
  }
  SaveSafetensors(dir.File("model.safetensors"), renamed);
  std::filesystem::copy_file(ModelDir(kTinyGpt2) + "/config.json", dir.File("config.json"));

  const torch::Tensor ids = Reference().at(kTinyGpt2 + ".input_ids");
  const torch::Tensor mask = Reference().at(kTinyGpt2 + ".attention_mask");
  const auto model = CausalLM::Load(dir.path().string());
  EXPECT_EQ(MaxAbsDiff(Logits(*model, ids, mask), Logits(*LoadModel(kTinyGpt2), ids, mask)), 0.0);
  EXPECT_EQ(model->NamedWeights().front().first, "transformer.wte.weight");
}

TEST_F(CausalLmTest, Bfloat16LogitsCloseToFloat32) {
  for (const std::string& name : {kTinyLlama, kTinyGpt2, kTinyLlama3}) {
    const auto bf16 = LoadModel(name, torch::kBFloat16);
    EXPECT_EQ(bf16->dtype(), torch::kBFloat16);
    EXPECT_EQ(bf16->WordEmbeddings().scalar_type(), torch::kBFloat16);
    const torch::Tensor ids = Reference().at(name + ".input_ids");
    const torch::Tensor mask = Reference().at(name + ".attention_mask");
    const torch::Tensor real = mask.to(torch::kBool);
    const torch::Tensor low = Logits(*bf16, ids, mask).index({real});
    const torch::Tensor full = Logits(*LoadModel(name), ids, mask).index({real});
    EXPECT_EQ(low.scalar_type(), torch::kFloat32);
    // bfloat16 keeps 8 significant bits (relative step 2^-8 = 0.4%); through two
    // layers and the head the logits (magnitude ~5) move by a few hundredths.
    // 0.1 absolute is loose enough for that and far below the logits' spread.
    EXPECT_LE(MaxAbsDiff(low, full), 0.1) << name;
    EXPECT_GT(full.std().item<double>(), 1.0) << name;
  }
}

// ------------------------------------------------------------- gradients ----

// The loss of a prompt-tuning step: the prompt [N, H] (float64) before every
// row, a next-token loss on a few real positions of each row.
struct PromptProblem {
  torch::Tensor token_embeds;  // [B, T, H]
  torch::Tensor mask;          // [B, N + T]
  torch::Tensor positions;     // [B, N + T]
  torch::Tensor loss_rows;     // [K]
  torch::Tensor loss_columns;  // [K] into N + T
  torch::Tensor targets;       // [K]
};

torch::Tensor PromptLoss(const CausalLM& model, const PromptProblem& p, const torch::Tensor& prompt) {
  const int64_t batch = p.token_embeds.size(0);
  const torch::Tensor embeds = torch::cat({prompt.unsqueeze(0).expand({batch, -1, -1}), p.token_embeds}, 1);
  const torch::Tensor hidden = model.Forward(embeds, p.mask, p.positions);
  const torch::Tensor logits = model.LmHead(hidden.index({p.loss_rows, p.loss_columns}));
  return torch::nll_loss(torch::log_softmax(logits, -1), p.targets);
}

PromptProblem MakePromptProblem(const CausalLM& model, int64_t num_virtual) {
  // Row 0 right-padded (5 real of 7), row 1 left-padded (4 real): the prompt
  // comes first in both, as PEFT lays it out.
  const torch::Tensor ids = torch::tensor({{5, 17, 40, 2, 99, 0, 0}, {0, 0, 0, 7, 250, 31, 64}});
  const torch::Tensor token_mask = torch::tensor({{1, 1, 1, 1, 1, 0, 0}, {0, 0, 0, 1, 1, 1, 1}});
  PromptProblem p;
  p.token_embeds = model.EmbedTokens(ids);
  p.mask = torch::cat({torch::ones({2, num_virtual}, torch::kInt64), token_mask}, 1);
  p.positions = PositionIdsFromMask(p.mask);
  p.loss_rows = torch::tensor({0, 0, 1, 1});
  p.loss_columns = torch::tensor({num_virtual + 1, num_virtual + 3, num_virtual + 4, num_virtual + 5});
  p.targets = torch::tensor({40, 99, 31, 64});
  return p;
}

TEST_F(CausalLmTest, PromptGradientMatchesFiniteDifferences) {
  for (const std::string& name : {kTinyLlama, kTinyGpt2, kTinyLlama3}) {
    const auto model = LoadModel(name, torch::kFloat64);
    const int64_t num_virtual = 3;
    const PromptProblem problem = MakePromptProblem(*model, num_virtual);
    torch::Tensor prompt = model->WordEmbeddings().index({torch::tensor({11, 12, 13})}).clone().requires_grad_();
    PromptLoss(*model, problem, prompt).backward();
    const torch::Tensor analytic = prompt.grad().clone();

    torch::NoGradGuard no_grad;
    const double step = 1e-5;
    torch::Tensor numeric = torch::zeros_like(analytic);
    torch::Tensor probe = prompt.detach().clone();
    for (int64_t i = 0; i < probe.numel(); ++i) {
      const double original = probe.view(-1)[i].item<double>();
      probe.view(-1)[i] = original + step;
      const double plus = PromptLoss(*model, problem, probe).item<double>();
      probe.view(-1)[i] = original - step;
      const double minus = PromptLoss(*model, problem, probe).item<double>();
      probe.view(-1)[i] = original;
      numeric.view(-1)[i] = (plus - minus) / (2 * step);
    }
    const double scale = numeric.norm().item<double>();
    ASSERT_GT(scale, 1e-3) << name << ": the loss must depend on the prompt";
    EXPECT_LE((analytic - numeric).norm().item<double>() / scale, 1e-6) << name;
  }
}

// ------------------------------------------------------------- KV cache ----

TEST_F(CausalLmTest, KvCacheStepsEqualOneFullForward) {
  for (const std::string& name : {kTinyLlama, kTinyGpt2, kTinyLlama3}) {
    const auto model = LoadModel(name);
    const ModelConfig& config = model->config();
    // Row 0 unpadded, row 1 left-padded, as generation batches are.
    const torch::Tensor ids = torch::tensor({{3, 14, 15, 92, 65, 35, 89, 79}, {0, 0, 0, 26, 53, 58, 97, 93}});
    const torch::Tensor mask = torch::tensor({{1, 1, 1, 1, 1, 1, 1, 1}, {0, 0, 0, 1, 1, 1, 1, 1}});
    torch::NoGradGuard no_grad;
    const torch::Tensor embeds = model->EmbedTokens(ids);
    const torch::Tensor full = model->Forward(embeds, mask, PositionIdsFromMask(mask));

    KvCache cache;
    std::vector<torch::Tensor> pieces;
    int64_t done = 0;
    for (int64_t length : {4, 1, 1, 1, 1}) {  // a prefill, then one token at a time
      const torch::Tensor step_mask = mask.slice(1, 0, done + length);
      pieces.push_back(model->Forward(embeds.slice(1, done, done + length), step_mask,
                                      PositionIdsFromMask(step_mask, done), &cache));
      done += length;
      ASSERT_EQ(cache.Length(), done);
    }
    ASSERT_EQ(static_cast<int64_t>(cache.keys.size()), config.num_hidden_layers);
    EXPECT_EQ(cache.keys[0].sizes(),
              (std::vector<int64_t>{2, config.num_key_value_heads, done, config.head_dim}));
    const torch::Tensor real = mask.to(torch::kBool);
    EXPECT_LE(MaxAbsDiff(torch::cat(pieces, 1).index({real}), full.index({real})), 1e-5) << name;
  }
}

// --------------------------------------------------------------- frozen ----

TEST_F(CausalLmTest, WeightsStayFrozenAndGetNoGradients) {
  for (const std::string& name : {kTinyLlama, kTinyGpt2, kTinyLlama3}) {
    const auto model = LoadModel(name);
    std::vector<std::pair<std::string, torch::Tensor>> before;
    for (const auto& [weight_name, weight] : model->NamedWeights()) before.emplace_back(weight_name, weight.clone());

    const PromptProblem problem = MakePromptProblem(*model, 2);
    torch::Tensor prompt = torch::randn({2, model->config().hidden_size}).requires_grad_();
    PromptLoss(*model, problem, prompt).backward();
    ASSERT_TRUE(prompt.grad().defined());
    EXPECT_GT(prompt.grad().abs().sum().item<double>(), 0.0);

    for (const torch::Tensor& parameter : model->Parameters()) {
      EXPECT_FALSE(parameter.requires_grad()) << name;
      EXPECT_FALSE(parameter.grad().defined()) << name;
    }
    const auto after = model->NamedWeights();
    ASSERT_EQ(after.size(), before.size());
    for (size_t i = 0; i < after.size(); ++i) {
      EXPECT_EQ(after[i].first, before[i].first);
      EXPECT_FALSE(after[i].second.requires_grad()) << after[i].first;
      EXPECT_TRUE(torch::equal(after[i].second, before[i].second)) << after[i].first;
    }
  }
}

// NamedWeights gives back every checkpoint tensor under its own name and
// layout (fused q/k/v, gate/up and transposed Conv1D undone as views).
TEST_F(CausalLmTest, NamedWeightsReproduceTheCheckpoint) {
  for (const std::string& name : {kTinyLlama, kTinyGpt2, kTinyLlama3}) {
    const auto checkpoint = LoadSafetensors(ModelDir(name) + "/model.safetensors");
    const auto model = LoadModel(name);
    const auto named = model->NamedWeights();
    EXPECT_EQ(named.size(), checkpoint.size()) << name;
    int64_t count = 0;
    for (const auto& [weight_name, weight] : named) {
      ASSERT_EQ(checkpoint.count(weight_name), 1u) << name << ": " << weight_name;
      EXPECT_TRUE(torch::equal(weight, checkpoint.at(weight_name))) << weight_name;
      count += weight.numel();
    }
    EXPECT_EQ(model->NumParameters(), count);
  }
  // make_tiny_models.py prints these counts.
  EXPECT_EQ(LoadModel(kTinyLlama)->NumParameters(), 28832);
  EXPECT_EQ(LoadModel(kTinyGpt2)->NumParameters(), 37760);
}

TEST_F(CausalLmTest, ConstForwardIsThreadSafe) {
  const auto model = LoadModel(kTinyLlama);
  const torch::Tensor ids = Reference().at(kTinyLlama + ".input_ids");
  const torch::Tensor mask = Reference().at(kTinyLlama + ".attention_mask");
  const torch::Tensor expected = Logits(*model, ids, mask);
  std::vector<torch::Tensor> results(4);
  std::vector<std::thread> threads;
  for (auto& result : results) {
    threads.emplace_back([&] { result = Logits(*model, ids, mask); });
  }
  for (auto& thread : threads) thread.join();
  for (const auto& result : results) EXPECT_TRUE(torch::equal(result, expected));
}

// --------------------------------------------------------------- create ----

TEST_F(CausalLmTest, CreateRandomIsSeededAndTrainableOnRequest) {
  const ModelConfig config = ReadModelConfig(ModelDir(kTinyLlama3));
  const auto a = CausalLM::CreateRandom(config, /*seed=*/7);
  const auto b = CausalLM::CreateRandom(config, /*seed=*/7);
  const auto c = CausalLM::CreateRandom(config, /*seed=*/8);
  EXPECT_TRUE(torch::equal(a->WordEmbeddings(), b->WordEmbeddings()));
  EXPECT_FALSE(torch::equal(a->WordEmbeddings(), c->WordEmbeddings()));
  EXPECT_NEAR(a->WordEmbeddings().std().item<double>(), 0.02, 0.002);
  for (const auto& [name, weight] : a->NamedWeights()) {
    if (name.find("norm") != std::string::npos) {
      EXPECT_TRUE(torch::equal(weight, torch::ones_like(weight))) << name;
    }
    if (name.find(".bias") != std::string::npos) {
      EXPECT_TRUE(torch::equal(weight, torch::zeros_like(weight))) << name;
    }
  }
  EXPECT_EQ(a->NumParameters(), LoadModel(kTinyLlama3)->NumParameters());

  ModelLoadOptions options;
  options.trainable = true;
  const auto trainable = CausalLM::CreateRandom(config, 7, options);
  for (const torch::Tensor& parameter : trainable->Parameters()) EXPECT_TRUE(parameter.requires_grad());
  const PromptProblem problem = MakePromptProblem(*trainable, 1);
  PromptLoss(*trainable, problem, torch::zeros({1, config.hidden_size})).backward();
  for (const torch::Tensor& parameter : trainable->Parameters()) EXPECT_TRUE(parameter.grad().defined());
}

TEST_F(CausalLmTest, PositionIdsCountRealTokens) {
  const torch::Tensor mask = torch::tensor({{1, 1, 1, 0, 0}, {0, 0, 1, 1, 1}, {1, 1, 1, 1, 1}});
  EXPECT_TRUE(torch::equal(PositionIdsFromMask(mask),
                           torch::tensor({{0, 1, 2, 0, 0}, {0, 0, 0, 1, 2}, {0, 1, 2, 3, 4}})));
  EXPECT_TRUE(torch::equal(PositionIdsFromMask(mask, 3), torch::tensor({{0, 0}, {1, 2}, {3, 4}})));
  EXPECT_TRUE(torch::equal(PositionIdsFromMask(mask.to(torch::kBool), 4), torch::tensor({{0}, {2}, {4}})));
}

// --------------------------------------------------------------- errors ----

// Copies `name`'s checkpoint into `dir` after `edit` changed its tensors.
void WriteEditedCheckpoint(const std::string& name, const test::ScopedTempDir& dir,
                           const std::function<void(std::map<std::string, torch::Tensor>*)>& edit) {
  auto tensors = LoadSafetensors(ModelDir(name) + "/model.safetensors");
  edit(&tensors);
  SaveSafetensors(dir.File("model.safetensors"), {tensors.begin(), tensors.end()});
  std::filesystem::copy_file(ModelDir(name) + "/config.json", dir.File("config.json"));
}

// The Error loading `dir` throws; fails the test when it loads.
std::string LoadError(const std::string& dir, const ModelLoadOptions& options = {}) {
  return test::ErrorOf([&] { CausalLM::Load(dir, options); });
}

TEST_F(CausalLmTest, MissingTensorIsNamed) {
  test::ScopedTempDir dir;
  const std::string missing = "model.layers.1.self_attn.k_proj.weight";
  WriteEditedCheckpoint(kTinyLlama, dir, [&](auto* tensors) { ASSERT_EQ(tensors->erase(missing), 1u); });
  const std::string error = LoadError(dir.path().string());
  EXPECT_NE(error.find("'" + missing + "' is missing"), std::string::npos) << error;
  EXPECT_NE(error.find(dir.path().string()), std::string::npos) << error;
}

TEST_F(CausalLmTest, MissingUntiedLmHeadIsNamed) {
  test::ScopedTempDir dir;
  WriteEditedCheckpoint(kTinyLlama3, dir, [](auto* tensors) { tensors->erase("lm_head.weight"); });
  const std::string error = LoadError(dir.path().string());
  EXPECT_NE(error.find("'lm_head.weight' is missing"), std::string::npos) << error;
}

TEST_F(CausalLmTest, WrongShapeNamesTensorAndBothShapes) {
  test::ScopedTempDir dir;
  WriteEditedCheckpoint(kTinyGpt2, dir, [](auto* tensors) {
    // Stored as [out, in] (nn.Linear) instead of Conv1D's [in, out].
    (*tensors)["transformer.h.0.mlp.c_fc.weight"] = tensors->at("transformer.h.0.mlp.c_fc.weight").t().contiguous();
  });
  const std::string error = LoadError(dir.path().string());
  EXPECT_NE(error.find("'transformer.h.0.mlp.c_fc.weight' has shape [128, 32] but config.json implies [32, 128]"),
            std::string::npos)
      << error;
}

TEST_F(CausalLmTest, UnexpectedTensorIsRefused) {
  test::ScopedTempDir dir;
  WriteEditedCheckpoint(kTinyLlama, dir, [](auto* tensors) {
    (*tensors)["model.layers.2.input_layernorm.weight"] = torch::ones({32});  // a layer config.json lacks
  });
  const std::string error = LoadError(dir.path().string());
  EXPECT_NE(error.find("unexpected tensor 'model.layers.2.input_layernorm.weight'"), std::string::npos) << error;
}

TEST_F(CausalLmTest, KnownBuffersAndTiedHeadAreIgnored) {
  test::ScopedTempDir dir;
  WriteEditedCheckpoint(kTinyLlama, dir, [](auto* tensors) {
    (*tensors)["model.layers.0.self_attn.rotary_emb.inv_freq"] = torch::ones({4});
    (*tensors)["lm_head.weight"] = torch::zeros({320, 32});  // tied: transformers uses embed_tokens
  });
  const auto model = CausalLM::Load(dir.path().string());
  EXPECT_TRUE(torch::equal(model->WordEmbeddings(), LoadModel(kTinyLlama)->WordEmbeddings()));
  const torch::Tensor ids = Reference().at(kTinyLlama + ".input_ids");
  const torch::Tensor mask = Reference().at(kTinyLlama + ".attention_mask");
  EXPECT_EQ(MaxAbsDiff(Logits(*model, ids, mask), Logits(*LoadModel(kTinyLlama), ids, mask)), 0.0);
}

TEST_F(CausalLmTest, UnsupportedDTypeStringIsRefused) {
  EXPECT_EQ(ParseComputeDType("float32"), torch::kFloat32);
  EXPECT_EQ(ParseComputeDType("fp32"), torch::kFloat32);
  EXPECT_EQ(ParseComputeDType("bfloat16"), torch::kBFloat16);
  EXPECT_EQ(ParseComputeDType("bf16"), torch::kBFloat16);
  EXPECT_EQ(ParseComputeDType("float16"), torch::kFloat16);
  EXPECT_EQ(ParseComputeDType("fp16"), torch::kFloat16);
  for (const std::string bad : {"float8", "int8", "", "Float32", "auto"}) {
    {
      const std::string error = test::ErrorOf([&] { ParseComputeDType(bad); });
      EXPECT_TRUE(test::HasText(error, "unsupported compute dtype '" + bad + "'"));
      EXPECT_TRUE(test::HasText(error, "bfloat16"));
    }
  }
  ModelLoadOptions options;
  options.dtype = torch::kInt32;
  EXPECT_NE(LoadError(ModelDir(kTinyLlama), options).find("model dtype Int is not supported"), std::string::npos)
      << LoadError(ModelDir(kTinyLlama), options);
#if TORCH_VERSION_MAJOR < 2
  options.dtype = torch::kFloat16;  // LibTorch 1.x has no CPU half matmul: say so at load, not mid-forward
  EXPECT_NE(LoadError(ModelDir(kTinyLlama), options).find("float16 on the CPU is not supported"), std::string::npos)
      << LoadError(ModelDir(kTinyLlama), options);
#endif
}

TEST_F(CausalLmTest, BadDeviceStringIsRefused) {
  EXPECT_EQ(ParseDevice("cpu"), torch::Device(torch::kCPU));
  for (const std::string bad : {"gpu", "cuda:", "cuda:x", "cuda:-1", "cuda0", "CPU", "", "mps"}) {
    EXPECT_TRUE(test::HasText(test::ErrorOf([&] { ParseDevice(bad); }), "unsupported device '" + bad + "'"));
  }
  if (!torch::cuda::is_available()) {
    for (const std::string unavailable : {"cuda", "cuda:0", "cuda:3"}) {
      EXPECT_TRUE(test::HasText(test::ErrorOf([&] { ParseDevice(unavailable); }), "CUDA is not available"));
    }
  } else {
    EXPECT_EQ(ParseDevice("cuda"), torch::Device(torch::kCUDA, 0));
  }
}

}  // namespace
}  // namespace promptsweep
