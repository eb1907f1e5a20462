#include "engine/causal_lm.h"

#include <ATen/CPUGeneratorImpl.h>
#include <torch/version.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <set>
#include <sstream>

#include "common/error.h"
#include "engine/gpt2.h"
#include "engine/llama.h"
#include "engine/tensor_io.h"

// LibTorch >= 2.0 has a fused attention kernel (flash / memory-efficient on
// CUDA); older versions (Debian's 1.13) run the explicit softmax(QK^T)V.
#if TORCH_VERSION_MAJOR >= 2
#define PROMPTSWEEP_USE_SDPA 1
#else
#define PROMPTSWEEP_USE_SDPA 0
#endif

namespace promptsweep {
namespace {

std::string ShapeString(const std::vector<int64_t>& shape) {
  std::ostringstream out;
  out << "[";
  for (size_t i = 0; i < shape.size(); ++i) out << (i > 0 ? ", " : "") << shape[i];
  out << "]";
  return out.str();
}

bool IsFloatingDType(DType dtype) {
  return dtype == DType::kF64 || dtype == DType::kF32 || dtype == DType::kF16 || dtype == DType::kBF16;
}

// Weights read by Hugging Face name from a (possibly sharded) checkpoint,
// checked against the shape the config implies, cast and moved once.
class CheckpointWeights final : public internal::WeightSource {
 public:
  CheckpointWeights(const CheckpointReader& checkpoint, const ModelConfig& config, const ModelLoadOptions& options)
      : checkpoint_(checkpoint), config_(config), options_(options) {}

  torch::Tensor Get(const std::string& name, const std::vector<int64_t>& shape, internal::WeightInit) override {
    const TensorInfo* info = checkpoint_.Find(name);
    if (info == nullptr) {
      throw Error(StrCat(checkpoint_.path(), ": tensor '", name, "' is missing; ", config_.architecture_name,
                         " with this config.json needs it (is the checkpoint complete and from the same model?)"));
    }
    if (info->shape != shape) {
      throw Error(StrCat(checkpoint_.path(), ": tensor '", name, "' has shape ", ShapeString(info->shape),
                         " but config.json implies ", ShapeString(shape),
                         " (do config.json and the weights belong to the same model?)"));
    }
    if (!IsFloatingDType(info->dtype)) {
      throw Error(StrCat(checkpoint_.path(), ": tensor '", name, "' has dtype ", DTypeName(info->dtype),
                         "; model weights must be F32, F16, BF16 or F64"));
    }
    read_.insert(name);
    return ReadTensor(checkpoint_, name).to(options_.device, options_.dtype);
  }

  bool Has(const std::string& name) const override { return checkpoint_.Find(name) != nullptr; }

  void CheckAllRead(const std::function<bool(const std::string&)>& ignorable) const override {
    for (const std::string& name : checkpoint_.TensorNames()) {
      if (read_.count(name) == 0 && !ignorable(name)) {
        throw Error(StrCat(checkpoint_.path(), ": unexpected tensor '", name, "': ", config_.architecture_name,
                           " with this config.json (", config_.num_hidden_layers,
                           " layers) has no such weight; do config.json and the weights belong to the same "
                           "model?"));
      }
    }
  }

 private:
  const CheckpointReader& checkpoint_;
  const ModelConfig& config_;
  const ModelLoadOptions& options_;
  std::set<std::string> read_;
};

// transformers' _init_weights: normal(0, 0.02) matrices and embeddings, zero
// biases, unit norm weights. Drawn on the CPU from one seeded generator in a
// fixed order, so the model does not depend on the device.
class RandomWeights final : public internal::WeightSource {
 public:
  RandomWeights(uint64_t seed, const ModelLoadOptions& options)
      : generator_(at::detail::createCPUGenerator(seed)), options_(options) {}

  torch::Tensor Get(const std::string&, const std::vector<int64_t>& shape, internal::WeightInit init) override {
    torch::Tensor weight;
    switch (init) {
      case internal::WeightInit::kNormal:
        weight = torch::empty(shape, torch::kFloat32).normal_(/*mean=*/0.0, /*std=*/0.02, generator_);
        break;
      case internal::WeightInit::kOnes:
        weight = torch::ones(shape, torch::kFloat32);
        break;
      case internal::WeightInit::kZeros:
        weight = torch::zeros(shape, torch::kFloat32);
        break;
    }
    return weight.to(options_.device, options_.dtype);
  }

  bool Has(const std::string&) const override { return false; }
  void CheckAllRead(const std::function<bool(const std::string&)>&) const override {}

 private:
  at::Generator generator_;
  const ModelLoadOptions& options_;
};

void CheckLoadOptions(const ModelLoadOptions& options) {
  const torch::ScalarType dtype = options.dtype;
  if (dtype != torch::kFloat32 && dtype != torch::kBFloat16 && dtype != torch::kFloat16 &&
      dtype != torch::kFloat64) {
    throw Error(StrCat("model dtype ", c10::toString(dtype),
                       " is not supported; use float32, bfloat16 or float16 (float64 for tests)"));
  }
#if TORCH_VERSION_MAJOR < 2
  if (dtype == torch::kFloat16 && options.device.is_cpu()) {
    throw Error("float16 on the CPU is not supported by LibTorch " TORCH_VERSION
                " (no CPU half-precision matmul); use bfloat16 or float32 on the CPU, or a CUDA device");
  }
#endif
}

std::shared_ptr<CausalLM> Build(const ModelConfig& config, internal::WeightSource& weights,
                                const ModelLoadOptions& options) {
  CheckLoadOptions(options);
  torch::NoGradGuard no_grad;
  switch (config.architecture) {
    case Architecture::kLlama:
      return CreateLlama(config, weights, options);
    case Architecture::kGpt2:
      return CreateGpt2(config, weights, options);
  }
  PS_CHECK(false, "unknown architecture ", static_cast<int>(config.architecture));
  return nullptr;
}

}  // namespace

std::shared_ptr<const CausalLM> CausalLM::Load(const std::string& model_dir, const ModelLoadOptions& options) {
  const ModelConfig config = ReadModelConfig(model_dir);
  const std::unique_ptr<CheckpointReader> checkpoint = CheckpointReader::Open(model_dir);
  return Create(config, *checkpoint, options);
}

std::shared_ptr<CausalLM> CausalLM::Create(const ModelConfig& config, const CheckpointReader& checkpoint,
                                           const ModelLoadOptions& options) {
  CheckpointWeights weights(checkpoint, config, options);
  return Build(config, weights, options);
}

std::shared_ptr<CausalLM> CausalLM::CreateRandom(const ModelConfig& config, uint64_t seed,
                                                 const ModelLoadOptions& options) {
  RandomWeights weights(seed, options);
  return Build(config, weights, options);
}

int64_t CausalLM::NumParameters() const {
  int64_t count = 0;
  for (const auto& [name, weight] : NamedWeights()) count += weight.numel();
  return count;
}

torch::Tensor PositionIdsFromMask(const torch::Tensor& attention_mask, int64_t past_length) {
  PS_CHECK(attention_mask.dim() == 2, "attention_mask must be [B, S], got ", attention_mask.sizes());
  PS_CHECK(past_length >= 0 && past_length <= attention_mask.size(1), "past_length ", past_length,
           " outside [0, ", attention_mask.size(1), "]");
  const torch::Tensor real = attention_mask.ne(0).to(torch::kInt64);
  torch::Tensor positions = real.cumsum(/*dim=*/1) - 1;
  positions.masked_fill_(real.eq(0), 0);
  return positions.slice(/*dim=*/1, past_length).contiguous();
}

torch::ScalarType ParseComputeDType(const std::string& name) {
  if (name == "float32" || name == "fp32") return torch::kFloat32;
  if (name == "bfloat16" || name == "bf16") return torch::kBFloat16;
  if (name == "float16" || name == "fp16") return torch::kFloat16;
  throw Error(StrCat("unsupported compute dtype '", name,
                     "': use float32, bfloat16 or float16 (or fp32, bf16, fp16)"));
}

torch::Device ParseDevice(const std::string& name) {
  if (name == "cpu") return torch::kCPU;
  const std::string prefix = "cuda:";
  const std::string digits = name.substr(std::min(name.size(), prefix.size()));
  const bool indexed = name.compare(0, prefix.size(), prefix) == 0 && !digits.empty() && digits.size() <= 3 &&
                       digits.find_first_not_of("0123456789") == std::string::npos;
  if (name != "cuda" && !indexed) {
    throw Error(StrCat("unsupported device '", name, "': use cpu, cuda or cuda:N"));
  }
  if (!torch::cuda::is_available()) {
    throw Error(StrCat("device '", name, "': CUDA is not available (no GPU, or LibTorch built without CUDA); "
                       "use cpu"));
  }
  const int64_t index = indexed ? std::stoll(digits) : 0;
  const int64_t count = static_cast<int64_t>(torch::cuda::device_count());
  if (index >= count) {
    throw Error(StrCat("device '", name, "': there are only ", count, " CUDA devices, numbered from 0"));
  }
  return torch::Device(torch::kCUDA, static_cast<c10::DeviceIndex>(index));
}

namespace internal {

torch::Tensor MakeAttentionMask(const torch::Tensor& attention_mask, int64_t past_length, int64_t length,
                                torch::ScalarType dtype) {
  const torch::TensorOptions positions = torch::TensorOptions().dtype(torch::kInt64).device(attention_mask.device());
  const torch::Tensor query_position = torch::arange(past_length, past_length + length, positions).unsqueeze(1);
  const torch::Tensor key_position = torch::arange(attention_mask.size(1), positions).unsqueeze(0);
  const torch::Tensor key_is_real = attention_mask.ne(0).unsqueeze(1);  // [B, 1, S]
  const torch::Tensor allowed =
      key_is_real.logical_and(key_position <= query_position).logical_or(key_position == query_position);
#if PROMPTSWEEP_USE_SDPA
  return allowed.unsqueeze(1);  // [B, 1, T, S], true = attend
#else
  double lowest = 0;
  AT_DISPATCH_FLOATING_TYPES_AND2(torch::kHalf, torch::kBFloat16, dtype, "MakeAttentionMask", [&] {
    lowest = static_cast<double>(std::numeric_limits<scalar_t>::lowest());
  });
  torch::Tensor bias = torch::zeros(allowed.sizes(), torch::TensorOptions().dtype(dtype).device(allowed.device()));
  bias.masked_fill_(allowed.logical_not(), lowest);
  return bias.unsqueeze(1).unsqueeze(1);  // [B, 1, 1, T, S]: broadcasts over kv heads and their query groups
#endif
}

torch::Tensor Attention(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                        const torch::Tensor& mask, KvCache* cache, int64_t layer) {
  const int64_t batch = q.size(0);
  const int64_t length = q.size(1);
  const int64_t heads = q.size(2);
  const int64_t head_dim = q.size(3);
  const int64_t kv_heads = k.size(2);
  const int64_t groups = heads / kv_heads;
  torch::Tensor keys = k.transpose(1, 2).contiguous();  // [B, kv_heads, T, D]
  torch::Tensor values = v.transpose(1, 2).contiguous();
  if (cache != nullptr) {
    const size_t index = static_cast<size_t>(layer);
    PS_CHECK(cache->keys.size() == cache->values.size() && index <= cache->keys.size(), "KV cache has ",
             cache->keys.size(), " layers of keys, ", cache->values.size(), " of values; layer ", layer);
    if (index < cache->keys.size()) {
      keys = torch::cat({cache->keys[index], keys}, /*dim=*/2);
      values = torch::cat({cache->values[index], values}, /*dim=*/2);
      cache->keys[index] = keys;
      cache->values[index] = values;
    } else {
      cache->keys.push_back(keys);
      cache->values.push_back(values);
    }
  }
#if PROMPTSWEEP_USE_SDPA
  if (groups > 1) {  // transformers' repeat_kv: query head h reads kv head h / groups
    keys = keys.repeat_interleave(groups, /*dim=*/1);
    values = values.repeat_interleave(groups, /*dim=*/1);
  }
  const torch::Tensor attended = at::scaled_dot_product_attention(q.transpose(1, 2), keys, values, mask);
  return attended.transpose(1, 2).reshape({batch, length, heads * head_dim});
#else
  // Query head h = kv * groups + g reads kv head kv (repeat_kv's order). The
  // groups' queries are stacked along time, so each kv head serves one batched
  // GEMM and keys/values are never repeated.
  const int64_t total = keys.size(2);
  const double scale = 1.0 / std::sqrt(static_cast<double>(head_dim));
  const torch::Tensor queries = (q.view({batch, length, kv_heads, groups, head_dim}).permute({0, 2, 3, 1, 4}) * scale)
                                    .reshape({batch, kv_heads, groups * length, head_dim});
  const torch::Tensor scores =
      torch::matmul(queries, keys.transpose(2, 3)).view({batch, kv_heads, groups, length, total}) + mask;
  // Softmax in float32 for half types, as transformers' eager attention.
  const torch::ScalarType dtype = q.scalar_type();
  const torch::Tensor probs = torch::softmax(scores, /*dim=*/-1, torch::promote_types(dtype, torch::kFloat32)).to(dtype);
  const torch::Tensor attended = torch::matmul(probs.view({batch, kv_heads, groups * length, total}), values);
  return attended.view({batch, kv_heads, groups, length, head_dim})
      .permute({0, 3, 1, 2, 4})
      .reshape({batch, length, heads * head_dim});
#endif
}

int64_t CheckForwardInputs(const ModelConfig& config, torch::Device device, const torch::Tensor& inputs_embeds,
                           const torch::Tensor& attention_mask, const torch::Tensor& position_ids,
                           const KvCache* cache) {
  PS_CHECK(inputs_embeds.dim() == 3 && inputs_embeds.size(2) == config.hidden_size,
           "inputs_embeds must be [B, T, ", config.hidden_size, "], got ", inputs_embeds.sizes());
  const int64_t batch = inputs_embeds.size(0);
  const int64_t length = inputs_embeds.size(1);
  int64_t past = 0;
  if (cache != nullptr && !cache->keys.empty()) {
    PS_CHECK(static_cast<int64_t>(cache->keys.size()) == config.num_hidden_layers &&
                 cache->values.size() == cache->keys.size() && cache->keys.front().size(0) == batch,
             "KV cache holds ", cache->keys.size(), " layers of keys and ", cache->values.size(),
             " of values for batch ", cache->keys.front().size(0), "; expected ", config.num_hidden_layers,
             " layers for batch ", batch);
    past = cache->Length();
  }
  PS_CHECK(attention_mask.dim() == 2 && attention_mask.size(0) == batch && attention_mask.size(1) == past + length,
           "attention_mask must be [B, P + T] = [", batch, ", ", past + length, "], got ", attention_mask.sizes());
  PS_CHECK(position_ids.dim() == 2 && position_ids.size(0) == batch && position_ids.size(1) == length &&
               !torch::isFloatingType(position_ids.scalar_type()),
           "position_ids must be integer [B, T] = [", batch, ", ", length, "], got ", position_ids.sizes(), " ",
           position_ids.scalar_type());
  PS_CHECK(inputs_embeds.device() == device && attention_mask.device() == device && position_ids.device() == device,
           "inputs must be on the model's device ", device, "; got inputs_embeds on ", inputs_embeds.device(),
           ", attention_mask on ", attention_mask.device(), ", position_ids on ", position_ids.device());
  return past;
}

torch::ScalarType LogitsDType(torch::ScalarType dtype) {
  return dtype == torch::kFloat64 ? torch::kFloat64 : torch::kFloat32;
}

}  // namespace internal
}  // namespace promptsweep
