#include "engine/generate.h"

#include <ATen/CPUGeneratorImpl.h>

#include <algorithm>

#include "common/error.h"
#include "common/task_data.h"
#include "engine/soft_prompt.h"

namespace promptsweep {
namespace {

void ValidateOptions(const GenerateOptions& options) {
  if (options.max_new_tokens < 0) {
    throw Error(StrCat("generation: max_new_tokens must be >= 0, found ", options.max_new_tokens));
  }
  if (!(options.temperature >= 0.0)) {
    throw Error(StrCat("generation: temperature must be >= 0 (0 = greedy), found ", options.temperature));
  }
  if (!(options.top_p > 0.0 && options.top_p <= 1.0)) {
    throw Error(StrCat("generation: top_p must be in (0, 1], found ", options.top_p));
  }
}

// Next token of every row from float32 logits [B, V]. Sampling follows
// transformers' order: logits / temperature, then top-p keeps the smallest set
// of most likely tokens whose probability reaches top_p (at least one), then a
// draw from the renormalised distribution. Draws use a CPU generator so a seed
// means the same tokens on every device.
torch::Tensor NextTokens(const torch::Tensor& logits, const GenerateOptions& options, at::Generator& generator) {
  if (options.temperature == 0.0) return logits.argmax(/*dim=*/-1);
  const torch::Tensor probs = torch::softmax(logits.to(torch::kCPU, torch::kFloat32) / options.temperature, -1);
  torch::Tensor filtered = probs;
  if (options.top_p < 1.0) {
    const auto [sorted, order] = probs.sort(/*dim=*/-1, /*descending=*/true);
    // Mass strictly before each token; a token is kept while that is < top_p,
    // so the first token always stays.
    const torch::Tensor before = sorted.cumsum(-1) - sorted;
    const torch::Tensor drop_sorted = before >= options.top_p;
    const torch::Tensor drop = torch::zeros_like(drop_sorted).scatter(-1, order, drop_sorted);
    filtered = probs.masked_fill(drop, 0.0);
  }
  return torch::multinomial(filtered, /*num_samples=*/1, /*replacement=*/false, generator)
      .squeeze(-1)
      .to(logits.device());
}

}  // namespace

std::vector<std::vector<int32_t>> Generate(const CausalLM& model, const torch::Tensor& prompt,
                                           const std::vector<std::vector<int32_t>>& inputs,
                                           const GenerateOptions& options) {
  // A stack of one prompt gives the same embeddings value for value, so the
  // same tokens as a dedicated single-prompt path would.
  return Generate(model, std::vector<torch::Tensor>{prompt}, std::vector<int64_t>(inputs.size(), 0), inputs,
                  options);
}

std::vector<std::vector<int32_t>> Generate(const CausalLM& model, const std::vector<torch::Tensor>& prompts,
                                           const std::vector<int64_t>& prompt_index,
                                           const std::vector<std::vector<int32_t>>& inputs,
                                           const GenerateOptions& options) {
  ValidateOptions(options);
  if (prompt_index.size() != inputs.size()) {
    throw Error(StrCat("generation: ", prompt_index.size(), " prompt indices for ", inputs.size(),
                       " inputs; give one index per input"));
  }
  std::vector<std::vector<int32_t>> outputs(inputs.size());
  if (inputs.empty() || options.max_new_tokens == 0) return outputs;

  std::vector<int64_t> prompt_lengths;
  for (const torch::Tensor& prompt : prompts) prompt_lengths.push_back(prompt.defined() ? prompt.size(0) : 0);
  std::vector<Example> examples(inputs.size());
  std::vector<const Example*> rows;
  int64_t worst_virtual = 0;  // the row reaching the highest position
  int64_t worst_input = 0;
  for (std::size_t i = 0; i < inputs.size(); ++i) {
    const int64_t p = prompt_index[i];
    if (p < 0 || p >= static_cast<int64_t>(prompts.size())) {
      throw Error(StrCat("generation: input ", i, " uses prompt ", p, ", outside the stack of ", prompts.size(),
                         " prompts"));
    }
    const int64_t n = prompt_lengths[static_cast<std::size_t>(p)];
    if (inputs[i].empty() && n == 0) {
      throw Error(StrCat("generation: input ", i, " is empty and there is no soft prompt to continue from"));
    }
    examples[i].input_ids = inputs[i];
    examples[i].line = static_cast<int64_t>(i);
    rows.push_back(&examples[i]);
    const int64_t length = static_cast<int64_t>(inputs[i].size());
    if (n + length > worst_virtual + worst_input) {
      worst_virtual = n;
      worst_input = length;
    }
  }
  const int64_t max_positions = model.config().max_position_embeddings;
  if (worst_virtual + worst_input + options.max_new_tokens > max_positions) {
    throw Error(StrCat("generation: ", worst_virtual, " virtual + ", worst_input, " input + ", options.max_new_tokens,
                       " new tokens exceed the model's max_position_embeddings (",
                       max_positions, "); shorten the inputs or lower max_new_tokens"));
  }

  torch::NoGradGuard no_grad;
  const torch::Device device = model.device();
  // Left padding: every row's last real token is the last column, so one
  // slice gives the logits of all rows, and new tokens append in lockstep.
  const PromptBatch batch = MakePromptBatch(rows, prompt_lengths, prompt_index, Padding::kLeft, device);
  const int64_t batch_size = batch.input_ids.size(0);
  KvCache cache;
  torch::Tensor attention_mask = batch.attention_mask;
  torch::Tensor hidden =
      model.Forward(ComposeInputsEmbeds(model, prompts, batch), attention_mask, batch.position_ids, &cache);

  at::Generator generator = at::detail::createCPUGenerator(options.seed);
  std::vector<bool> finished(inputs.size(), false);
  int64_t num_finished = 0;
  for (int64_t step = 0; step < options.max_new_tokens; ++step) {
    const torch::Tensor logits = model.LmHead(hidden.select(/*dim=*/1, hidden.size(1) - 1)).to(torch::kFloat32);
    torch::Tensor next = NextTokens(logits, options, generator);
    const torch::Tensor next_cpu = next.to(torch::kCPU, torch::kInt64);
    const int64_t* ids = next_cpu.data_ptr<int64_t>();
    std::vector<int64_t> alive(inputs.size(), 0);
    for (std::size_t i = 0; i < inputs.size(); ++i) {
      if (finished[i]) continue;
      const int64_t id = ids[i];
      if (std::find(options.stop_ids.begin(), options.stop_ids.end(), id) != options.stop_ids.end()) {
        finished[i] = true;
        ++num_finished;
        continue;
      }
      outputs[i].push_back(static_cast<int32_t>(id));
      alive[i] = 1;
    }
    if (num_finished == batch_size || step + 1 == options.max_new_tokens) break;

    // Finished rows are fed a pad (id 0) that no later position attends to;
    // their outputs are no longer read.
    const torch::Tensor alive_tensor = torch::tensor(alive, torch::kInt64).to(device).unsqueeze(1);
    next = next.unsqueeze(1) * alive_tensor;
    attention_mask = torch::cat({attention_mask, alive_tensor.to(attention_mask.scalar_type())}, /*dim=*/1);
    // Position = number of real tokens before this one (prompt included; the
    // unused slots of a shorter prompt are masked, so not counted), as
    // PositionIdsFromMask gives for the last column of an unfinished row.
    const torch::Tensor positions = attention_mask.sum(/*dim=*/1, /*keepdim=*/true) - 1;
    hidden = model.Forward(model.EmbedTokens(next), attention_mask, positions, &cache);
  }
  return outputs;
}

}  // namespace promptsweep
