// JSON reading shared by every format reader (config.json, tokenizer.json,
// safetensors headers, adapter_config.json): parse errors become Errors that
// carry file:line:col, and typed field access names the field and the file.
#pragma once

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

}  // namespace promptsweep
