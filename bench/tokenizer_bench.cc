// Encoding throughput of promptsweep::Tokenizer on a plain-text corpus (the
// Brown corpus as tools/reference/brown_corpus.js writes it). The corpus is
// split into documents at empty lines and each document is one Encode call,
// as bench/tokenizer_bench.js does for the JS encoders.
//
// Usage: tokenizer_bench NAME TOKENIZER_JSON CORPUS_TXT [RUNS]
// Prints a human-readable summary and one machine-readable line:
//   RESULT tokenizer=NAME impl=promptsweep bytes=B tokens=T cold_mbps=X warm_mbps=Y
// cold: best of RUNS passes, each on a freshly loaded tokenizer (empty
// pre-token cache; loading not timed). warm: best of RUNS further passes on
// the last tokenizer, whose cache the cold pass filled.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "common/error.h"
#include "common/file_util.h"
#include "common/tokenizer.h"

namespace {

using Clock = std::chrono::steady_clock;

std::vector<std::string_view> SplitDocuments(std::string_view text) {
  std::vector<std::string_view> documents;
  size_t start = 0;
  while (start <= text.size()) {
    const size_t end = text.find("\n\n", start);
    const size_t stop = end == std::string_view::npos ? text.size() : end;
    if (stop > start) documents.push_back(text.substr(start, stop - start));
    if (end == std::string_view::npos) break;
    start = end + 2;
  }
  return documents;
}

// Seconds for one pass over all documents; `tokens` receives the id count.
double EncodeAll(const promptsweep::Tokenizer& tokenizer, const std::vector<std::string_view>& documents,
                 size_t* tokens) {
  const auto start = Clock::now();
  size_t count = 0;
  for (const std::string_view document : documents) count += tokenizer.Encode(document, false).size();
  *tokens = count;
  return std::chrono::duration<double>(Clock::now() - start).count();
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 4) {
    std::fprintf(stderr, "usage: %s NAME TOKENIZER_JSON CORPUS_TXT [RUNS]\n", argv[0]);
    return 2;
  }
  const std::string name = argv[1];
  const int runs = argc > 4 ? std::max(1, std::atoi(argv[4])) : 3;
  try {
    const std::string text = promptsweep::ReadFile(argv[3], "the corpus");
    const std::vector<std::string_view> documents = SplitDocuments(text);
    const double megabytes = static_cast<double>(text.size()) / 1e6;

    double best_cold = 1e30;
    size_t tokens = 0;
    std::unique_ptr<promptsweep::Tokenizer> tokenizer;
    double load_seconds = 0;
    for (int run = 0; run < runs; ++run) {
      const auto load_start = Clock::now();
      tokenizer = promptsweep::Tokenizer::FromFile(argv[2]);
      load_seconds = std::chrono::duration<double>(Clock::now() - load_start).count();
      best_cold = std::min(best_cold, EncodeAll(*tokenizer, documents, &tokens));
    }
    double best_warm = 1e30;
    for (int run = 0; run < runs; ++run) best_warm = std::min(best_warm, EncodeAll(*tokenizer, documents, &tokens));

    std::printf("%s: %zu documents, %.2f MB, %zu tokens; load %.2f s\n", name.c_str(), documents.size(), megabytes,
                tokens, load_seconds);
    std::printf("  cold cache: %.2f MB/s   warm cache: %.2f MB/s   (best of %d each)\n", megabytes / best_cold,
                megabytes / best_warm, runs);
    std::printf("RESULT tokenizer=%s impl=promptsweep bytes=%zu tokens=%zu cold_mbps=%.3f warm_mbps=%.3f\n",
                name.c_str(), text.size(), tokens, megabytes / best_cold, megabytes / best_warm);
  } catch (const promptsweep::Error& e) {
    std::fprintf(stderr, "tokenizer_bench: %s\n", e.what());
    return 1;
  }
  return 0;
}
