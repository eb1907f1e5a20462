#include "engine/llama.h"

#include <cmath>
#include <string>
#include <utility>
#include <vector>

#include "common/error.h"

namespace promptsweep {
namespace {

using internal::WeightInit;
using internal::WeightSource;
using NamedWeightList = std::vector<std::pair<std::string, torch::Tensor>>;

constexpr double kPi = 3.14159265358979323846;  // Python's math.pi

// One Hugging Face projection inside a FusedLinear: "model.layers.0.self_attn.q_proj"
// and its number of output features.
struct Projection {
  std::string name;
  int64_t out_features;
};

// y = x W^T + b where W (and b) stack one or more Hugging Face projections
// along the output dimension (q/k/v, gate/up), so one GEMM computes them all.
class FusedLinear : public torch::nn::Module {
 public:
  FusedLinear(WeightSource& weights, std::vector<Projection> projections, int64_t in_features, bool bias,
              bool trainable)
      : projections_(std::move(projections)) {
    std::vector<torch::Tensor> weight_parts;
    std::vector<torch::Tensor> bias_parts;
    for (const Projection& p : projections_) {
      weight_parts.push_back(weights.Get(p.name + ".weight", {p.out_features, in_features}, WeightInit::kNormal));
      if (bias) bias_parts.push_back(weights.Get(p.name + ".bias", {p.out_features}, WeightInit::kZeros));
    }
    weight_ = register_parameter("weight", Stack(weight_parts), trainable);
    if (bias) bias_ = register_parameter("bias", Stack(bias_parts), trainable);
  }

  torch::Tensor Forward(const torch::Tensor& x) const { return torch::linear(x, weight_, bias_); }

  // Each projection's rows, a view under its own name.
  void AppendNamedWeights(NamedWeightList* out) const {
    int64_t offset = 0;
    for (const Projection& p : projections_) {
      out->emplace_back(p.name + ".weight", weight_.narrow(/*dim=*/0, offset, p.out_features));
      if (bias_.defined()) out->emplace_back(p.name + ".bias", bias_.narrow(/*dim=*/0, offset, p.out_features));
      offset += p.out_features;
    }
  }

 private:
  static torch::Tensor Stack(const std::vector<torch::Tensor>& parts) {
    return parts.size() == 1 ? parts.front() : torch::cat(parts, /*dim=*/0);
  }

  std::vector<Projection> projections_;
  torch::Tensor weight_;  // [sum of out_features, in_features]
  torch::Tensor bias_;    // undefined without bias
};

// transformers' LlamaRMSNorm: y = w * (x / sqrt(mean(x^2) + eps)), the
// normalisation in float32 (float64 stays float64 for gradient checks), cast
// back to the input dtype before the weight multiplies.
class RmsNorm : public torch::nn::Module {
 public:
  RmsNorm(WeightSource& weights, std::string name, int64_t size, double eps, bool trainable)
      : name_(std::move(name)), eps_(eps) {
    weight_ = register_parameter("weight", weights.Get(name_ + ".weight", {size}, WeightInit::kOnes),
                                 trainable);
  }

  torch::Tensor Forward(const torch::Tensor& x) const {
    const torch::ScalarType input_dtype = x.scalar_type();
    const torch::Tensor x32 = x.to(torch::promote_types(input_dtype, torch::kFloat32));
    const torch::Tensor variance = x32.pow(2).mean(/*dim=*/-1, /*keepdim=*/true);
    return weight_ * (x32 * torch::rsqrt(variance + eps_)).to(input_dtype);
  }

  void AppendNamedWeights(NamedWeightList* out) const { out->emplace_back(name_ + ".weight", weight_); }

 private:
  std::string name_;
  double eps_;
  torch::Tensor weight_;
};

// cos and sin of the rotation angles, [B, T, 1, D], shared by all layers of one Forward.
struct RotaryTables {
  torch::Tensor cos;
  torch::Tensor sin;
};

// transformers' LlamaRotaryEmbedding: inv_freq_i = theta^(-2i/D) (float32, as
// _compute_default_rope_parameters), rescaled by _compute_llama3_parameters for
// rope_scaling type "llama3"; angles = position * inv_freq, duplicated over
// both halves (the rotate_half convention).
class RotaryEmbedding {
 public:
  RotaryEmbedding(const ModelConfig& config, torch::Device device) {
    const int64_t dim = config.head_dim;
    PS_CHECK(dim % 2 == 0, "rotary embeddings need an even head_dim, got ", dim);
    // Same ops in the same order as transformers (Python's `a / t` is t.reciprocal() * a),
    // so the float32 frequencies agree bit for bit.
    const torch::Tensor exponents = torch::arange(0, dim, 2, torch::kInt64).to(torch::kFloat32) / dim;
    torch::Tensor inv_freq = torch::pow(config.rope_theta, exponents).reciprocal();
    if (config.rope_scaling.type == "llama3") inv_freq = Llama3Scaled(inv_freq, config.rope_scaling);
    inv_freq_ = inv_freq.to(device);
  }

  RotaryTables Tables(const torch::Tensor& position_ids, torch::ScalarType dtype) const {
    const torch::Tensor angles = position_ids.to(torch::kFloat32).unsqueeze(-1) * inv_freq_;  // [B, T, D/2]
    const torch::Tensor both_halves = torch::cat({angles, angles}, /*dim=*/-1).unsqueeze(2);
    return {both_halves.cos().to(dtype), both_halves.sin().to(dtype)};
  }

 private:
  // Llama 3.1: wavelengths above original_max_position_embeddings / low_freq_factor
  // are slowed by `factor`, those below ... / high_freq_factor kept, and the band
  // between interpolated smoothly.
  static torch::Tensor Llama3Scaled(const torch::Tensor& inv_freq, const RopeScaling& scaling) {
    const double old_context = static_cast<double>(scaling.original_max_position_embeddings);
    const double low_freq_wavelen = old_context / scaling.low_freq_factor;
    const double high_freq_wavelen = old_context / scaling.high_freq_factor;
    const torch::Tensor wavelen = inv_freq.reciprocal() * (2 * kPi);
    torch::Tensor scaled = torch::where(wavelen > low_freq_wavelen, inv_freq / scaling.factor, inv_freq);
    const torch::Tensor smooth = (wavelen.reciprocal() * old_context - scaling.low_freq_factor) /
                                 (scaling.high_freq_factor - scaling.low_freq_factor);
    const torch::Tensor smoothed = (1 - smooth) * scaled / scaling.factor + smooth * scaled;
    const torch::Tensor is_medium = (wavelen >= high_freq_wavelen).logical_and(wavelen <= low_freq_wavelen);
    return torch::where(is_medium, smoothed, scaled);
  }

  torch::Tensor inv_freq_;  // [D / 2] float32
};

// x * cos + rotate_half(x) * sin with rotate_half([x1, x2]) = [-x2, x1];
// x [B, T, heads, D].
torch::Tensor ApplyRotary(const torch::Tensor& x, const RotaryTables& rotary) {
  const int64_t half = x.size(-1) / 2;
  const torch::Tensor rotated = torch::cat({-x.narrow(-1, half, half), x.narrow(-1, 0, half)}, /*dim=*/-1);
  return x * rotary.cos + rotated * rotary.sin;
}

// silu(gate) * up over the fused [..., 2I] gate/up projection. Saves only that
// projection and recomputes silu(gate) in backward; plain autograd would also
// keep silu(gate), one more [N, I] tensor per layer until backward.
class SiluGate : public torch::autograd::Function<SiluGate> {
 public:
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, const torch::Tensor& gate_up) {
    ctx->save_for_backward({gate_up});
    const std::vector<torch::Tensor> halves = gate_up.chunk(2, /*dim=*/-1);
    return torch::silu(halves[0]) * halves[1];
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grad_outputs) {
    const torch::Tensor gate_up = ctx->get_saved_variables()[0];
    const std::vector<torch::Tensor> halves = gate_up.chunk(2, /*dim=*/-1);
    const torch::Tensor& gate = halves[0];
    const torch::Tensor& up = halves[1];
    const torch::Tensor& grad = grad_outputs[0];
    torch::Tensor grad_gate = torch::silu_backward(grad * up, gate);
    torch::Tensor grad_up = grad * torch::silu(gate);
    return {torch::cat({grad_gate, grad_up}, /*dim=*/-1)};
  }
};

// Self-attention with fused q/k/v: one GEMM, rotary on q and k, then the
// shared grouped-query attention core.
class LlamaAttention : public torch::nn::Module {
 public:
  LlamaAttention(const ModelConfig& config, WeightSource& weights, const std::string& name, int64_t layer,
                 bool trainable)
      : layer_(layer),
        heads_(config.num_attention_heads),
        kv_heads_(config.num_key_value_heads),
        head_dim_(config.head_dim) {
    const int64_t hidden = config.hidden_size;
    qkv_proj_ = register_module(
        "qkv_proj", std::make_shared<FusedLinear>(weights,
                                                  std::vector<Projection>{{name + ".q_proj", heads_ * head_dim_},
                                                                          {name + ".k_proj", kv_heads_ * head_dim_},
                                                                          {name + ".v_proj", kv_heads_ * head_dim_}},
                                                  hidden, config.attention_bias, trainable));
    o_proj_ = register_module("o_proj", std::make_shared<FusedLinear>(
                                            weights, std::vector<Projection>{{name + ".o_proj", hidden}},
                                            heads_ * head_dim_, config.attention_bias, trainable));
  }

  torch::Tensor Forward(const torch::Tensor& x, const RotaryTables& rotary, const torch::Tensor& mask,
                        KvCache* cache) const {
    const int64_t batch = x.size(0);
    const int64_t length = x.size(1);
    const std::vector<torch::Tensor> qkv = qkv_proj_->Forward(x).split_with_sizes(
        {heads_ * head_dim_, kv_heads_ * head_dim_, kv_heads_ * head_dim_}, /*dim=*/-1);
    const torch::Tensor q = ApplyRotary(qkv[0].view({batch, length, heads_, head_dim_}), rotary);
    const torch::Tensor k = ApplyRotary(qkv[1].view({batch, length, kv_heads_, head_dim_}), rotary);
    const torch::Tensor v = qkv[2].view({batch, length, kv_heads_, head_dim_});
    return o_proj_->Forward(internal::Attention(q, k, v, mask, cache, layer_));
  }

  void AppendNamedWeights(NamedWeightList* out) const {
    qkv_proj_->AppendNamedWeights(out);
    o_proj_->AppendNamedWeights(out);
  }

 private:
  int64_t layer_;
  int64_t heads_;
  int64_t kv_heads_;
  int64_t head_dim_;
  std::shared_ptr<FusedLinear> qkv_proj_;  // [(heads + 2 kv_heads) * head_dim, hidden]
  std::shared_ptr<FusedLinear> o_proj_;
};

// down(silu(gate(x)) * up(x)) with gate and up fused into one GEMM.
class LlamaMlp : public torch::nn::Module {
 public:
  LlamaMlp(const ModelConfig& config, WeightSource& weights, const std::string& name, bool trainable) {
    const int64_t hidden = config.hidden_size;
    const int64_t intermediate = config.intermediate_size;
    gate_up_proj_ = register_module(
        "gate_up_proj",
        std::make_shared<FusedLinear>(
            weights, std::vector<Projection>{{name + ".gate_proj", intermediate}, {name + ".up_proj", intermediate}},
            hidden, config.mlp_bias, trainable));
    down_proj_ = register_module(
        "down_proj", std::make_shared<FusedLinear>(weights, std::vector<Projection>{{name + ".down_proj", hidden}},
                                                   intermediate, config.mlp_bias, trainable));
  }

  torch::Tensor Forward(const torch::Tensor& x) const {
    return down_proj_->Forward(SiluGate::apply(gate_up_proj_->Forward(x)));
  }

  void AppendNamedWeights(NamedWeightList* out) const {
    gate_up_proj_->AppendNamedWeights(out);
    down_proj_->AppendNamedWeights(out);
  }

 private:
  std::shared_ptr<FusedLinear> gate_up_proj_;  // [2 * intermediate, hidden]: gate rows, then up rows
  std::shared_ptr<FusedLinear> down_proj_;
};

// h = x + attn(norm1(x)); out = h + mlp(norm2(h)).
class LlamaDecoderLayer : public torch::nn::Module {
 public:
  LlamaDecoderLayer(const ModelConfig& config, WeightSource& weights, int64_t layer, bool trainable) {
    const std::string name = StrCat("model.layers.", layer);
    self_attn_ = register_module(
        "self_attn", std::make_shared<LlamaAttention>(config, weights, name + ".self_attn", layer, trainable));
    mlp_ = register_module("mlp", std::make_shared<LlamaMlp>(config, weights, name + ".mlp", trainable));
    input_layernorm_ = register_module(
        "input_layernorm", std::make_shared<RmsNorm>(weights, name + ".input_layernorm", config.hidden_size,
                                                     config.norm_eps, trainable));
    post_attention_layernorm_ = register_module(
        "post_attention_layernorm",
        std::make_shared<RmsNorm>(weights, name + ".post_attention_layernorm", config.hidden_size,
                                  config.norm_eps, trainable));
  }

  torch::Tensor Forward(const torch::Tensor& x, const RotaryTables& rotary, const torch::Tensor& mask,
                        KvCache* cache) const {
    const torch::Tensor h = x + self_attn_->Forward(input_layernorm_->Forward(x), rotary, mask, cache);
    return h + mlp_->Forward(post_attention_layernorm_->Forward(h));
  }

  void AppendNamedWeights(NamedWeightList* out) const {
    self_attn_->AppendNamedWeights(out);
    mlp_->AppendNamedWeights(out);
    input_layernorm_->AppendNamedWeights(out);
    post_attention_layernorm_->AppendNamedWeights(out);
  }

 private:
  std::shared_ptr<LlamaAttention> self_attn_;
  std::shared_ptr<LlamaMlp> mlp_;
  std::shared_ptr<RmsNorm> input_layernorm_;
  std::shared_ptr<RmsNorm> post_attention_layernorm_;
};

// Thread safety: immutable after construction; const methods may run concurrently.
class LlamaForCausalLM final : public CausalLM, public torch::nn::Module {
 public:
  LlamaForCausalLM(const ModelConfig& config, WeightSource& weights, const ModelLoadOptions& options)
      : config_(config), device_(options.device), dtype_(options.dtype), rotary_(config, options.device) {
    const bool trainable = options.trainable;
    embed_tokens_ = register_parameter(
        "embed_tokens",
        weights.Get("model.embed_tokens.weight", {config.vocab_size, config.hidden_size}, WeightInit::kNormal),
        trainable);
    device_ = embed_tokens_.device();  // options.device may lack the index ("cuda")
    for (int64_t i = 0; i < config.num_hidden_layers; ++i) {
      layers_.push_back(register_module(StrCat("layer", i),
                                        std::make_shared<LlamaDecoderLayer>(config, weights, i, trainable)));
    }
    norm_ = register_module("norm", std::make_shared<RmsNorm>(weights, "model.norm", config.hidden_size,
                                                              config.norm_eps, trainable));
    if (config.tie_word_embeddings) {
      lm_head_ = embed_tokens_;
    } else {
      lm_head_ = register_parameter(
          "lm_head", weights.Get("lm_head.weight", {config.vocab_size, config.hidden_size}, WeightInit::kNormal),
          trainable);
    }
  }

  const ModelConfig& config() const override { return config_; }
  torch::Device device() const override { return device_; }
  torch::ScalarType dtype() const override { return dtype_; }

  torch::Tensor EmbedTokens(const torch::Tensor& input_ids) const override {
    return torch::embedding(embed_tokens_, input_ids);
  }
  torch::Tensor WordEmbeddings() const override { return embed_tokens_; }

  torch::Tensor Forward(const torch::Tensor& inputs_embeds, const torch::Tensor& attention_mask,
                        const torch::Tensor& position_ids, KvCache* cache) const override {
    const int64_t past =
        internal::CheckForwardInputs(config_, device_, inputs_embeds, attention_mask, position_ids, cache);
    const torch::Tensor mask = internal::MakeAttentionMask(attention_mask, past, inputs_embeds.size(1), dtype_);
    const RotaryTables rotary = rotary_.Tables(position_ids, dtype_);
    torch::Tensor hidden = inputs_embeds.to(dtype_);
    for (const auto& layer : layers_) hidden = layer->Forward(hidden, rotary, mask, cache);
    return norm_->Forward(hidden);
  }

  torch::Tensor LmHead(const torch::Tensor& hidden) const override {
    return torch::linear(hidden.to(dtype_), lm_head_).to(internal::LogitsDType(dtype_));
  }

  std::vector<std::pair<std::string, torch::Tensor>> NamedWeights() const override {
    NamedWeightList named = {{"model.embed_tokens.weight", embed_tokens_}};
    for (const auto& layer : layers_) layer->AppendNamedWeights(&named);
    norm_->AppendNamedWeights(&named);
    if (!config_.tie_word_embeddings) named.emplace_back("lm_head.weight", lm_head_);
    return named;
  }

  std::vector<torch::Tensor> Parameters() const override { return parameters(); }

 private:
  ModelConfig config_;
  torch::Device device_;
  torch::ScalarType dtype_;
  RotaryEmbedding rotary_;
  torch::Tensor embed_tokens_;  // [V, H]
  std::vector<std::shared_ptr<LlamaDecoderLayer>> layers_;
  std::shared_ptr<RmsNorm> norm_;
  torch::Tensor lm_head_;  // [V, H]; embed_tokens_ itself when tied
};

// Checkpoint tensors that are not weights of the model: the rotary inverse
// frequencies old transformers versions saved as a buffer, and the LM head of
// a tied model (transformers overwrites it with the embeddings).
bool IsIgnorableLlamaTensor(const ModelConfig& config, const std::string& name) {
  const std::string inv_freq = ".self_attn.rotary_emb.inv_freq";
  const bool is_inv_freq =
      name.size() > inv_freq.size() && name.compare(name.size() - inv_freq.size(), inv_freq.size(), inv_freq) == 0;
  return is_inv_freq || (config.tie_word_embeddings && name == "lm_head.weight");
}

}  // namespace

std::shared_ptr<CausalLM> CreateLlama(const ModelConfig& config, WeightSource& weights,
                                      const ModelLoadOptions& options) {
  PS_CHECK(config.architecture == Architecture::kLlama, "CreateLlama needs a Llama config");
  PS_CHECK(config.num_attention_heads % config.num_key_value_heads == 0, "num_attention_heads ",
           config.num_attention_heads, " is not a multiple of num_key_value_heads ", config.num_key_value_heads);
  auto model = std::make_shared<LlamaForCausalLM>(config, weights, options);
  weights.CheckAllRead([&config](const std::string& name) { return IsIgnorableLlamaTensor(config, name); });
  return model;
}

}  // namespace promptsweep
