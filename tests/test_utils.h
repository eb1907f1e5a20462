// Small helpers shared by the test binaries.
#pragma once

#include <memory>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "common/early_termination.h"
#include "common/error.h"
#include "common/file_util.h"
#include "common/json_util.h"
#include "common/task_data.h"
#include "common/tokenizer.h"
#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <stdexcept>
#include <string>

namespace promptsweep::test {

// A fresh directory under ::testing::TempDir(), removed with its contents when
// the object goes out of scope. Not thread-safe; one per test.
class ScopedTempDir {
 public:
  ScopedTempDir() {
    std::string pattern = ::testing::TempDir() + "promptsweep_test_XXXXXX";
    if (mkdtemp(pattern.data()) == nullptr) {
      throw std::runtime_error("mkdtemp failed for " + pattern);
    }
    path_ = pattern;
  }
  ~ScopedTempDir() {
    std::error_code ignored;  // best effort: a leftover temp dir must not fail a test
    std::filesystem::remove_all(path_, ignored);
  }
  ScopedTempDir(const ScopedTempDir&) = delete;
  ScopedTempDir& operator=(const ScopedTempDir&) = delete;

  const std::filesystem::path& path() const { return path_; }
  // path() / name as a string.
  std::string File(const std::string& name) const { return (path_ / name).string(); }

 private:
  std::filesystem::path path_;
};

// Writes `bytes` to `path` verbatim (binary), replacing any existing file.
inline void WriteFileBytes(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  if (!out) throw std::runtime_error("cannot write " + path);
}

// The whole content of `path` (binary); ReadFile's Error when it cannot be read.
inline std::string ReadFileBytes(const std::string& path) { return ReadFile(path, "a test file"); }

// Message of the promptsweep::Error `fn` throws; fails the test if it throws none.
template <typename Fn>
std::string ErrorOf(Fn&& fn) {
  try {
    fn();
  } catch (const Error& e) {
    return e.what();
  }
  ADD_FAILURE() << "expected a promptsweep::Error";
  return "";
}

// Success when `text` contains `part`; the failure message shows both.
inline ::testing::AssertionResult HasText(const std::string& text, const std::string& part) {
  if (text.find(part) != std::string::npos) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << "\"" << text << "\" does not contain \"" << part << "\"";
}

// The tiny test tokenizer (tests/data/models/tiny-llama) with a Llama-3-style
// post-processor that puts a BOS (<|endoftext|>, id 319) before every sequence
// when special tokens are added (PEFT's tokenizer(text) keeps such tokens).
inline std::unique_ptr<Tokenizer> TinyTokenizerWithBos() {
  const std::string path = std::string(PROMPTSWEEP_TEST_DATA_DIR) + "/models/tiny-llama/tokenizer.json";
  nlohmann::json json = ReadJsonFile(path);
  json["post_processor"] = nlohmann::json::parse(R"({
    "type": "TemplateProcessing",
    "single": [{"SpecialToken": {"id": "<|endoftext|>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}],
    "pair": [{"Sequence": {"id": "A", "type_id": 0}}, {"Sequence": {"id": "B", "type_id": 1}}],
    "special_tokens": {"<|endoftext|>": {"id": "<|endoftext|>", "ids": [319], "tokens": ["<|endoftext|>"]}}})");
  return Tokenizer::FromJson(json, path);
}

// The toy animals classification task of tests/data/tasks (as toy_animals.yaml
// describes it), for tests that build TaskData in code.
inline TaskSpec ToyAnimalsSpec() {
  TaskSpec spec;
  spec.kind = TaskKind::kClassification;
  spec.template_text = "{text}. animal:";
  spec.verbalizer = {{"dog", " dog"}, {"fox", " fox"}};
  return spec;
}

// Early-termination policies with Ray's names for the fields.
inline EarlyTermination AshaPolicy(int64_t grace_period, double reduction_factor, int64_t max_t,
                                   int64_t brackets = 1) {
  EarlyTermination config = DefaultEarlyTermination(EarlyTerminationType::kAsha);
  config.grace_period = grace_period;
  config.eta = reduction_factor;
  config.max_t = max_t;
  config.brackets = brackets;
  return config;
}

inline EarlyTermination MedianPolicy(int64_t warmup_evals, int64_t min_jobs) {
  EarlyTermination config = DefaultEarlyTermination(EarlyTerminationType::kMedian);
  config.warmup_evals = warmup_evals;
  config.min_jobs = min_jobs;
  return config;
}

}  // namespace promptsweep::test
