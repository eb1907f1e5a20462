// A running coordinator: the gRPC server on a real socket around a Scheduler,
// plus the thread that takes back expired leases.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include <grpcpp/grpcpp.h>

#include "coordinator/coordinator_service.h"
#include "coordinator/scheduler.h"

namespace promptsweep {

struct ServerOptions {
  // host:port to listen on; port 0 picks a free one (see port()). Loopback by
  // default: listening on other interfaces is the user's explicit choice.
  std::string listen = "127.0.0.1:7878";
  // Shared secret every call must carry (empty: none).
  std::string token;
  // TLS: PEM certificate chain and private key files (both or neither).
  std::string tls_cert;
  std::string tls_key;
  // Largest message accepted or sent (adapters and checkpoints travel in messages).
  int64_t max_message_bytes = 64 << 20;
  // Longest LeaseJob long-poll.
  int64_t max_lease_wait_ms = 30000;
};

// Thread-safe. Shutdown (or the destructor) stops accepting calls, wakes
// long-polls and joins the expiry thread.
class CoordinatorServer {
 public:
  // Starts listening; Error naming the address when it cannot be bound, or a
  // TLS file that cannot be read.
  CoordinatorServer(Scheduler& scheduler, ServerOptions options);
  ~CoordinatorServer();

  // The bound port.
  int port() const { return port_; }
  // Blocks until Shutdown() from another thread.
  void Wait();
  void Shutdown();

 private:
  void ExpireLoop();

  Scheduler& scheduler_;
  CoordinatorService service_;
  std::unique_ptr<grpc::Server> server_;
  int port_ = 0;
  std::mutex mutex_;
  std::condition_variable stopped_cv_;
  bool stopped_ = false;
  std::thread expiry_thread_;
};


}  // namespace promptsweep
