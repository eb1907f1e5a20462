// A frozen causal language model on LibTorch: LlamaForCausalLM or
// GPT2LMHeadModel, built from ModelConfig and loaded by Hugging Face tensor
// name. The forward pass takes inputs_embeds (so a soft prompt can be
// prepended) and returns hidden states; the LM head is a separate call so the
// trainer computes logits only where a loss or a score is needed.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <torch/torch.h>

#include "common/model_config.h"
#include "common/safetensors.h"

namespace promptsweep {

struct ModelLoadOptions {
  torch::Device device = torch::kCPU;
  // Compute dtype of the frozen weights: float32, bfloat16 or float16 (float64
  // for tests). Soft prompts and losses stay float32 whatever this is.
  torch::ScalarType dtype = torch::kFloat32;
  // Only pretraining sets this: weights get requires_grad. Prompt tuning never does.
  bool trainable = false;
};

// Keys and values of past positions, one entry per layer, [B, kv_heads, S, head_dim].
struct KvCache {
  std::vector<torch::Tensor> keys;
  std::vector<torch::Tensor> values;
  int64_t Length() const { return keys.empty() ? 0 : keys.front().size(2); }
};

// Thread safety: after Load the model is immutable; every const method may be
// called from many threads at once (one model serves all jobs on a worker).
class CausalLM {
 public:
  virtual ~CausalLM() = default;

  // Loads `model_dir` (config.json + model.safetensors or a sharded index).
  // Errors name the missing/mis-shaped tensor and the checkpoint.
  static std::shared_ptr<const CausalLM> Load(const std::string& model_dir,
                                              const ModelLoadOptions& options = {});
  // Builds from an open checkpoint; mutable result for pretraining.
  static std::shared_ptr<CausalLM> Create(const ModelConfig& config, const CheckpointReader& checkpoint,
                                          const ModelLoadOptions& options = {});
  // Random initialisation (std 0.02, norms 1), for pretraining from scratch.
  static std::shared_ptr<CausalLM> CreateRandom(const ModelConfig& config, uint64_t seed,
                                                const ModelLoadOptions& options = {});

  virtual const ModelConfig& config() const = 0;
  virtual torch::Device device() const = 0;
  virtual torch::ScalarType dtype() const = 0;

  // Token embeddings: input_ids [B, T] int64 -> [B, T, H] in dtype().
  virtual torch::Tensor EmbedTokens(const torch::Tensor& input_ids) const = 0;
  // The word-embedding table [V, H] (TEXT / SAMPLE_VOCAB prompt init).
  virtual torch::Tensor WordEmbeddings() const = 0;

  // Decoder stack and final norm.
  //   inputs_embeds  [B, T, H] (any float dtype; cast to dtype())
  //   attention_mask [B, P + T] int/bool, 1 = attend, 0 = padding; P = cache->Length()
  //   position_ids   [B, T] int64
  // Causal masking is applied on top of attention_mask. With `cache`, keys and
  // values of these T positions are appended to it (generation).
  // Returns hidden states [B, T, H] in dtype().
  virtual torch::Tensor Forward(const torch::Tensor& inputs_embeds, const torch::Tensor& attention_mask,
                                const torch::Tensor& position_ids, KvCache* cache = nullptr) const = 0;

  // LM head: hidden [..., H] -> logits [..., V] in float32 (float64 for a
  // float64 model, which only tests use).
  virtual torch::Tensor LmHead(const torch::Tensor& hidden) const = 0;

  // Every weight by its Hugging Face name and layout (tied weights once). Fused
  // weights come back as views (q/k/v slices of the fused projection, GPT-2's
  // Conv1D [in, out] as a transpose), so this allocates nothing.
  virtual std::vector<std::pair<std::string, torch::Tensor>> NamedWeights() const = 0;
  // The tensors the model computes with (fused q/k/v and gate/up, [out, in]
  // layout): what an optimizer steps when ModelLoadOptions::trainable is set.
  virtual std::vector<torch::Tensor> Parameters() const = 0;
  int64_t NumParameters() const;
};

// Position ids from an attention mask: running count of real tokens minus one
// (pads get 0), as transformers' generate does; works for left and right padding.
// `attention_mask` [B, P + T] covers the past too; returns the last T = S - P
// columns, [B, T] int64.
torch::Tensor PositionIdsFromMask(const torch::Tensor& attention_mask, int64_t past_length = 0);

// Parses "float32" / "bfloat16" / "float16" (and "fp32"/"bf16"/"fp16").
torch::ScalarType ParseComputeDType(const std::string& name);
// Parses "cpu", "cuda", "cuda:N"; clear error when CUDA is not available.
torch::Device ParseDevice(const std::string& name);

// Building blocks shared by the architectures (worker/llama.cc, worker/gpt2.cc);
// not for use outside the model code.
namespace internal {

// How CreateRandom initialises a weight (transformers' _init_weights).
enum class WeightInit { kNormal, kOnes, kZeros };

// Where a model's weights come from: a checkpoint, by Hugging Face name, or a
// seeded random initialiser. Layer constructors ask for each weight by name and
// expected shape, so layer code never sees a file format.
class WeightSource {
 public:
  virtual ~WeightSource() = default;
  // The weight `name` of shape `shape`, in the model's dtype on its device, not
  // requiring grad. Checkpoint: Error when the tensor is missing or mis-shaped.
  virtual torch::Tensor Get(const std::string& name, const std::vector<int64_t>& shape, WeightInit init) = 0;
  // Whether the source stores `name` (a random source stores nothing).
  virtual bool Has(const std::string& name) const = 0;
  // Error naming the first tensor that no Get() read and `ignorable` does not
  // accept: a checkpoint that holds more than the config describes is refused.
  virtual void CheckAllRead(const std::function<bool(const std::string&)>& ignorable) const = 0;
};

// The attention mask for one Forward, shared by all layers: query i
// (absolute position P + i) sees key j <= P + i where attention_mask is 1, and
// always itself, so a padding query's softmax row is never empty (no NaN in
// forward or backward; padding outputs are garbage nobody attends to, as in
// transformers). [B, 1, T, S] bool under LibTorch >= 2 (scaled_dot_product_attention),
// else [B, 1, 1, T, S] with 0 / lowest(dtype) entries.
torch::Tensor MakeAttentionMask(const torch::Tensor& attention_mask, int64_t past_length, int64_t length,
                                torch::ScalarType dtype);

// softmax(q k^T / sqrt(D) + mask) v with grouped-query attention.
//   q [B, T, heads, D]; k, v [B, T, kv_heads, D]; heads a multiple of kv_heads.
// With `cache`, k and v are appended to cache layer `layer` (unrepeated kv
// heads) and attention runs over past + current. Returns [B, T, heads * D].
torch::Tensor Attention(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                        const torch::Tensor& mask, KvCache* cache, int64_t layer);

// Checks Forward's arguments against each other, the model (config, device)
// and the cache; returns the past length P.
int64_t CheckForwardInputs(const ModelConfig& config, torch::Device device, const torch::Tensor& inputs_embeds,
                           const torch::Tensor& attention_mask, const torch::Tensor& position_ids,
                           const KvCache* cache);

// The dtype LmHead returns for a model computing in `dtype`: float32, or
// float64 for a float64 model (gradient checks need the precision).
torch::ScalarType LogitsDType(torch::ScalarType dtype);

}  // namespace internal

}  // namespace promptsweep
