#include "common/task_data.h"

#include <algorithm>
#include <cstddef>
#include <fstream>
#include <map>
#include <string_view>

#include "common/error.h"
#include "common/json_util.h"

namespace promptsweep {
namespace {

// A template split once into literal text and placeholders.
struct TemplatePart {
  bool is_field = false;
  std::string text;  // literal text, or the field name
};

std::string_view TargetField(TaskKind kind) {
  return kind == TaskKind::kGeneration ? "target" : "label";
}

// "{name}" placeholders; "{{" and "}}" are literal braces (Python's
// str.format convention, so templates copied from Python scripts work).
std::vector<TemplatePart> ParseTemplate(const std::string& text, TaskKind kind) {
  auto fail = [&](const std::string& problem) -> void {
    throw Error(StrCat("task template \"", text, "\": ", problem,
                       " (placeholders are {field}; write {{ and }} for literal braces)"));
  };
  std::vector<TemplatePart> parts;
  std::string literal;
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (c == '}') {
      if (i + 1 < text.size() && text[i + 1] == '}') {
        literal += '}';
        ++i;
        continue;
      }
      fail(StrCat("unmatched '}' at character ", i + 1));
    }
    if (c != '{') {
      literal += c;
      continue;
    }
    if (i + 1 < text.size() && text[i + 1] == '{') {
      literal += '{';
      ++i;
      continue;
    }
    const std::size_t close = text.find('}', i + 1);
    if (close == std::string::npos) fail(StrCat("'{' at character ", i + 1, " is never closed"));
    const std::string name = text.substr(i + 1, close - i - 1);
    const bool valid = !name.empty() && std::all_of(name.begin(), name.end(), [](char ch) {
      return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') || ch == '_';
    });
    if (!valid) fail(StrCat("placeholder {", name, "} is not a field name (letters, digits, _)"));
    if (name == TargetField(kind)) {
      fail(StrCat("placeholder {", name, "} would put the answer into the input"));
    }
    if (!literal.empty()) parts.push_back({false, std::move(literal)});
    literal.clear();
    parts.push_back({true, name});
    i = close;
  }
  if (!literal.empty()) parts.push_back({false, std::move(literal)});
  if (std::none_of(parts.begin(), parts.end(), [](const TemplatePart& p) { return p.is_field; })) {
    fail("no placeholder: every example would have the same input");
  }
  return parts;
}

std::string Render(const std::vector<TemplatePart>& parts, const std::map<std::string, std::string>& fields) {
  std::string out;
  for (const TemplatePart& part : parts) out += part.is_field ? fields.at(part.text) : part.text;
  return out;
}

// Byte offset of every code point start in `text`, plus text.size() at the
// end: prefix k (in characters) is text.substr(0, offsets[k]).
std::vector<std::size_t> CodePointOffsets(const std::string& text) {
  std::vector<std::size_t> offsets;
  for (std::size_t i = 0; i < text.size(); ++i) {
    if ((static_cast<unsigned char>(text[i]) & 0xC0) != 0x80) offsets.push_back(i);
  }
  offsets.push_back(text.size());
  return offsets;
}

// The label as the verbalizer keys spell it: a string as is, any other scalar
// by its JSON text (1 -> "1", true -> "true").
std::string LabelKey(const nlohmann::json& value) {
  return value.is_string() ? value.get<std::string>() : value.dump();
}

// Everything about one task that does not depend on the line.
class ExampleBuilder {
 public:
  ExampleBuilder(const std::string& path, const TaskSpec& spec, const Tokenizer& tokenizer)
      : path_(path), spec_(spec), tokenizer_(tokenizer) {
    if (spec.max_length <= 0) {
      throw Error(StrCat(path, ": max_length must be positive, found ", spec.max_length));
    }
    const std::string default_template = spec.kind == TaskKind::kGeneration ? "{input}" : "{text}";
    template_ = ParseTemplate(spec.template_text.empty() ? default_template : spec.template_text, spec.kind);
    if (spec.kind == TaskKind::kClassification) BuildVerbalizer();
  }

  const std::vector<std::vector<int32_t>>& label_ids() const { return label_ids_; }

  Example Build(const std::string& line_text, int64_t line) const {
    const nlohmann::json json = ParseLine(line_text, line);
    if (!json.is_object()) Fail(line, StrCat("expected a JSON object, found ", DescribeJson(json)));

    Example example;
    example.line = line;
    if (spec_.kind == TaskKind::kGeneration) {
      example.target_text = StringField(json, "target", line, "the answer to learn");
      example.target_ids = tokenizer_.Encode(example.target_text, /*add_special_tokens=*/false);
      if (spec_.eos_token_id) example.target_ids.push_back(*spec_.eos_token_id);
      if (example.target_ids.empty()) Fail(line, "field 'target' is empty");
    } else {
      const auto it = json.find("label");
      if (it == json.end() || it->is_null()) Fail(line, "missing field 'label'");
      if (it->is_object() || it->is_array()) {
        Fail(line, StrCat("field 'label': expected a string or a number, found ", DescribeJson(*it)));
      }
      const std::string key = LabelKey(*it);
      const auto label = label_index_.find(key);
      if (label == label_index_.end()) {
        Fail(line, StrCat("label \"", key, "\" is not in the verbalizer (", VerbalizerKeys(),
                          "); add it to the verbalizer or fix the line"));
      }
      example.label_index = label->second;
      example.target_ids = label_ids_[label->second];
    }

    std::map<std::string, std::string> fields;
    for (const TemplatePart& part : template_) {
      if (part.is_field && !fields.count(part.text)) {
        fields[part.text] = StringField(json, part.text, line, StrCat("used by the template as {", part.text, "}"));
      }
    }
    example.input_ids = FitInput(&fields, static_cast<int64_t>(example.target_ids.size()), line);
    return example;
  }

 private:
  [[noreturn]] void Fail(int64_t line, const std::string& problem) const {
    throw Error(StrCat(path_, ":", line, ": ", problem));
  }

  // ParseJson reports "where:1:col" for a one-line text; the line number of
  // the file replaces that 1.
  nlohmann::json ParseLine(const std::string& text, int64_t line) const {
    try {
      return ParseJson(text, path_);
    } catch (const Error& e) {
      const std::string message = e.what();
      const std::string one_line_prefix = path_ + ":1:";
      if (message.rfind(one_line_prefix, 0) == 0) {
        throw Error(StrCat(path_, ":", line, ":", message.substr(one_line_prefix.size())));
      }
      throw Error(StrCat(path_, ":", line, ": ", message));
    }
  }

  std::string StringField(const nlohmann::json& json, const std::string& key, int64_t line,
                          const std::string& role) const {
    const auto it = json.find(key);
    if (it == json.end() || it->is_null()) Fail(line, StrCat("missing field '", key, "' (", role, ")"));
    if (!it->is_string()) {
      Fail(line, StrCat("field '", key, "': expected a string, found ", DescribeJson(*it)));
    }
    return it->get<std::string>();
  }

  void BuildVerbalizer() {
    if (spec_.verbalizer.empty()) {
      throw Error(StrCat(path_, ": a classification task needs a verbalizer (label -> words)"));
    }
    for (const auto& [label, words] : spec_.verbalizer) {
      if (!label_index_.emplace(label, static_cast<int64_t>(label_ids_.size())).second) {
        throw Error(StrCat(path_, ": verbalizer lists label \"", label, "\" twice"));
      }
      // Verbatim: " spam" and "spam" are different tokens after "Label:".
      std::vector<int32_t> ids = tokenizer_.Encode(words, /*add_special_tokens=*/false);
      if (ids.empty()) {
        throw Error(StrCat(path_, ": verbalizer words for label \"", label, "\" are empty"));
      }
      label_ids_.push_back(std::move(ids));
    }
  }

  std::string VerbalizerKeys() const {
    std::string keys;
    for (const auto& entry : spec_.verbalizer) keys += (keys.empty() ? "\"" : ", \"") + entry.first + "\"";
    return StrCat("labels: ", keys);
  }

  std::vector<int32_t> Encode(const std::map<std::string, std::string>& fields) const {
    return tokenizer_.Encode(Render(template_, fields), spec_.add_special_tokens);
  }

  // Input ids of the rendered template; when input + target exceed
  // max_length, the end of the longest field is cut (the largest prefix, in
  // characters, that fits), so the template text and the target survive.
  std::vector<int32_t> FitInput(std::map<std::string, std::string>* fields, int64_t target_length,
                                int64_t line) const {
    const int64_t budget = spec_.max_length - target_length;
    std::vector<int32_t> ids = Encode(*fields);
    if (static_cast<int64_t>(ids.size()) <= budget) return ids;

    std::string longest;
    std::size_t longest_chars = 0;
    std::vector<std::size_t> offsets;
    for (const TemplatePart& part : template_) {  // template order breaks ties
      if (!part.is_field) continue;
      std::vector<std::size_t> field_offsets = CodePointOffsets(fields->at(part.text));
      if (longest.empty() || field_offsets.size() - 1 > longest_chars) {
        longest = part.text;
        longest_chars = field_offsets.size() - 1;
        offsets = std::move(field_offsets);
      }
    }
    const std::string full = fields->at(longest);
    auto fits = [&](std::size_t chars, std::vector<int32_t>* out) {
      (*fields)[longest] = full.substr(0, offsets[chars]);
      *out = Encode(*fields);
      return static_cast<int64_t>(out->size()) <= budget;
    };
    std::vector<int32_t> best;
    if (!fits(0, &best)) {
      Fail(line, StrCat("even with field '", longest, "' emptied, the template takes ", best.size(),
                        " tokens and the target ", target_length, ": more than max_length ",
                        spec_.max_length, "; raise max_length or shorten the template or target"));
    }
    // Invariant: `lo` characters fit (best holds their ids), `hi` do not.
    std::size_t lo = 0;
    std::size_t hi = longest_chars;
    while (hi - lo > 1) {
      const std::size_t mid = lo + (hi - lo) / 2;
      std::vector<int32_t> candidate;
      if (fits(mid, &candidate)) {
        lo = mid;
        best = std::move(candidate);
      } else {
        hi = mid;
      }
    }
    (*fields)[longest] = full.substr(0, offsets[lo]);
    return best;
  }

  const std::string& path_;
  const TaskSpec& spec_;
  const Tokenizer& tokenizer_;
  std::vector<TemplatePart> template_;
  std::map<std::string, int64_t> label_index_;
  std::vector<std::vector<int32_t>> label_ids_;
};

}  // namespace

std::string FormatInput(const TaskSpec& spec, const std::string& text) {
  const std::string field = spec.kind == TaskKind::kGeneration ? "input" : "text";
  const std::string template_text = spec.template_text.empty() ? "{" + field + "}" : spec.template_text;
  const std::vector<TemplatePart> parts = ParseTemplate(template_text, spec.kind);
  for (const TemplatePart& part : parts) {
    if (part.is_field && part.text != field) {
      throw Error(StrCat("task template \"", template_text, "\" names {", part.text, "}, but a single text fills {",
                         field, "} only; give --template"));
    }
  }
  return Render(parts, {{field, text}});
}

TaskData LoadTaskData(const std::string& path, const TaskSpec& spec, const Tokenizer& tokenizer) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(StrCat(path, ": cannot open task file for reading"));
  const ExampleBuilder builder(path, spec, tokenizer);

  TaskData data;
  data.path = path;
  data.label_ids = builder.label_ids();
  std::string line_text;
  int64_t line = 0;
  while (std::getline(in, line_text)) {
    ++line;
    if (line_text.find_first_not_of(" \t\r") == std::string::npos) continue;  // blank
    data.examples.push_back(builder.Build(line_text, line));
  }
  if (in.bad()) throw Error(StrCat(path, ": read failed after line ", line));
  if (data.examples.empty()) throw Error(StrCat(path, ": no examples (the file is empty or blank)"));
  return data;
}

std::pair<int64_t, double> MajorityLabel(const TaskData& data) {
  std::map<int64_t, int64_t> counts;
  int64_t labelled = 0;
  for (const Example& example : data.examples) {
    if (example.label_index < 0) continue;
    ++counts[example.label_index];
    ++labelled;
  }
  if (labelled == 0) return {-1, 0.0};
  // std::map iterates in label order and max_element keeps the first maximum,
  // so ties go to the lower label index (deterministic).
  const auto best = std::max_element(counts.begin(), counts.end(),
                                     [](const auto& a, const auto& b) { return a.second < b.second; });
  return {best->first, static_cast<double>(best->second) / static_cast<double>(labelled)};
}

}  // namespace promptsweep
