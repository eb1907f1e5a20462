// Task datasets: JSONL files of examples, turned into token ids.
//   generation:      {"input": "...", "target": "..."}
//   classification:  {"text": "...", "label": "..."} + a template ("{text}\nLabel:")
//                    and a verbalizer (label -> words, e.g. spam -> " spam")
// Malformed lines are errors naming file:line and the problem (JSON syntax
// errors with file:line:column).
//
// Conventions:
//   - Templates: "{field}" is the line's JSON string field `field` ({{ and }}
//     are literal braces); a field the template names must be a string.
//     Templates may not use {target} / {label} (that would show the answer).
//   - Labels: a string label is looked up as is; a number or true/false by its
//     JSON text (1 -> "1"), so `label: 1` and `label: "1"` both match the
//     verbalizer key "1".
//   - Verbalizer words are tokenized verbatim, without special tokens: write
//     the leading space the text after the template would have (" spam" after
//     "Label:"), because "spam" and " spam" are different tokens.
//   - Targets (generation) are Encode(target, add_special_tokens=false), plus
//     eos_token_id when set.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "common/tokenizer.h"

namespace promptsweep {

enum class TaskKind { kGeneration, kClassification };

struct TaskSpec {
  TaskKind kind = TaskKind::kClassification;
  // Placeholders are JSON string fields of a line: "{text}", "{input}", ...
  // Default: "{input}" (generation) / "{text}" (classification) when empty.
  std::string template_text;
  // Classification: label value (as in the file) -> verbalizer words, in a fixed
  // order that defines the label indices.
  std::vector<std::pair<std::string, std::string>> verbalizer;
  // Max tokens of input + target (virtual tokens excluded). Longer examples
  // lose the end of their longest template field, never the target or the
  // rest of the template.
  int64_t max_length = 256;
  // Add the tokenizer's special tokens (e.g. Llama 3 BOS) to the input.
  bool add_special_tokens = true;
  // Generation: appended to each target so the model learns to stop.
  std::optional<int32_t> eos_token_id;
};

struct Example {
  std::vector<int32_t> input_ids;
  std::vector<int32_t> target_ids;
  int64_t label_index = -1;  // classification: index into TaskSpec::verbalizer
  std::string target_text;   // generation: the reference for exact match
  int64_t line = 0;          // 1-based line in the source file
};

struct TaskData {
  std::string path;
  std::vector<Example> examples;
  // Classification: token ids of each verbalizer entry (what rank
  // classification scores), same order as TaskSpec::verbalizer.
  std::vector<std::vector<int32_t>> label_ids;
};

// `text` as the input of one example: the task's template with its input
// field ({text} for classification, {input} for generation) set to `text`
// (what `generate` feeds an adapter trained with a template). Error when the
// template names another field.
std::string FormatInput(const TaskSpec& spec, const std::string& text);

// Reads and tokenizes a JSONL file. Blank lines are skipped.
TaskData LoadTaskData(const std::string& path, const TaskSpec& spec, const Tokenizer& tokenizer);

// The label that appears most often (majority-class baseline), and its share.
std::pair<int64_t, double> MajorityLabel(const TaskData& data);

}  // namespace promptsweep
