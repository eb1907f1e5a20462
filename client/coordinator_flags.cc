#include "client/coordinator_flags.h"

#include <cstdlib>

#include <CLI/CLI.hpp>

namespace promptsweep {
namespace {

std::string EnvOr(const char* name, std::string fallback) {
  const char* value = std::getenv(name);
  return value != nullptr && *value != '\0' ? std::string(value) : fallback;
}

}  // namespace

void CoordinatorFlags::Add(CLI::App* command) {
  address = EnvOr("PROMPTSWEEP_COORDINATOR", kDefaultCoordinator);
  token = EnvOr("PROMPTSWEEP_TOKEN", "");
  command->add_option("--coordinator", address,
                      "coordinator address HOST:PORT (default $PROMPTSWEEP_COORDINATOR or 127.0.0.1:7878)")
      ->type_name("HOST:PORT");
  command->add_option("--token", token,
                      "shared secret the coordinator requires (default $PROMPTSWEEP_TOKEN; prefer the variable: "
                      "command lines are visible to other users)");
  command->add_option("--tls-ca", tls_ca, "PEM file of the CA that signed the coordinator's certificate (turns on TLS)")
      ->type_name("FILE");
  command->add_option("--reconnect-timeout", reconnect_timeout_seconds,
                      "seconds to keep retrying an unreachable coordinator (default 60)");
}

ClientOptions CoordinatorFlags::Options() const {
  ClientOptions options;
  options.address = address;
  options.token = token;
  options.tls_ca = tls_ca;
  options.reconnect_timeout_seconds = reconnect_timeout_seconds;
  return options;
}

}  // namespace promptsweep
