// The soft prompt exactly as PEFT's PromptEmbedding defines it, and the
// batches that carry it: N virtual-token embeddings (float32 [N, H]) prepended
// to the token embeddings, attention mask extended with N ones, no loss on
// virtual positions. Padding never separates the prompt from the first real
// token (peft#1093): training batches are right-padded; left-padded batches
// (generation) put the pads before the prompt.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <torch/torch.h>

#include "common/task_data.h"
#include "common/tokenizer.h"
#include "engine/causal_lm.h"

namespace promptsweep {

enum class PromptInit { kRandom, kSampleVocab, kText };

std::string_view PromptInitName(PromptInit init);  // "RANDOM", "SAMPLE_VOCAB", "TEXT"
PromptInit ParsePromptInit(const std::string& name);  // case-insensitive; Error lists the choices

struct SoftPromptConfig {
  int64_t num_virtual_tokens = 8;
  PromptInit init = PromptInit::kRandom;
  std::string init_text;  // TEXT only
};

// The initial prompt [N, H] float32 on the model's device. RANDOM: N(0, 1)
// (nn.Embedding's default); SAMPLE_VOCAB: rows of the word embeddings at ids
// uniform over the vocabulary; TEXT: ids = tokenizer(init_text) (with the
// special tokens the tokenizer adds, as PEFT), repeated then cut to N. Random
// draws come from a CPU generator seeded with `seed`, so the result does not
// depend on the device. Error when TEXT tokenizes to nothing.
torch::Tensor InitSoftPrompt(const CausalLM& model, const Tokenizer& tokenizer,
                             const SoftPromptConfig& config, uint64_t seed);

enum class Padding { kRight, kLeft };

// A batch of examples with room for N virtual tokens, on the model's device.
// Sequence layout per row: [pads (left only)] [N virtual] [input] [target] [pads (right only)].
struct PromptBatch {
  int64_t num_virtual_tokens = 0;
  torch::Tensor input_ids;       // [B, L] int64, L = max real length; pad id 0
  torch::Tensor real_mask;       // [B, L] int64, 1 on real tokens
  torch::Tensor attention_mask;  // [B, N + L] int64, with the virtual positions
  torch::Tensor position_ids;    // [B, N + L] int64, from PositionIdsFromMask
  // Where the loss / scores are: flat indices into the [B * (N + L)] hidden
  // states whose next token is a target token, that token, and its row.
  torch::Tensor target_positions;  // [K] int64
  torch::Tensor target_ids;        // [K] int64
  torch::Tensor target_rows;       // [K] int64
  int64_t num_real_tokens = 0;     // sum of input + target lengths (for tokens/s)
  Padding padding = Padding::kRight;
  // [B] int64: sequence index of each row's first virtual token (0 for right
  // padding, the row's pad count for left padding). Real token j of
  // input_ids sits at sequence index N + j in both layouts.
  torch::Tensor prompt_start;
};

// Builds a batch from examples (input_ids followed by target_ids per example).
// Error if a row has no token before its first target (N == 0 and no input).
PromptBatch MakePromptBatch(const std::vector<const Example*>& examples, int64_t num_virtual_tokens,
                            Padding padding, torch::Device device);

// inputs_embeds [B, N + L, H]: the prompt (cast to the model's dtype, the
// autograd path to the float32 prompt kept) placed before each row's first
// real token, token embeddings elsewhere.
torch::Tensor ComposeInputsEmbeds(const CausalLM& model, const torch::Tensor& prompt,
                                  const PromptBatch& batch);

// Hidden states at batch.target_positions -> float32 logits [K, V]; only
// these K rows go through the LM head.
torch::Tensor TargetLogits(const CausalLM& model, const torch::Tensor& prompt, const PromptBatch& batch);

}  // namespace promptsweep
