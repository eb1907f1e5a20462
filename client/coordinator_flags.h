// The flags every command that talks to a coordinator takes (submit, status,
// cancel, wait, worker): where it is and how to authenticate, defaulting to
// the PROMPTSWEEP_COORDINATOR / PROMPTSWEEP_TOKEN environment variables.
#pragma once

#include <string>

#include "client/coordinator_client.h"

namespace CLI {
class App;
}  // namespace CLI

namespace promptsweep {

// --coordinator (PROMPTSWEEP_COORDINATOR, default 127.0.0.1:7878), --token
// (PROMPTSWEEP_TOKEN), --tls-ca, --reconnect-timeout.
struct CoordinatorFlags {
  std::string address;
  std::string token;
  std::string tls_ca;
  double reconnect_timeout_seconds = 60.0;

  void Add(CLI::App* command);
  ClientOptions Options() const;
};

// The default coordinator address.
inline constexpr const char* kDefaultCoordinator = "127.0.0.1:7878";

}  // namespace promptsweep
