// Evaluation of soft prompts (declared in engine/trainer.h): rank
// classification in one pass per example, generation loss and exact match,
// one or many prompts per batch.
#include <algorithm>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "common/error.h"
#include "engine/generate.h"
#include "engine/soft_prompt.h"
#include "engine/trainer.h"

namespace promptsweep {
namespace {

// Room past the reference for greedy decoding, which may spell it in more tokens.
constexpr int64_t kExactMatchSlackTokens = 4;

bool IsClassification(const TaskData& data) { return !data.label_ids.empty(); }

std::string Trim(const std::string& text) {
  const std::size_t begin = text.find_first_not_of(" \t\r\n");
  if (begin == std::string::npos) return "";
  const std::size_t end = text.find_last_not_of(" \t\r\n");
  return text.substr(begin, end - begin + 1);
}

// Whether greedy continuation `generated` (stop id removed) reproduces the
// example's target text (whitespace-trimmed). A target ending in a stop id
// must be the whole continuation (the model stopped right after it). Without
// one the model cannot end by itself, so a prefix of the continuation that
// decodes to the target counts (any prefix: the model may spell the text in
// other tokens than the reference's tokenization).
bool ExactMatch(const Tokenizer& tokenizer, const std::vector<int32_t>& generated, const Example& example,
                const std::vector<int64_t>& stop_ids) {
  const std::string reference = Trim(example.target_text);
  const bool must_stop = !example.target_ids.empty() &&
                         std::find(stop_ids.begin(), stop_ids.end(), example.target_ids.back()) != stop_ids.end();
  if (must_stop) return Trim(tokenizer.Decode(generated, /*skip_special_tokens=*/true)) == reference;
  std::vector<int32_t> prefix;
  for (std::size_t k = 0;; ++k) {
    if (Trim(tokenizer.Decode(prefix, /*skip_special_tokens=*/true)) == reference) return true;
    if (k == generated.size()) return false;
    prefix.push_back(generated[k]);
  }
}

}  // namespace

// --- Scoring and evaluation. ---

namespace {

// A CPU index list on `device`.
torch::Tensor IndexTensor(const std::vector<int64_t>& values, torch::Device device) {
  return torch::tensor(values, torch::kInt64).to(device);
}

// The prompts one evaluation batch runs under: a stack of P prompts and, per
// row, which one (per-row prompts of soft_prompt.h; a stack of one lays out
// and embeds exactly as the single-prompt calls).
struct RowPrompts {
  const std::vector<torch::Tensor>* prompts = nullptr;
  std::vector<int64_t> lengths;  // n_p of each prompt (0: the bare model)
  std::vector<int64_t> index;    // per row of the batch

  PromptBatch Batch(const std::vector<const Example*>& rows, Padding padding, torch::Device device) const {
    return MakePromptBatch(rows, lengths, index, padding, device);
  }
  torch::Tensor Embeds(const CausalLM& model, const PromptBatch& batch) const {
    return ComposeInputsEmbeds(model, *prompts, batch);
  }
  torch::Tensor LogProbs(const CausalLM& model, const PromptBatch& batch) const {
    return TargetLogProbs(model, *prompts, batch);
  }
};

// LabelScoresPerRow and LabelScoresSharedPrefix both return rank
// classification's scores [B, labels], float64 on the CPU: each label's summed
// log-probability (float32 log-softmax) after each row's input.

// The reference path: one row per (example, label), the input followed by
// the label's words, so the input runs once per label.
torch::Tensor LabelScoresPerRow(const CausalLM& model, const torch::Tensor& prompt,
                                const std::vector<const Example*>& examples,
                                const std::vector<std::vector<int32_t>>& label_ids, int64_t num_virtual) {
  const int64_t num_labels = static_cast<int64_t>(label_ids.size());
  std::vector<Example> rows;
  rows.reserve(examples.size() * label_ids.size());
  for (const Example* example : examples) {
    for (const std::vector<int32_t>& words : label_ids) {
      Example row;
      row.input_ids = example->input_ids;
      row.target_ids = words;
      row.line = example->line;
      rows.push_back(std::move(row));
    }
  }
  std::vector<const Example*> row_pointers;
  for (const Example& row : rows) row_pointers.push_back(&row);
  const PromptBatch batch = MakePromptBatch(row_pointers, num_virtual, Padding::kRight, model.device());
  const torch::Tensor log_probs = TargetLogProbs(model, prompt, batch).to(torch::kCPU, torch::kFloat64);
  return torch::zeros({static_cast<int64_t>(rows.size())}, torch::kFloat64)
      .index_add_(0, batch.target_rows.to(torch::kCPU), log_probs)
      .view({static_cast<int64_t>(examples.size()), num_labels});
}

// One pass over the inputs (right-padded, no label words): every label's
// first token is scored from the logits at the row's last input position,
// the only position that goes through the LM head. Labels of 2+ tokens then
// run as suffix rows (row, label) on the input's KV cache expanded per
// label, all in one batched forward: the suffix attends the input's real
// positions only (its pads and unused prompt slots are masked), and its
// positions continue from the input's real length (PositionIdsFromMask over
// past + suffix), exactly where the label's words sit in a per-label row.
torch::Tensor LabelScoresSharedPrefix(const CausalLM& model, const RowPrompts& prompts,
                                      const std::vector<const Example*>& examples,
                                      const std::vector<std::vector<int32_t>>& label_ids) {
  const torch::Device device = model.device();
  const int64_t batch_size = static_cast<int64_t>(examples.size());
  const int64_t num_labels = static_cast<int64_t>(label_ids.size());
  std::vector<Example> inputs(examples.size());
  std::vector<const Example*> input_pointers;
  for (std::size_t i = 0; i < examples.size(); ++i) {
    inputs[i].input_ids = examples[i]->input_ids;
    inputs[i].line = examples[i]->line;
    input_pointers.push_back(&inputs[i]);
  }
  const PromptBatch batch = prompts.Batch(input_pointers, Padding::kRight, device);
  const int64_t num_virtual = batch.num_virtual_tokens;  // the longest prompt; real token j at N + j
  const int64_t seq = batch.attention_mask.size(1);       // N + longest input
  std::vector<int64_t> last_positions;                    // flat indices into [B * seq]
  for (int64_t b = 0; b < batch_size; ++b) {
    const Example& example = *examples[static_cast<std::size_t>(b)];
    const int64_t own_prompt = prompts.lengths[static_cast<std::size_t>(prompts.index[b])];
    if (own_prompt + static_cast<int64_t>(example.input_ids.size()) == 0) {
      throw Error(StrCat("example at line ", example.line,
                         ": no token precedes its target (empty input and no virtual tokens)"));
    }
    last_positions.push_back(b * seq + num_virtual + static_cast<int64_t>(example.input_ids.size()) - 1);
  }
  std::vector<int64_t> first_ids;
  std::vector<int64_t> long_labels;  // labels of 2+ tokens
  int64_t suffix_length = 0;         // the longest label's tokens after its first
  for (int64_t l = 0; l < num_labels; ++l) {
    const std::vector<int32_t>& words = label_ids[static_cast<std::size_t>(l)];
    first_ids.push_back(words.front());
    if (words.size() < 2) continue;
    long_labels.push_back(l);
    suffix_length = std::max<int64_t>(suffix_length, static_cast<int64_t>(words.size()) - 1);
  }

  KvCache cache;
  const torch::Tensor hidden = model.Forward(prompts.Embeds(model, batch), batch.attention_mask, batch.position_ids,
                                             suffix_length > 0 ? &cache : nullptr);
  const int64_t hidden_size = hidden.size(-1);
  const torch::Tensor last_hidden =
      hidden.reshape({-1, hidden_size}).index_select(0, IndexTensor(last_positions, device));
  // float32 log-softmax, as TargetLogProbs (TargetLogits returns float32).
  const torch::Tensor first_log_probs = torch::log_softmax(model.LmHead(last_hidden).to(torch::kFloat32), -1);
  torch::Tensor scores = first_log_probs.index_select(1, IndexTensor(first_ids, device)).to(torch::kFloat64);
  if (suffix_length == 0) return scores.to(torch::kCPU);

  // Suffix row (b, m) for the m-th long label l: its tokens 0 .. len-2 as
  // input, right-padded to suffix_length; token j predicts token j + 1.
  const int64_t num_long = static_cast<int64_t>(long_labels.size());
  const int64_t num_rows = batch_size * num_long;
  std::vector<int64_t> row_example(static_cast<std::size_t>(num_rows));
  std::vector<int64_t> suffix_ids(static_cast<std::size_t>(num_rows * suffix_length), 0);
  std::vector<int64_t> suffix_mask(static_cast<std::size_t>(num_rows * suffix_length), 0);
  std::vector<int64_t> predictors;  // flat indices into [num_rows * suffix_length]
  std::vector<int64_t> targets;     // the token each predicts
  std::vector<int64_t> slots;       // flat indices into scores [B * labels]
  for (int64_t b = 0; b < batch_size; ++b) {
    for (int64_t m = 0; m < num_long; ++m) {
      const int64_t label = long_labels[static_cast<std::size_t>(m)];
      const std::vector<int32_t>& words = label_ids[static_cast<std::size_t>(label)];
      const int64_t row = b * num_long + m;
      row_example[static_cast<std::size_t>(row)] = b;
      for (int64_t j = 0; j + 1 < static_cast<int64_t>(words.size()); ++j) {
        const int64_t flat = row * suffix_length + j;
        suffix_ids[static_cast<std::size_t>(flat)] = words[static_cast<std::size_t>(j)];
        suffix_mask[static_cast<std::size_t>(flat)] = 1;
        predictors.push_back(flat);
        targets.push_back(words[static_cast<std::size_t>(j + 1)]);
        slots.push_back(b * num_labels + label);
      }
    }
  }
  const torch::Tensor source = IndexTensor(row_example, device);
  KvCache expanded;
  for (std::size_t layer = 0; layer < cache.keys.size(); ++layer) {
    expanded.keys.push_back(cache.keys[layer].index_select(0, source));
    expanded.values.push_back(cache.values[layer].index_select(0, source));
  }
  const torch::Tensor mask =
      torch::cat({batch.attention_mask.index_select(0, source),
                  IndexTensor(suffix_mask, device).view({num_rows, suffix_length})},
                 /*dim=*/1);
  const torch::Tensor suffix_hidden =
      model.Forward(model.EmbedTokens(IndexTensor(suffix_ids, device).view({num_rows, suffix_length})), mask,
                    PositionIdsFromMask(mask, /*past_length=*/seq), &expanded);
  const torch::Tensor logits =
      model.LmHead(suffix_hidden.reshape({-1, hidden_size}).index_select(0, IndexTensor(predictors, device)))
          .to(torch::kFloat32);
  const torch::Tensor log_probs =
      torch::log_softmax(logits, -1).gather(1, IndexTensor(targets, device).unsqueeze(1)).squeeze(1);
  scores = scores.reshape({-1}).index_add(0, IndexTensor(slots, device), log_probs.to(torch::kFloat64));
  return scores.view({batch_size, num_labels}).to(torch::kCPU);
}

// Per prompt: summed loss, target tokens, correct predictions, examples.
struct EvalSums {
  double loss = 0;
  double target_tokens = 0;
  double correct = 0;
  double examples = 0;
};

}  // namespace

std::vector<EvalResult> EvaluatePrompts(const CausalLM& model, const Tokenizer& tokenizer,
                                        const std::vector<torch::Tensor>& prompts, const TaskData& data,
                                        const EvalOptions& options, Collective& collective) {
  PS_CHECK(options.batch_size >= 1, "eval batch size ", options.batch_size);
  PS_CHECK(!prompts.empty(), "EvaluatePrompts needs at least one prompt");
  torch::NoGradGuard no_grad;
  const bool classification = IsClassification(data);
  const int64_t num_prompts = static_cast<int64_t>(prompts.size());
  const int64_t num_labels = static_cast<int64_t>(data.label_ids.size());
  // Empty label words (only a hand-made TaskData has them) score 0 on the reference path.
  const bool per_label_rows =
      options.per_label_rows || std::any_of(data.label_ids.begin(), data.label_ids.end(),
                                            [](const std::vector<int32_t>& words) { return words.empty(); });
  if (classification && per_label_rows && num_prompts > 1) {
    // The reference path scores one prompt at a time.
    std::vector<EvalResult> results;
    for (const torch::Tensor& prompt : prompts) {
      results.push_back(EvaluatePrompt(model, tokenizer, prompt, data, options, collective));
    }
    return results;
  }
  RowPrompts rows;
  rows.prompts = &prompts;
  for (const torch::Tensor& prompt : prompts) rows.lengths.push_back(prompt.defined() ? prompt.size(0) : 0);
  const ShardRange shard = ShardOf(static_cast<int64_t>(data.examples.size()), collective.rank(), collective.size());

  // Rows are (example, prompt) pairs of this rank's shard, options.batch_size
  // rows per forward. A batch is as wide as its longest prompt plus its
  // longest input, so: prompts of one length together (mixing 4 and 32
  // virtual tokens would pad every row to 32), and within a length the
  // examples from short to long input, each with all of that length's prompts.
  std::vector<int64_t> by_input_length;
  for (int64_t i = shard.begin; i < shard.end; ++i) by_input_length.push_back(i);
  std::stable_sort(by_input_length.begin(), by_input_length.end(), [&](int64_t a, int64_t b) {
    return data.examples[static_cast<std::size_t>(a)].input_ids.size() <
           data.examples[static_cast<std::size_t>(b)].input_ids.size();
  });
  std::vector<int64_t> by_length(prompts.size());
  for (int64_t p = 0; p < num_prompts; ++p) by_length[static_cast<std::size_t>(p)] = p;
  std::stable_sort(by_length.begin(), by_length.end(), [&](int64_t a, int64_t b) {
    return rows.lengths[static_cast<std::size_t>(a)] < rows.lengths[static_cast<std::size_t>(b)];
  });
  std::vector<std::pair<int64_t, int64_t>> order;  // (example, prompt)
  order.reserve(static_cast<std::size_t>(shard.Size() * num_prompts));
  for (std::size_t group = 0; group < by_length.size();) {
    std::size_t group_end = group;
    while (group_end < by_length.size() && rows.lengths[static_cast<std::size_t>(by_length[group_end])] ==
                                               rows.lengths[static_cast<std::size_t>(by_length[group])]) {
      ++group_end;
    }
    for (const int64_t i : by_input_length) {
      for (std::size_t k = group; k < group_end; ++k) order.emplace_back(i, by_length[k]);
    }
    group = group_end;
  }
  std::vector<EvalSums> sums(prompts.size());
  const int64_t num_rows = static_cast<int64_t>(order.size());
  for (int64_t begin = 0; begin < num_rows; begin += options.batch_size) {
    const int64_t end = std::min(begin + options.batch_size, num_rows);
    std::vector<const Example*> examples;
    rows.index.clear();
    for (int64_t r = begin; r < end; ++r) {
      const auto [example, prompt] = order[static_cast<std::size_t>(r)];
      examples.push_back(&data.examples[static_cast<std::size_t>(example)]);
      rows.index.push_back(prompt);
    }
    if (classification) {
      const torch::Tensor scores =
          per_label_rows ? LabelScoresPerRow(model, prompts.front(), examples, data.label_ids, rows.lengths.front())
                         : LabelScoresSharedPrefix(model, rows, examples, data.label_ids);
      const torch::Tensor predictions = scores.argmax(/*dim=*/1);
      const auto score = scores.accessor<double, 2>();
      const auto predicted = predictions.accessor<int64_t, 1>();
      for (std::size_t i = 0; i < examples.size(); ++i) {
        const int64_t label = examples[i]->label_index;
        PS_CHECK(label >= 0 && label < num_labels, "label index ", label, " at line ", examples[i]->line);
        EvalSums& sum = sums[static_cast<std::size_t>(rows.index[i])];
        sum.loss -= score[static_cast<int64_t>(i)][label];
        sum.target_tokens += static_cast<double>(data.label_ids[static_cast<std::size_t>(label)].size());
        sum.correct += predicted[static_cast<int64_t>(i)] == label ? 1 : 0;
        sum.examples += 1;
      }
    } else {
      const PromptBatch batch = rows.Batch(examples, Padding::kRight, model.device());
      const torch::Tensor row_loss =
          torch::zeros({static_cast<int64_t>(examples.size())}, torch::kFloat64)
              .index_add_(0, batch.target_rows.to(torch::kCPU),
                          -rows.LogProbs(model, batch).to(torch::kCPU, torch::kFloat64));
      const auto loss = row_loss.accessor<double, 1>();
      for (std::size_t i = 0; i < examples.size(); ++i) {
        EvalSums& sum = sums[static_cast<std::size_t>(rows.index[i])];
        sum.loss += loss[static_cast<int64_t>(i)];
        sum.target_tokens += static_cast<double>(examples[i]->target_ids.size());
        sum.examples += 1;
      }
      if (options.exact_match) {
        std::vector<std::vector<int32_t>> inputs;
        GenerateOptions generate;
        generate.max_new_tokens = 0;
        generate.stop_ids = options.stop_ids;
        for (const Example* example : examples) {
          inputs.push_back(example->input_ids);
          // Room past the reference: greedy decoding may spell it in more tokens.
          generate.max_new_tokens = std::max<int64_t>(
              generate.max_new_tokens, static_cast<int64_t>(example->target_ids.size()) + kExactMatchSlackTokens);
        }
        const std::vector<std::vector<int32_t>> outputs = Generate(model, prompts, rows.index, inputs, generate);
        for (std::size_t i = 0; i < examples.size(); ++i) {
          sums[static_cast<std::size_t>(rows.index[i])].correct +=
              ExactMatch(tokenizer, outputs[i], *examples[i], options.stop_ids) ? 1 : 0;
        }
      }
    }
  }

  torch::Tensor totals = torch::zeros({num_prompts, 4}, torch::kFloat64);
  for (int64_t p = 0; p < num_prompts; ++p) {
    const EvalSums& sum = sums[static_cast<std::size_t>(p)];
    totals[p] = torch::tensor({sum.loss, sum.target_tokens, sum.correct, sum.examples}, torch::kFloat64);
  }
  collective.AllReduceSum(totals);
  const auto t = totals.accessor<double, 2>();
  std::vector<EvalResult> results;
  for (int64_t p = 0; p < num_prompts; ++p) {
    EvalResult result;
    result.num_examples = static_cast<int64_t>(t[p][3]);
    result.num_target_tokens = static_cast<int64_t>(t[p][1]);
    result.loss = t[p][1] > 0 ? t[p][0] / t[p][1] : 0.0;
    const double n = std::max(1.0, t[p][3]);
    if (classification) result.accuracy = t[p][2] / n;
    else if (options.exact_match) result.exact_match = t[p][2] / n;
    results.push_back(result);
  }
  return results;
}

EvalResult EvaluatePrompt(const CausalLM& model, const Tokenizer& tokenizer, const torch::Tensor& prompt,
                          const TaskData& data, const EvalOptions& options, Collective& collective) {
  return EvaluatePrompts(model, tokenizer, std::vector<torch::Tensor>{prompt}, data, options, collective).front();
}

}  // namespace promptsweep
