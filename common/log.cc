#include "common/log.h"

#include <array>
#include <cstdlib>
#include <map>
#include <memory>
#include <mutex>
#include <utility>

#include <spdlog/sinks/stdout_sinks.h>

#include "common/error.h"

namespace promptsweep {
namespace {

constexpr char kPattern[] = "[%Y-%m-%d %H:%M:%S.%e] [%l] [%n] %v";

constexpr std::array<std::pair<std::string_view, spdlog::level::level_enum>, 6> kLevels = {{
    {"trace", spdlog::level::trace},
    {"debug", spdlog::level::debug},
    {"info", spdlog::level::info},
    {"warn", spdlog::level::warn},
    {"error", spdlog::level::err},
    {"off", spdlog::level::off},
}};

// Every logger this process made, by component, and the level they share.
struct Registry {
  std::mutex mutex;
  std::shared_ptr<spdlog::sinks::sink> sink;
  std::map<std::string, std::shared_ptr<spdlog::logger>, std::less<>> loggers;
  spdlog::level::level_enum level = spdlog::level::info;
};

Registry& GetRegistry() {
  static Registry* registry = [] {
    auto* r = new Registry;  // never destroyed: threads may log during exit
    r->sink = std::make_shared<spdlog::sinks::stderr_sink_mt>();
    r->sink->set_pattern(kPattern);
    return r;
  }();
  return *registry;
}

}  // namespace

spdlog::logger& Logger(std::string_view component) {
  Registry& registry = GetRegistry();
  std::lock_guard<std::mutex> lock(registry.mutex);
  const auto found = registry.loggers.find(component);
  if (found != registry.loggers.end()) return *found->second;
  auto logger = std::make_shared<spdlog::logger>(std::string(component), registry.sink);
  logger->set_level(registry.level);
  // Worker logs are files that tests and people tail: every line at once.
  logger->flush_on(spdlog::level::trace);
  spdlog::logger& result = *logger;
  registry.loggers.emplace(std::string(component), std::move(logger));
  return result;
}

void SetLogLevel(std::string_view name, std::string_view where) {
  for (const auto& [level_name, level] : kLevels) {
    if (name != level_name) continue;
    Registry& registry = GetRegistry();
    std::lock_guard<std::mutex> lock(registry.mutex);
    registry.level = level;
    for (auto& entry : registry.loggers) entry.second->set_level(level);
    return;
  }
  throw Error(StrCat(where, ": unknown log level '", name, "'; use trace, debug, info, warn, error or off"));
}

void ConfigureLogging(const std::string& flag_value) {
  if (!flag_value.empty()) {
    SetLogLevel(flag_value, "--log-level");
  } else if (const char* env = std::getenv("PROMPTSWEEP_LOG_LEVEL"); env != nullptr && *env != '\0') {
    SetLogLevel(env, "PROMPTSWEEP_LOG_LEVEL");
  } else {
    SetLogLevel("info");
  }
}

std::string LogLevelName() {
  Registry& registry = GetRegistry();
  std::lock_guard<std::mutex> lock(registry.mutex);
  for (const auto& [level_name, level] : kLevels) {
    if (level == registry.level) return std::string(level_name);
  }
  return "info";
}

}  // namespace promptsweep
