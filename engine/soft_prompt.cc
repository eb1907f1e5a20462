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
  PS_CHECK(!examples.empty(), "MakePromptBatch needs at least one example");
  PS_CHECK(num_virtual_tokens >= 0, "num_virtual_tokens = ", num_virtual_tokens);
  const int64_t batch = static_cast<int64_t>(examples.size());
  const int64_t n = num_virtual_tokens;
  int64_t width = 0;  // L
  for (const Example* example : examples) {
    width = std::max<int64_t>(width, static_cast<int64_t>(example->input_ids.size() + example->target_ids.size()));
  }
  const int64_t seq = n + width;

  std::vector<int64_t> input_ids(static_cast<std::size_t>(batch * width), 0);
  std::vector<int64_t> real_mask(static_cast<std::size_t>(batch * width), 0);
  std::vector<int64_t> attention_mask(static_cast<std::size_t>(batch * seq), 0);
  std::vector<int64_t> prompt_start(static_cast<std::size_t>(batch), 0);
  std::vector<int64_t> target_positions;
  std::vector<int64_t> target_ids;
  std::vector<int64_t> target_rows;

  PromptBatch out;
  out.num_virtual_tokens = n;
  out.padding = padding;
  for (int64_t row = 0; row < batch; ++row) {
    const Example& example = *examples[static_cast<std::size_t>(row)];
    const int64_t num_input = static_cast<int64_t>(example.input_ids.size());
    const int64_t length = num_input + static_cast<int64_t>(example.target_ids.size());
    out.num_real_tokens += length;
    // Column of the row's first real token; the prompt sits right before it
    // in the sequence, at [start, start + N).
    const int64_t start = padding == Padding::kLeft ? width - length : 0;
    prompt_start[static_cast<std::size_t>(row)] = start;
    for (int64_t j = 0; j < length; ++j) {
      const int64_t id = j < num_input ? example.input_ids[static_cast<std::size_t>(j)]
                                       : example.target_ids[static_cast<std::size_t>(j - num_input)];
      input_ids[static_cast<std::size_t>(row * width + start + j)] = id;
      real_mask[static_cast<std::size_t>(row * width + start + j)] = 1;
    }
    for (int64_t s = start; s < start + n + length; ++s) attention_mask[static_cast<std::size_t>(row * seq + s)] = 1;
    // Target k sits at sequence index N + start + num_input + k; the hidden
    // state one position earlier predicts it.
    for (int64_t k = 0; k < static_cast<int64_t>(example.target_ids.size()); ++k) {
      const int64_t predictor = n + start + num_input + k - 1;
      if (predictor < start) {
        throw Error(StrCat("example at line ", example.line,
                           ": no token precedes its target (empty input and no virtual tokens)"));
      }
      target_positions.push_back(row * seq + predictor);
      target_ids.push_back(example.target_ids[static_cast<std::size_t>(k)]);
      target_rows.push_back(row);
    }
  }

  out.input_ids = ToDevice(input_ids, batch, width, device);
  out.real_mask = ToDevice(real_mask, batch, width, device);
  out.attention_mask = ToDevice(attention_mask, batch, seq, device);
  out.position_ids = PositionIdsFromMask(out.attention_mask);
  out.prompt_start = ToDevice(prompt_start, device);
  out.target_positions = ToDevice(target_positions, device);
  out.target_ids = ToDevice(target_ids, device);
  out.target_rows = ToDevice(target_rows, device);
  return out;
}

torch::Tensor ComposeInputsEmbeds(const CausalLM& model, const torch::Tensor& prompt, const PromptBatch& batch) {
  const torch::Tensor tokens = model.EmbedTokens(batch.input_ids);  // [B, L, H]
  const int64_t n = batch.num_virtual_tokens;
  if (n == 0) return tokens;
  PS_CHECK(prompt.defined() && prompt.dim() == 2 && prompt.size(0) == n && prompt.size(1) == tokens.size(2),
           "prompt must be [", n, ", ", tokens.size(2), "], got ", prompt.defined() ? prompt.sizes() : c10::IntArrayRef{});
  const int64_t batch_size = tokens.size(0);
  const int64_t hidden = tokens.size(2);
  // .to() keeps the autograd edge to the float32 prompt (PEFT: prompts.to(inputs_embeds.dtype)).
  const torch::Tensor rows = prompt.to(tokens.device(), tokens.scalar_type()).unsqueeze(0).expand({batch_size, n, hidden});
  if (batch.padding == Padding::kRight) return torch::cat({rows, tokens}, /*dim=*/1);

  // Left padding: token j already sits at N + j after the cat below; the
  // prompt overwrites [start, start + N), which holds only zeros and pads.
  const torch::Tensor padded = torch::cat({torch::zeros({batch_size, n, hidden}, tokens.options()), tokens}, 1);
  const torch::Tensor index =
      (batch.prompt_start.unsqueeze(1) + torch::arange(n, batch.prompt_start.options()).unsqueeze(0))
          .unsqueeze(2)
          .expand({batch_size, n, hidden});
  return padded.scatter(/*dim=*/1, index, rows);
}

torch::Tensor TargetLogits(const CausalLM& model, const torch::Tensor& prompt, const PromptBatch& batch) {
  const torch::Tensor embeds = ComposeInputsEmbeds(model, prompt, batch);
  const torch::Tensor hidden = model.Forward(embeds, batch.attention_mask, batch.position_ids);
  // Only the K positions that predict a target go through the LM head
  // (PEFT computes logits for all B * (N + L) positions).
  const torch::Tensor selected = hidden.reshape({-1, hidden.size(-1)}).index_select(0, batch.target_positions);
  return model.LmHead(selected).to(torch::kFloat32);
}

}  // namespace promptsweep
