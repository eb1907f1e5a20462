// JSON reading shared by every format reader (config.json, tokenizer.json,
// safetensors headers, adapter_config.json): parse errors become Errors that
// carry file:line:col, and typed field access names the field and the file.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

namespace promptsweep {

// Reads and parses a whole JSON file. Throws Error "path: cannot open ..." or
// "path:line:col: invalid JSON: ...".
nlohmann::json ReadJsonFile(const std::string& path);

// Parses `text`; `where` names the source in errors ("model.safetensors header").
// Errors report line:col inside `text`.
nlohmann::json ParseJson(std::string_view text, const std::string& where);

// Line and column (both 1-based) of byte `offset` in `text`.
std::pair<int, int> LineColumn(std::string_view text, std::size_t offset);

// Short description of a value for error messages: `string "abc"`, `number 1.5`,
// `array`. Never dumps containers, so a deeply nested value cannot blow the
// stack or the message; long strings are cut.
std::string DescribeJson(const nlohmann::json& value);

// Typed access to one field of a JSON object, with errors that say which field
// of which file is missing or has the wrong type:
//   JsonObject cfg(json, "config.json");
//   int64_t n = cfg.Int("hidden_size");             // required
//   double eps = cfg.Float("rms_norm_eps", 1e-6);    // optional with default
class JsonObject {
 public:
  // Throws if `value` is not an object.
  JsonObject(const nlohmann::json& value, std::string where);

  bool Has(const std::string& key) const;       // present and not null
  bool Contains(const std::string& key) const;  // present, possibly null
  const nlohmann::json& Raw(const std::string& key) const;  // required, any type

  // Integers must fit int64; a float with an integral value (2048.0) is accepted.
  int64_t Int(const std::string& key) const;
  int64_t Int(const std::string& key, int64_t default_value) const;
  // One integer or a list of them, as Hugging Face writes eos_token_id.
  std::vector<int64_t> IntOrIntList(const std::string& key) const;
  // Any finite JSON number.
  double Float(const std::string& key) const;
  double Float(const std::string& key, double default_value) const;
  bool Bool(const std::string& key) const;
  bool Bool(const std::string& key, bool default_value) const;
  std::string String(const std::string& key) const;
  std::string String(const std::string& key, const std::string& default_value) const;
  std::optional<std::string> OptionalString(const std::string& key) const;
  JsonObject Object(const std::string& key) const;

  const std::string& where() const { return where_; }
  const nlohmann::json& json() const { return *value_; }

  // "where: field 'key': message" as an Error.
  [[noreturn]] void Fail(const std::string& key, const std::string& message) const;

 private:
  const nlohmann::json* value_;
  std::string where_;
};

// A JSON value and where it sits, for nested formats whose errors must name a
// JSON path rather than one field: "tokenizer.json: model.merges[3]: ...".
// Holds a pointer to the value: the parsed JSON must outlive every node.
//   JsonNode root(json, "tokenizer.json");
//   JsonNode merges = root.Child("model").Child("merges");
//   for (size_t i = 0; i < merges.Array().size(); ++i) Use(merges.At(i));
//   int64_t n = root.Child("model").Object().Int("n");  // field errors as JsonObject's
class JsonNode {
 public:
  // The root value of `file`.
  JsonNode(const nlohmann::json& value, std::string file);

  const nlohmann::json& json() const { return *value_; }
  bool IsNull() const { return value_->is_null(); }
  // "file: path", or just "file" at the root.
  std::string Where() const;
  // Throws Error "Where(): message".
  [[noreturn]] void Fail(const std::string& message) const;

  // value[key], where a missing key reads as null. Throws unless an object.
  JsonNode Child(const std::string& key) const;
  // value[index]. Throws unless an array that long.
  JsonNode At(std::size_t index) const;

  // The value as an array or string; throws naming the path otherwise.
  const nlohmann::json& Array() const;
  std::string String() const;
  // Typed fields; throws unless an object. Its errors read "Where(): field 'k': ...".
  JsonObject Object() const;

 private:
  JsonNode(const nlohmann::json& value, std::string file, std::string path);

  const nlohmann::json* value_;
  std::string file_;
  std::string path_;  // "model.merges[3]"; empty at the root
};

// `s` as a JSON string literal for messages ("a\nb" with the quotes); invalid
// UTF-8 becomes U+FFFD instead of throwing.
std::string JsonQuoted(std::string_view s);

}  // namespace promptsweep
