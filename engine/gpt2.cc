#include "engine/gpt2.h"

#include <string>
#include <utility>
#include <vector>

#include "common/error.h"

namespace promptsweep {
namespace {

using internal::WeightInit;
using internal::WeightSource;
using NamedWeightList = std::vector<std::pair<std::string, torch::Tensor>>;

// transformers' Conv1D: y = x W + b with W stored [in, out]. Kept as an
// [out, in] copy made once at load, the layout torch::linear (and BLAS) wants.
class Conv1D : public torch::nn::Module {
 public:
  Conv1D(WeightSource& weights, std::string name, int64_t in, int64_t out, bool trainable)
      : name_(std::move(name)) {
    weight_ = register_parameter(
        "weight", weights.Get(name_ + ".weight", {in, out}, WeightInit::kNormal).t().contiguous(), trainable);
    bias_ = register_parameter("bias", weights.Get(name_ + ".bias", {out}, WeightInit::kZeros), trainable);
  }

  torch::Tensor Forward(const torch::Tensor& x) const { return torch::linear(x, weight_, bias_); }

  void AppendNamedWeights(NamedWeightList* out) const {
    out->emplace_back(name_ + ".weight", weight_.t());  // the checkpoint's [in, out] view
    out->emplace_back(name_ + ".bias", bias_);
  }

 private:
  std::string name_;
  torch::Tensor weight_;  // [out, in]
  torch::Tensor bias_;
};

class LayerNorm : public torch::nn::Module {
 public:
  LayerNorm(WeightSource& weights, std::string name, int64_t size, double eps, bool trainable)
      : name_(std::move(name)), size_(size), eps_(eps) {
    weight_ = register_parameter("weight", weights.Get(name_ + ".weight", {size}, WeightInit::kOnes), trainable);
    bias_ = register_parameter("bias", weights.Get(name_ + ".bias", {size}, WeightInit::kZeros), trainable);
  }

  torch::Tensor Forward(const torch::Tensor& x) const { return torch::layer_norm(x, {size_}, weight_, bias_, eps_); }

  void AppendNamedWeights(NamedWeightList* out) const {
    out->emplace_back(name_ + ".weight", weight_);
    out->emplace_back(name_ + ".bias", bias_);
  }

 private:
  std::string name_;
  int64_t size_;
  double eps_;
  torch::Tensor weight_;
  torch::Tensor bias_;
};

// Self-attention: c_attn computes q, k and v in one GEMM; no rotary, positions
// come from wpe.
class Gpt2Attention : public torch::nn::Module {
 public:
  Gpt2Attention(const ModelConfig& config, WeightSource& weights, const std::string& name, int64_t layer,
                bool trainable)
      : layer_(layer), heads_(config.num_attention_heads), head_dim_(config.head_dim) {
    const int64_t hidden = config.hidden_size;
    c_attn_ = register_module("c_attn",
                              std::make_shared<Conv1D>(weights, name + ".c_attn", hidden, 3 * hidden, trainable));
    c_proj_ = register_module("c_proj",
                              std::make_shared<Conv1D>(weights, name + ".c_proj", hidden, hidden, trainable));
  }

  torch::Tensor Forward(const torch::Tensor& x, const torch::Tensor& mask, KvCache* cache) const {
    const std::vector<int64_t> head_shape = {x.size(0), x.size(1), heads_, head_dim_};
    const std::vector<torch::Tensor> qkv = c_attn_->Forward(x).chunk(3, /*dim=*/-1);
    const torch::Tensor attended =
        internal::Attention(qkv[0].view(head_shape), qkv[1].view(head_shape), qkv[2].view(head_shape), mask,
                            cache, layer_);
    return c_proj_->Forward(attended);
  }

  void AppendNamedWeights(NamedWeightList* out) const {
    c_attn_->AppendNamedWeights(out);
    c_proj_->AppendNamedWeights(out);
  }

 private:
  int64_t layer_;
  int64_t heads_;
  int64_t head_dim_;
  std::shared_ptr<Conv1D> c_attn_;
  std::shared_ptr<Conv1D> c_proj_;
};

// c_proj(act(c_fc(x))); act is GELU with the tanh approximation for gelu_new
// and gelu_pytorch_tanh (the same function), exact GELU for gelu, or ReLU.
class Gpt2Mlp : public torch::nn::Module {
 public:
  Gpt2Mlp(const ModelConfig& config, WeightSource& weights, const std::string& name, bool trainable)
      : activation_(config.hidden_act) {
    const int64_t hidden = config.hidden_size;
    const int64_t inner = config.intermediate_size;
    c_fc_ = register_module("c_fc", std::make_shared<Conv1D>(weights, name + ".c_fc", hidden, inner, trainable));
    c_proj_ =
        register_module("c_proj", std::make_shared<Conv1D>(weights, name + ".c_proj", inner, hidden, trainable));
    PS_CHECK(activation_ == "gelu_new" || activation_ == "gelu_pytorch_tanh" || activation_ == "gelu" ||
                 activation_ == "relu",
             "GPT-2 activation '", activation_, "'");
  }

  torch::Tensor Forward(const torch::Tensor& x) const { return c_proj_->Forward(Activation(c_fc_->Forward(x))); }

  void AppendNamedWeights(NamedWeightList* out) const {
    c_fc_->AppendNamedWeights(out);
    c_proj_->AppendNamedWeights(out);
  }

 private:
  torch::Tensor Activation(const torch::Tensor& x) const {
    if (activation_ == "relu") return torch::relu(x);
    return torch::gelu(x, /*approximate=*/activation_ == "gelu" ? "none" : "tanh");
  }

  std::string activation_;
  std::shared_ptr<Conv1D> c_fc_;
  std::shared_ptr<Conv1D> c_proj_;
};

// Pre-norm block: h = x + attn(ln_1(x)); out = h + mlp(ln_2(h)).
class Gpt2Block : public torch::nn::Module {
 public:
  Gpt2Block(const ModelConfig& config, WeightSource& weights, const std::string& name, int64_t layer,
            bool trainable) {
    const int64_t hidden = config.hidden_size;
    ln_1_ = register_module(
        "ln_1", std::make_shared<LayerNorm>(weights, name + ".ln_1", hidden, config.norm_eps, trainable));
    attn_ = register_module("attn",
                            std::make_shared<Gpt2Attention>(config, weights, name + ".attn", layer, trainable));
    ln_2_ = register_module(
        "ln_2", std::make_shared<LayerNorm>(weights, name + ".ln_2", hidden, config.norm_eps, trainable));
    mlp_ = register_module("mlp", std::make_shared<Gpt2Mlp>(config, weights, name + ".mlp", trainable));
  }

  torch::Tensor Forward(const torch::Tensor& x, const torch::Tensor& mask, KvCache* cache) const {
    const torch::Tensor h = x + attn_->Forward(ln_1_->Forward(x), mask, cache);
    return h + mlp_->Forward(ln_2_->Forward(h));
  }

  void AppendNamedWeights(NamedWeightList* out) const {
    ln_1_->AppendNamedWeights(out);
    attn_->AppendNamedWeights(out);
    ln_2_->AppendNamedWeights(out);
    mlp_->AppendNamedWeights(out);
  }

 private:
  std::shared_ptr<LayerNorm> ln_1_;
  std::shared_ptr<Gpt2Attention> attn_;
  std::shared_ptr<LayerNorm> ln_2_;
  std::shared_ptr<Gpt2Mlp> mlp_;
};

// Where this checkpoint keeps the GPT2Model weights: "transformer." (saved from
// GPT2LMHeadModel) or "" (saved from GPT2Model, as the original gpt2 repo).
std::string CheckpointPrefix(const WeightSource& weights) {
  return !weights.Has("transformer.wte.weight") && weights.Has("wte.weight") ? "" : "transformer.";
}

// Thread safety: immutable after construction; const methods may run concurrently.
class Gpt2LMHeadModel final : public CausalLM, public torch::nn::Module {
 public:
  Gpt2LMHeadModel(const ModelConfig& config, WeightSource& weights, const ModelLoadOptions& options)
      : config_(config), device_(options.device), dtype_(options.dtype) {
    const std::string prefix = CheckpointPrefix(weights);
    const bool trainable = options.trainable;
    const int64_t hidden = config.hidden_size;
    wte_ = register_parameter(
        "wte", weights.Get(prefix + "wte.weight", {config.vocab_size, hidden}, WeightInit::kNormal), trainable);
    wpe_ = register_parameter(
        "wpe", weights.Get(prefix + "wpe.weight", {config.max_position_embeddings, hidden}, WeightInit::kNormal),
        trainable);
    device_ = wte_.device();  // options.device may lack the index ("cuda")
    for (int64_t i = 0; i < config.num_hidden_layers; ++i) {
      layers_.push_back(register_module(
          StrCat("h", i), std::make_shared<Gpt2Block>(config, weights, StrCat(prefix, "h.", i), i, trainable)));
    }
    ln_f_ = register_module(
        "ln_f", std::make_shared<LayerNorm>(weights, prefix + "ln_f", hidden, config.norm_eps, trainable));
  }

  const ModelConfig& config() const override { return config_; }
  torch::Device device() const override { return device_; }
  torch::ScalarType dtype() const override { return dtype_; }

  torch::Tensor EmbedTokens(const torch::Tensor& input_ids) const override {
    return torch::embedding(wte_, input_ids);
  }
  torch::Tensor WordEmbeddings() const override { return wte_; }

  torch::Tensor Forward(const torch::Tensor& inputs_embeds, const torch::Tensor& attention_mask,
                        const torch::Tensor& position_ids, KvCache* cache) const override {
    const int64_t past =
        internal::CheckForwardInputs(config_, device_, inputs_embeds, attention_mask, position_ids, cache);
    CheckPositions(position_ids);
    const torch::Tensor mask = internal::MakeAttentionMask(attention_mask, past, inputs_embeds.size(1), dtype_);
    torch::Tensor hidden = inputs_embeds.to(dtype_) + torch::embedding(wpe_, position_ids);
    for (const auto& layer : layers_) hidden = layer->Forward(hidden, mask, cache);
    return ln_f_->Forward(hidden);
  }

  torch::Tensor LmHead(const torch::Tensor& hidden) const override {
    return torch::linear(hidden.to(dtype_), wte_).to(internal::LogitsDType(dtype_));
  }

  // Canonical GPT2LMHeadModel names ("transformer." prefix) whatever the
  // checkpoint used; the tied lm_head.weight is wte and not listed.
  std::vector<std::pair<std::string, torch::Tensor>> NamedWeights() const override {
    NamedWeightList named = {{"transformer.wte.weight", wte_}, {"transformer.wpe.weight", wpe_}};
    for (const auto& layer : layers_) layer->AppendNamedWeights(&named);
    ln_f_->AppendNamedWeights(&named);
    // Layers were built with the checkpoint's prefix; report the canonical one.
    for (auto& [name, tensor] : named) {
      if (name.rfind("transformer.", 0) != 0) name = "transformer." + name;
    }
    return named;
  }

  std::vector<torch::Tensor> Parameters() const override { return parameters(); }

 private:
  // wpe has n_positions rows: a longer prompt + input is the user's to shorten.
  void CheckPositions(const torch::Tensor& position_ids) const {
    if (position_ids.numel() == 0) return;
    const int64_t max_position = position_ids.max().item<int64_t>();
    const int64_t min_position = position_ids.min().item<int64_t>();
    if (min_position < 0 || max_position >= config_.max_position_embeddings) {
      throw Error(StrCat("GPT-2 position ids must lie in [0, ", config_.max_position_embeddings,
                         ") (n_positions), got [", min_position, ", ", max_position,
                         "]: shorten the soft prompt plus input"));
    }
  }

  ModelConfig config_;
  torch::Device device_;
  torch::ScalarType dtype_;
  torch::Tensor wte_;  // [V, H], also the LM head
  torch::Tensor wpe_;  // [n_positions, H]
  std::vector<std::shared_ptr<Gpt2Block>> layers_;
  std::shared_ptr<LayerNorm> ln_f_;
};

// Checkpoint tensors that are not weights: the causal-mask buffers of old
// checkpoints and the tied LM head (transformers overwrites it with wte).
bool IsIgnorableGpt2Tensor(const std::string& name) {
  auto ends_with = [&name](const std::string& suffix) {
    return name.size() >= suffix.size() && name.compare(name.size() - suffix.size(), suffix.size(), suffix) == 0;
  };
  return ends_with(".attn.bias") || ends_with(".attn.masked_bias") || name == "lm_head.weight";
}

}  // namespace

std::shared_ptr<CausalLM> CreateGpt2(const ModelConfig& config, WeightSource& weights,
                                     const ModelLoadOptions& options) {
  PS_CHECK(config.architecture == Architecture::kGpt2, "CreateGpt2 needs a GPT-2 config");
  PS_CHECK(config.num_key_value_heads == config.num_attention_heads, "GPT-2 has no grouped-query attention");
  auto model = std::make_shared<Gpt2LMHeadModel>(config, weights, options);
  weights.CheckAllRead(IsIgnorableGpt2Tensor);
  return model;
}

}  // namespace promptsweep
