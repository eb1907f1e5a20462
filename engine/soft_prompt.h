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
//
// Per-row prompts (the MakePromptBatch taking a stack): row r uses prompt
// p = prompt_index[r] of a stack whose prompt p has n_p = prompt_lengths[p]
// virtual tokens, and N = max n_p. The row's N slots hold [N - n_p unused]
// [n_p virtual]: the unused slots are masked (attention_mask 0) and sit before
// the prompt, so real token j is still at sequence index N + j and the
// positions (from the mask) are those of a batch with prompt p alone. A
// single-prompt batch is the stack {N} with every index 0.
struct PromptBatch {
  int64_t num_virtual_tokens = 0;  // N
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
  // padding, the row's pad count for left padding; plus N - n_p for a row
  // whose prompt is shorter than N). Real token j of input_ids sits at
  // sequence index N + j in both layouts.
  torch::Tensor prompt_start;
  // The stack the batch was laid out for: n_p of each prompt ({N} for a
  // single-prompt batch), the prompt of each row and of each target, on the
  // model's device. A job's loss over its own targets (multi-job packing):
  // -log_probs.masked_select(target_prompts == p).sum() / that count; sums of
  // all prompts at once: zeros({P}).index_add(0, target_prompts, values).
  std::vector<int64_t> prompt_lengths;
  torch::Tensor prompt_index;    // [B] int64, in [0, P)
  torch::Tensor target_prompts;  // [K] int64, prompt_index[target_rows]
};

// Builds a batch from examples (input_ids followed by target_ids per example).
// Error if a row has no token before its first target (N == 0 and no input).
PromptBatch MakePromptBatch(const std::vector<const Example*>& examples, int64_t num_virtual_tokens,
                            Padding padding, torch::Device device);

// The same with per-row prompts: example r uses prompt prompt_index[r] of a
// stack of prompt_lengths.size() prompts (a length may be 0: the bare model).
// Error when the sizes disagree, an index is outside the stack or a length is
// negative; as above when a row has no token before its first target.
PromptBatch MakePromptBatch(const std::vector<const Example*>& examples, const std::vector<int64_t>& prompt_lengths,
                            const std::vector<int64_t>& prompt_index, Padding padding, torch::Device device);

// inputs_embeds [B, N + L, H]: the prompt (cast to the model's dtype, the
// autograd path to the float32 prompt kept) placed before each row's first
// real token, token embeddings elsewhere. `prompt` is [N, H] (undefined when
// N = 0); a batch laid out for a stack of several prompts needs the overload.
torch::Tensor ComposeInputsEmbeds(const CausalLM& model, const torch::Tensor& prompt,
                                  const PromptBatch& batch);

// Per-row prompts: prompts[p] is [n_p, H] (float32 or the model's dtype,
// possibly requiring grad; undefined or [0, H] when n_p = 0) for the stack
// the batch was made for; each row gets its own prompt's rows, the unused
// slots zeros, and every prompt keeps its autograd path (the gradient of a
// prompt sums over its rows only). Error when the stack does not match the
// batch (count, n_p) or the model (hidden size).
torch::Tensor ComposeInputsEmbeds(const CausalLM& model, const std::vector<torch::Tensor>& prompts,
                                  const PromptBatch& batch);

// Hidden states at batch.target_positions -> float32 logits [K, V]; only
// these K rows go through the LM head.
torch::Tensor TargetLogits(const CausalLM& model, const torch::Tensor& prompt, const PromptBatch& batch);
torch::Tensor TargetLogits(const CausalLM& model, const std::vector<torch::Tensor>& prompts,
                           const PromptBatch& batch);

// Log-probabilities [K] float32 of the batch's target tokens; the graph to
// the prompt(s) is kept when grad mode is on. Per-row prompts: group by
// batch.target_prompts for per-prompt losses or scores.
torch::Tensor TargetLogProbs(const CausalLM& model, const torch::Tensor& prompt, const PromptBatch& batch);
torch::Tensor TargetLogProbs(const CausalLM& model, const std::vector<torch::Tensor>& prompts,
                             const PromptBatch& batch);

}  // namespace promptsweep
