#include "common/json_util.h"

#include <cmath>
#include <cstdint>
#include <limits>

#include "common/error.h"
#include "common/file_util.h"

namespace promptsweep {
namespace {

// `v` as int64, or nullopt with `problem` set. Range is checked before any
// conversion: casting an out-of-range double (or uint64) to int64 is undefined
// behaviour, and 1e300 is valid JSON.
std::optional<int64_t> ToInt64(const nlohmann::json& v, std::string* problem) {
  constexpr double kTwoTo63 = 9223372036854775808.0;
  if (v.is_number_unsigned()) {
    const uint64_t u = v.get<uint64_t>();
    if (u <= static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
      return static_cast<int64_t>(u);
    }
  } else if (v.is_number_integer()) {
    return v.get<int64_t>();
  } else if (v.is_number_float()) {
    const double d = v.get<double>();
    if (std::isfinite(d) && d == std::trunc(d)) {
      // [-2^63, 2^63) is exactly the set of integral doubles that fit.
      if (d >= -kTwoTo63 && d < kTwoTo63) return static_cast<int64_t>(d);
    } else {
      *problem = StrCat("expected an integer, found ", DescribeJson(v));
      return std::nullopt;
    }
  } else {
    *problem = StrCat("expected an integer, found ", DescribeJson(v));
    return std::nullopt;
  }
  *problem = StrCat("integer out of the 64-bit range, found ", DescribeJson(v));
  return std::nullopt;
}

// Records where a SAX pass over the text fails, and builds nothing.
class ErrorLocator : public nlohmann::json_sax<nlohmann::json> {
 public:
  bool null() override { return true; }
  bool boolean(bool) override { return true; }
  bool number_integer(number_integer_t) override { return true; }
  bool number_unsigned(number_unsigned_t) override { return true; }
  bool number_float(number_float_t, const string_t&) override { return true; }
  bool string(string_t&) override { return true; }
  bool binary(binary_t&) override { return true; }
  bool start_object(std::size_t) override { return true; }
  bool key(string_t&) override { return true; }
  bool end_object() override { return true; }
  bool start_array(std::size_t) override { return true; }
  bool end_array() override { return true; }
  bool parse_error(std::size_t position, const std::string& last_token,
                   const nlohmann::json::exception&) override {
    // `position` is just past the offending token; point at its start.
    offset = position >= last_token.size() ? position - last_token.size() : 0;
    return false;
  }

  std::size_t offset = 0;
};

// Byte offset of the first error in `text` (0 if the SAX pass finds none).
std::size_t ErrorOffset(std::string_view text) {
  ErrorLocator locator;
  nlohmann::json::sax_parse(text.begin(), text.end(), &locator);
  return locator.offset;
}

}  // namespace

std::pair<int, int> LineColumn(std::string_view text, std::size_t offset) {
  int line = 1;
  int column = 1;
  for (std::size_t i = 0; i < offset && i < text.size(); ++i) {
    if (text[i] == '\n') {
      ++line;
      column = 1;
    } else if ((static_cast<unsigned char>(text[i]) & 0xC0) != 0x80) {
      ++column;  // count code points, not UTF-8 continuation bytes
    }
  }
  return {line, column};
}

std::string DescribeJson(const nlohmann::json& value) {
  constexpr std::size_t kMaxStringBytes = 60;
  if (value.is_array()) return StrCat("array of ", value.size(), " elements");
  if (value.is_object()) return StrCat("object with ", value.size(), " fields");
  if (value.is_string()) {
    std::string text = value.get<std::string>();
    if (text.size() > kMaxStringBytes) {
      std::size_t cut = kMaxStringBytes;
      // Cut on a code point boundary so the message stays valid UTF-8.
      while (cut > 0 && (static_cast<unsigned char>(text[cut]) & 0xC0) == 0x80) --cut;
      text = text.substr(0, cut) + "...";
    }
    return StrCat("string ", nlohmann::json(text).dump(-1, ' ', false,
                                                       nlohmann::json::error_handler_t::replace));
  }
  if (value.is_number_float() && !std::isfinite(value.get<double>())) {
    return StrCat("number ", value.get<double>());  // dump() would print null
  }
  return StrCat(value.type_name(), " ", value.dump());
}

nlohmann::json ParseJson(std::string_view text, const std::string& where) {
  // nlohmann's parser stops at a NUL byte as if the input ended there, so
  // "{}\0junk" would parse: reject NUL explicitly.
  if (const std::size_t nul = text.find('\0'); nul != std::string_view::npos) {
    const auto [line, column] = LineColumn(text, nul);
    throw Error(StrCat(where, ":", line, ":", column, ": invalid JSON: NUL byte in the text"));
  }
  std::size_t offset = 0;
  std::string what;
  try {
    return nlohmann::json::parse(text.begin(), text.end());
  } catch (const nlohmann::json::parse_error& e) {
    // e.byte is the 1-based position of the byte where parsing stopped.
    offset = e.byte > 0 ? e.byte - 1 : 0;
    what = e.what();
  } catch (const nlohmann::json::exception& e) {
    // A number too large for a double (1e999) is out_of_range, which carries
    // no position: a second, DOM-less pass finds it.
    offset = ErrorOffset(text);
    what = e.what();
  }
  // Drop nlohmann's "[json.exception.parse_error.101] " and "parse error at line 1, column 2: ".
  const auto bracket = what.find("] ");
  if (what.rfind("[json.exception.", 0) == 0 && bracket != std::string::npos) {
    what = what.substr(bracket + 2);
  }
  if (what.rfind("parse error", 0) == 0) {
    if (const auto colon = what.find(": "); colon != std::string::npos) what = what.substr(colon + 2);
  }
  const auto [line, column] = LineColumn(text, offset);
  throw Error(StrCat(where, ":", line, ":", column, ": invalid JSON: ", what));
}

nlohmann::json ReadJsonFile(const std::string& path) {
  std::string text;
  try {
    text = ReadFile(path, "the JSON file");
  } catch (const IoError&) {
    throw;
  } catch (const Error&) {
    // This reader's message for a path that does not open (tests assert it).
    throw Error(StrCat(path, ": cannot open file for reading"));
  }
  return ParseJson(text, path);
}

JsonObject::JsonObject(const nlohmann::json& value, std::string where)
    : value_(&value), where_(std::move(where)) {
  if (!value.is_object()) {
    throw Error(StrCat(where_, ": expected a JSON object, found ", DescribeJson(value)));
  }
}

void JsonObject::Fail(const std::string& key, const std::string& message) const {
  throw Error(StrCat(where_, ": field '", key, "': ", message));
}

bool JsonObject::Has(const std::string& key) const {
  const auto it = value_->find(key);
  return it != value_->end() && !it->is_null();
}

bool JsonObject::Contains(const std::string& key) const { return value_->contains(key); }

const nlohmann::json& JsonObject::Raw(const std::string& key) const {
  const auto it = value_->find(key);
  if (it == value_->end() || it->is_null()) Fail(key, "missing (required)");
  return *it;
}

int64_t JsonObject::Int(const std::string& key) const {
  const nlohmann::json& v = Raw(key);
  std::string problem;
  if (const std::optional<int64_t> n = ToInt64(v, &problem)) return *n;
  Fail(key, problem);
}

int64_t JsonObject::Int(const std::string& key, int64_t default_value) const {
  return Has(key) ? Int(key) : default_value;
}

std::vector<int64_t> JsonObject::IntOrIntList(const std::string& key) const {
  const nlohmann::json& v = Raw(key);
  std::string problem;
  if (!v.is_array()) {
    if (const std::optional<int64_t> n = ToInt64(v, &problem)) return {*n};
    Fail(key, problem + " (or a list of integers)");
  }
  std::vector<int64_t> values;
  values.reserve(v.size());
  for (std::size_t i = 0; i < v.size(); ++i) {
    const std::optional<int64_t> n = ToInt64(v[i], &problem);
    if (!n) Fail(key, StrCat("element ", i, ": ", problem));
    values.push_back(*n);
  }
  return values;
}

double JsonObject::Float(const std::string& key) const {
  const nlohmann::json& v = Raw(key);
  if (!v.is_number()) Fail(key, StrCat("expected a number, found ", DescribeJson(v)));
  const double d = v.get<double>();
  // JSON has no inf/nan, but nlohmann turns an overflowing literal (1e999) into inf.
  if (!std::isfinite(d)) Fail(key, StrCat("expected a finite number, found ", DescribeJson(v)));
  return d;
}

double JsonObject::Float(const std::string& key, double default_value) const {
  return Has(key) ? Float(key) : default_value;
}

bool JsonObject::Bool(const std::string& key) const {
  const nlohmann::json& v = Raw(key);
  if (!v.is_boolean()) Fail(key, StrCat("expected true or false, found ", DescribeJson(v)));
  return v.get<bool>();
}

bool JsonObject::Bool(const std::string& key, bool default_value) const {
  return Has(key) ? Bool(key) : default_value;
}

std::string JsonObject::String(const std::string& key) const {
  const nlohmann::json& v = Raw(key);
  if (!v.is_string()) Fail(key, StrCat("expected a string, found ", DescribeJson(v)));
  return v.get<std::string>();
}

std::string JsonObject::String(const std::string& key, const std::string& default_value) const {
  return Has(key) ? String(key) : default_value;
}

std::optional<std::string> JsonObject::OptionalString(const std::string& key) const {
  if (!Has(key)) return std::nullopt;
  return String(key);
}

JsonObject JsonObject::Object(const std::string& key) const {
  const nlohmann::json& v = Raw(key);
  if (!v.is_object()) Fail(key, StrCat("expected an object, found ", DescribeJson(v)));
  return JsonObject(v, StrCat(where_, ": ", key));
}

JsonNode::JsonNode(const nlohmann::json& value, std::string file) : JsonNode(value, std::move(file), "") {}

JsonNode::JsonNode(const nlohmann::json& value, std::string file, std::string path)
    : value_(&value), file_(std::move(file)), path_(std::move(path)) {}

std::string JsonNode::Where() const { return path_.empty() ? file_ : StrCat(file_, ": ", path_); }

void JsonNode::Fail(const std::string& message) const { throw Error(StrCat(Where(), ": ", message)); }

JsonNode JsonNode::Child(const std::string& key) const {
  static const nlohmann::json kNull;
  if (!value_->is_object()) Fail(StrCat("expected a JSON object, found ", DescribeJson(*value_)));
  const auto it = value_->find(key);
  return JsonNode(it == value_->end() ? kNull : *it, file_, path_.empty() ? key : StrCat(path_, ".", key));
}

JsonNode JsonNode::At(std::size_t index) const {
  if (index >= Array().size()) Fail(StrCat("no element ", index, " in an array of ", value_->size()));
  return JsonNode((*value_)[index], file_, StrCat(path_, "[", index, "]"));
}

const nlohmann::json& JsonNode::Array() const {
  if (!value_->is_array()) Fail(StrCat("expected an array, found ", DescribeJson(*value_)));
  return *value_;
}

std::string JsonNode::String() const {
  if (!value_->is_string()) Fail(StrCat("expected a string, found ", DescribeJson(*value_)));
  return value_->get<std::string>();
}

JsonObject JsonNode::Object() const { return JsonObject(*value_, Where()); }

std::string JsonQuoted(std::string_view s) {
  return nlohmann::json(std::string(s)).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

}  // namespace promptsweep
