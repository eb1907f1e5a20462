#include "engine/soft_prompt.h"

#include <ATen/CPUGeneratorImpl.h>

#include <algorithm>
#include <cctype>

#include "common/error.h"

namespace promptsweep {
namespace {

constexpr PromptInit kPromptInits[] = {PromptInit::kRandom, PromptInit::kSampleVocab, PromptInit::kText};

std::string Upper(std::string text) {
  std::transform(text.begin(), text.end(), text.begin(),
                 [](unsigned char c) { return static_cast<char>(std::toupper(c)); });
  return text;
}

// Rows of the word embeddings at `ids` (CPU int64), as a new float32 tensor:
// PEFT's word_embeddings(ids).detach().clone().to(torch.float32).
torch::Tensor EmbeddingRows(const CausalLM& model, const torch::Tensor& ids) {
  const torch::Tensor table = model.WordEmbeddings();
  return table.detach().index_select(0, ids.to(table.device())).to(torch::kFloat32).clone();
}

// Copies a [rows, cols] int64 CPU buffer to `device`.
torch::Tensor ToDevice(std::vector<int64_t>& values, int64_t rows, int64_t cols, torch::Device device) {
  return torch::from_blob(values.data(), {rows, cols}, torch::kInt64).to(device, /*non_blocking=*/false,
                                                                            /*copy=*/true);
}

torch::Tensor ToDevice(std::vector<int64_t>& values, torch::Device device) {
  return torch::from_blob(values.data(), {static_cast<int64_t>(values.size())}, torch::kInt64)
      .to(device, /*non_blocking=*/false, /*copy=*/true);
}

// Puts rows [B, N, H] (the N prompt slots of every row, unused ones first)
// into the sequence before each row's first real token.
torch::Tensor PlacePromptRows(const torch::Tensor& tokens, const torch::Tensor& rows, const PromptBatch& batch) {
  if (batch.padding == Padding::kRight) return torch::cat({rows, tokens}, /*dim=*/1);
  const int64_t batch_size = tokens.size(0);
  const int64_t n = rows.size(1);
  const int64_t hidden = tokens.size(2);
  // The N-slot block begins `unused` slots before the row's prompt.
  const torch::Tensor lengths = torch::tensor(batch.prompt_lengths, torch::kInt64).to(batch.prompt_index.device());
  const torch::Tensor block_start = batch.prompt_start - n + lengths.index_select(0, batch.prompt_index);
  // Left padding: token j already sits at N + j after the cat below; the
  // prompt overwrites [start, start + N), which holds only zeros and pads.
  const torch::Tensor padded = torch::cat({torch::zeros({batch_size, n, hidden}, tokens.options()), tokens}, 1);
  const torch::Tensor index = (block_start.unsqueeze(1) + torch::arange(n, block_start.options()).unsqueeze(0))
                                  .unsqueeze(2)
                                  .expand({batch_size, n, hidden});
  return padded.scatter(/*dim=*/1, index, rows);
}

// Hidden states at batch.target_positions -> float32 logits [K, V].
torch::Tensor LogitsAtTargets(const CausalLM& model, const torch::Tensor& embeds, const PromptBatch& batch) {
  const torch::Tensor hidden = model.Forward(embeds, batch.attention_mask, batch.position_ids);
  // Only the K positions that predict a target go through the LM head
  // (PEFT computes logits for all B * (N + L) positions).
  const torch::Tensor selected = hidden.reshape({-1, hidden.size(-1)}).index_select(0, batch.target_positions);
  return model.LmHead(selected).to(torch::kFloat32);
}

// log_softmax of logits [K, V] (float32) at each target token.
torch::Tensor LogProbsOfTargets(const torch::Tensor& logits, const PromptBatch& batch) {
  return torch::log_softmax(logits, /*dim=*/-1).gather(1, batch.target_ids.unsqueeze(1)).squeeze(1);
}

}  // namespace

std::string_view PromptInitName(PromptInit init) {
  switch (init) {
    case PromptInit::kRandom: return "RANDOM";
    case PromptInit::kSampleVocab: return "SAMPLE_VOCAB";
    case PromptInit::kText: return "TEXT";
  }
  PS_CHECK(false, "unknown PromptInit ", static_cast<int>(init));
  return "";
}

PromptInit ParsePromptInit(const std::string& name) {
  const std::string upper = Upper(name);
  for (PromptInit init : kPromptInits) {
    if (upper == PromptInitName(init)) return init;
  }
  throw Error(StrCat("unknown prompt init \"", name, "\": expected RANDOM, SAMPLE_VOCAB or TEXT"));
}

torch::Tensor InitSoftPrompt(const CausalLM& model, const Tokenizer& tokenizer, const SoftPromptConfig& config,
                             uint64_t seed) {
  const int64_t n = config.num_virtual_tokens;
  if (n <= 0) throw Error(StrCat("num_virtual_tokens must be positive, found ", n));
  const int64_t hidden = model.config().hidden_size;
  // Draws on a seeded CPU generator, then moves: the same seed gives the same
  // prompt on every device (CUDA generators produce other streams).
  at::Generator generator = at::detail::createCPUGenerator(seed);
  torch::NoGradGuard no_grad;

  switch (config.init) {
    case PromptInit::kRandom:
      // nn.Embedding's default initialisation, which PEFT keeps for RANDOM.
      return torch::randn({n, hidden}, generator, torch::kFloat32).to(model.device());
    case PromptInit::kSampleVocab: {
      // peft/tuners/prompt_tuning/model.py: randint(0, word_embeddings.num_embeddings, (N,)).
      const int64_t vocab = model.WordEmbeddings().size(0);
      const torch::Tensor ids = torch::randint(0, vocab, {n}, generator, torch::kInt64);
      return EmbeddingRows(model, ids);
    }
    case PromptInit::kText: {
      // PEFT: tokenizer(init_text)["input_ids"] (special tokens included),
      // repeated ceil(N / len) times, then cut to N.
      const std::vector<int32_t> text_ids = tokenizer.Encode(config.init_text, /*add_special_tokens=*/true);
      if (text_ids.empty()) {
        throw Error(StrCat("prompt init TEXT: init text \"", config.init_text,
                           "\" tokenizes to no tokens; give a non-empty init text or use SAMPLE_VOCAB"));
      }
      const int64_t vocab = model.WordEmbeddings().size(0);
      std::vector<int64_t> ids(static_cast<std::size_t>(n));
      for (int64_t i = 0; i < n; ++i) {
        const int32_t id = text_ids[static_cast<std::size_t>(i) % text_ids.size()];
        if (id < 0 || id >= vocab) {
          throw Error(StrCat("prompt init TEXT: token id ", id, " of the init text is outside the model's ",
                             vocab, " embeddings; the tokenizer does not belong to this model"));
        }
        ids[static_cast<std::size_t>(i)] = id;
      }
      return EmbeddingRows(model, torch::tensor(ids, torch::kInt64));
    }
  }
  PS_CHECK(false, "unknown PromptInit ", static_cast<int>(config.init));
  return {};
}

PromptBatch MakePromptBatch(const std::vector<const Example*>& examples, int64_t num_virtual_tokens,
                            Padding padding, torch::Device device) {
  PS_CHECK(num_virtual_tokens >= 0, "num_virtual_tokens = ", num_virtual_tokens);
  // One prompt for every row: no unused slots, the layout of PEFT's batches.
  return MakePromptBatch(examples, {num_virtual_tokens}, std::vector<int64_t>(examples.size(), 0), padding, device);
}

PromptBatch MakePromptBatch(const std::vector<const Example*>& examples, const std::vector<int64_t>& prompt_lengths,
                            const std::vector<int64_t>& prompt_index, Padding padding, torch::Device device) {
  PS_CHECK(!examples.empty(), "MakePromptBatch needs at least one example");
  if (prompt_index.size() != examples.size()) {
    throw Error(StrCat("per-row prompts: ", prompt_index.size(), " prompt indices for ", examples.size(),
                       " examples; give one index per example"));
  }
  const int64_t num_prompts = static_cast<int64_t>(prompt_lengths.size());
  int64_t n = 0;  // N: room for the longest prompt of the stack
  for (int64_t p = 0; p < num_prompts; ++p) {
    const int64_t length = prompt_lengths[static_cast<std::size_t>(p)];
    if (length < 0) throw Error(StrCat("per-row prompts: prompt ", p, " has ", length, " virtual tokens"));
    n = std::max(n, length);
  }
  const int64_t batch = static_cast<int64_t>(examples.size());
  int64_t width = 0;  // L
  for (const Example* example : examples) {
    width = std::max<int64_t>(width, static_cast<int64_t>(example->input_ids.size() + example->target_ids.size()));
  }
  const int64_t seq = n + width;

  std::vector<int64_t> input_ids(static_cast<std::size_t>(batch * width), 0);
  std::vector<int64_t> real_mask(static_cast<std::size_t>(batch * width), 0);
  std::vector<int64_t> attention_mask(static_cast<std::size_t>(batch * seq), 0);
  std::vector<int64_t> prompt_start(static_cast<std::size_t>(batch), 0);
  std::vector<int64_t> row_prompts(prompt_index);
  std::vector<int64_t> target_positions;
  std::vector<int64_t> target_ids;
  std::vector<int64_t> target_rows;
  std::vector<int64_t> target_prompts;

  PromptBatch out;
  out.num_virtual_tokens = n;
  out.padding = padding;
  out.prompt_lengths = prompt_lengths;
  for (int64_t row = 0; row < batch; ++row) {
    const Example& example = *examples[static_cast<std::size_t>(row)];
    const int64_t prompt = prompt_index[static_cast<std::size_t>(row)];
    if (prompt < 0 || prompt >= num_prompts) {
      throw Error(StrCat("per-row prompts: example at line ", example.line, " (row ", row, ") uses prompt ", prompt,
                         ", outside the stack of ", num_prompts, " prompts [0, ", num_prompts, ")"));
    }
    const int64_t unused = n - prompt_lengths[static_cast<std::size_t>(prompt)];
    const int64_t num_input = static_cast<int64_t>(example.input_ids.size());
    const int64_t length = num_input + static_cast<int64_t>(example.target_ids.size());
    out.num_real_tokens += length;
    // Column of the row's first real token; the prompt sits right before it
    // in the sequence, at [start + unused, start + N).
    const int64_t start = padding == Padding::kLeft ? width - length : 0;
    prompt_start[static_cast<std::size_t>(row)] = start + unused;
    for (int64_t j = 0; j < length; ++j) {
      const int64_t id = j < num_input ? example.input_ids[static_cast<std::size_t>(j)]
                                       : example.target_ids[static_cast<std::size_t>(j - num_input)];
      input_ids[static_cast<std::size_t>(row * width + start + j)] = id;
      real_mask[static_cast<std::size_t>(row * width + start + j)] = 1;
    }
    for (int64_t s = start + unused; s < start + n + length; ++s) {
      attention_mask[static_cast<std::size_t>(row * seq + s)] = 1;
    }
    // Target k sits at sequence index N + start + num_input + k; the hidden
    // state one position earlier predicts it.
    for (int64_t k = 0; k < static_cast<int64_t>(example.target_ids.size()); ++k) {
      const int64_t predictor = n + start + num_input + k - 1;
      if (predictor < start + unused) {
        throw Error(StrCat("example at line ", example.line,
                           ": no token precedes its target (empty input and no virtual tokens)"));
      }
      target_positions.push_back(row * seq + predictor);
      target_ids.push_back(example.target_ids[static_cast<std::size_t>(k)]);
      target_rows.push_back(row);
      target_prompts.push_back(prompt);
    }
  }

  out.input_ids = ToDevice(input_ids, batch, width, device);
  out.real_mask = ToDevice(real_mask, batch, width, device);
  out.attention_mask = ToDevice(attention_mask, batch, seq, device);
  out.position_ids = PositionIdsFromMask(out.attention_mask);
  out.prompt_start = ToDevice(prompt_start, device);
  out.prompt_index = ToDevice(row_prompts, device);
  out.target_positions = ToDevice(target_positions, device);
  out.target_ids = ToDevice(target_ids, device);
  out.target_rows = ToDevice(target_rows, device);
  out.target_prompts = ToDevice(target_prompts, device);
  return out;
}

torch::Tensor ComposeInputsEmbeds(const CausalLM& model, const torch::Tensor& prompt, const PromptBatch& batch) {
  const torch::Tensor tokens = model.EmbedTokens(batch.input_ids);  // [B, L, H]
  const int64_t n = batch.num_virtual_tokens;
  if (n == 0) return tokens;
  PS_CHECK(batch.prompt_lengths.size() <= 1, "batch laid out for ", batch.prompt_lengths.size(),
           " per-row prompts; pass the stack to ComposeInputsEmbeds");
  PS_CHECK(prompt.defined() && prompt.dim() == 2 && prompt.size(0) == n && prompt.size(1) == tokens.size(2),
           "prompt must be [", n, ", ", tokens.size(2), "], got ", prompt.defined() ? prompt.sizes() : c10::IntArrayRef{});
  const int64_t batch_size = tokens.size(0);
  const int64_t hidden = tokens.size(2);
  // .to() keeps the autograd edge to the float32 prompt (PEFT: prompts.to(inputs_embeds.dtype)).
  const torch::Tensor rows = prompt.to(tokens.device(), tokens.scalar_type()).unsqueeze(0).expand({batch_size, n, hidden});
  return PlacePromptRows(tokens, rows, batch);
}

torch::Tensor ComposeInputsEmbeds(const CausalLM& model, const std::vector<torch::Tensor>& prompts,
                                  const PromptBatch& batch) {
  const torch::Tensor tokens = model.EmbedTokens(batch.input_ids);  // [B, L, H]
  const int64_t hidden = tokens.size(2);
  if (prompts.size() != batch.prompt_lengths.size()) {
    throw Error(StrCat("per-row prompts: ", prompts.size(), " prompts given for a batch laid out for ",
                       batch.prompt_lengths.size()));
  }
  const int64_t n = batch.num_virtual_tokens;
  // Each prompt right-aligned in N slots (zeros first, as the unused slots
  // sit before the prompt), stacked [P, N, H], then one row per example.
  std::vector<torch::Tensor> slots;
  slots.reserve(prompts.size());
  for (std::size_t p = 0; p < prompts.size(); ++p) {
    const torch::Tensor& prompt = prompts[p];
    const int64_t expected = batch.prompt_lengths[p];
    if (!prompt.defined() && expected == 0) {
      slots.push_back(torch::zeros({n, hidden}, tokens.options()));
      continue;
    }
    if (!prompt.defined() || prompt.dim() != 2 || prompt.size(0) != expected || prompt.size(1) != hidden) {
      throw Error(StrCat("per-row prompts: prompt ", p, " is ",
                         prompt.defined() ? StrCat(prompt.sizes()) : std::string("undefined"), "; expected [",
                         expected, ", ", hidden, "] (its virtual tokens in the batch, the model's hidden size)"));
    }
    const torch::Tensor cast = prompt.to(tokens.device(), tokens.scalar_type());
    slots.push_back(expected == n ? cast : torch::cat({torch::zeros({n - expected, hidden}, tokens.options()), cast}));
  }
  if (n == 0) return tokens;
  const torch::Tensor rows = torch::stack(slots).index_select(0, batch.prompt_index);  // [B, N, H]
  return PlacePromptRows(tokens, rows, batch);
}

torch::Tensor TargetLogits(const CausalLM& model, const torch::Tensor& prompt, const PromptBatch& batch) {
  return LogitsAtTargets(model, ComposeInputsEmbeds(model, prompt, batch), batch);
}

torch::Tensor TargetLogits(const CausalLM& model, const std::vector<torch::Tensor>& prompts,
                           const PromptBatch& batch) {
  return LogitsAtTargets(model, ComposeInputsEmbeds(model, prompts, batch), batch);
}

torch::Tensor TargetLogProbs(const CausalLM& model, const torch::Tensor& prompt, const PromptBatch& batch) {
  return LogProbsOfTargets(TargetLogits(model, prompt, batch), batch);
}

torch::Tensor TargetLogProbs(const CausalLM& model, const std::vector<torch::Tensor>& prompts,
                             const PromptBatch& batch) {
  return LogProbsOfTargets(TargetLogits(model, prompts, batch), batch);
}

}  // namespace promptsweep
