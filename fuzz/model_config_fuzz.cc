// libFuzzer target for the config.json reader: arbitrary bytes go through
// ParseJson + ParseModelConfig. Only promptsweep::Error may leave the reader
// (anything else aborts as an uncaught exception), and every config that
// parses must be written by ModelConfigToJson and read back unchanged, both
// as a JSON value and through its text.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "common/error.h"
#include "common/json_util.h"
#include "common/model_config.h"

namespace {

using promptsweep::ModelConfig;

[[noreturn]] void RoundTripFailed(const ModelConfig& config, const std::string& detail) {
  std::fprintf(stderr, "round trip failed: %s\nconfig: %s\n", detail.c_str(),
               promptsweep::ModelConfigToJson(config).dump().c_str());
  __builtin_trap();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  ModelConfig config;
  try {
    config = promptsweep::ParseModelConfig(promptsweep::ParseJson(text, "config.json"), "config.json");
  } catch (const promptsweep::Error&) {
    return 0;  // rejected with a message: the expected outcome for most inputs
  }
  try {
    const nlohmann::json written = promptsweep::ModelConfigToJson(config);
    if (promptsweep::ParseModelConfig(written, "written") != config) {
      RoundTripFailed(config, "ParseModelConfig(ModelConfigToJson(c)) != c");
    }
    const std::string saved = written.dump(2);
    if (promptsweep::ParseModelConfig(promptsweep::ParseJson(saved, "saved"), "saved") != config) {
      RoundTripFailed(config, "config.json text does not read back equal");
    }
  } catch (const promptsweep::Error& e) {
    RoundTripFailed(config, e.what());
  }
  return 0;
}
