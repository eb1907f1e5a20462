#include "coordinator/coordinator_server.h"

#include <chrono>
#include <fstream>
#include <sstream>
#include <utility>

#include "common/error.h"
#include "common/file_util.h"
#include "common/log.h"

namespace promptsweep {

CoordinatorServer::CoordinatorServer(Scheduler& scheduler, ServerOptions options)
    : scheduler_(scheduler), service_(scheduler, ServiceOptions{options.token, options.max_lease_wait_ms}) {
  std::shared_ptr<grpc::ServerCredentials> credentials;
  if (options.tls_cert.empty() != options.tls_key.empty()) {
    throw Error("TLS needs both --tls-cert and --tls-key");
  }
  if (!options.tls_cert.empty()) {
    grpc::SslServerCredentialsOptions ssl;
    ssl.pem_key_cert_pairs.push_back(
        {ReadPemFile(options.tls_key, "private key"), ReadPemFile(options.tls_cert, "certificate")});
    credentials = grpc::SslServerCredentials(ssl);
  } else {
    credentials = grpc::InsecureServerCredentials();
  }
  grpc::ServerBuilder builder;
  builder.AddListeningPort(options.listen, credentials, &port_);
  builder.RegisterService(&service_);
  builder.SetMaxReceiveMessageSize(static_cast<int>(options.max_message_bytes));
  builder.SetMaxSendMessageSize(static_cast<int>(options.max_message_bytes));
  // Workers long-poll LeaseJob; each waiting call holds a server thread, so
  // allow enough for a few hundred workers.
  grpc::ResourceQuota quota("promptsweep-coordinator");
  quota.SetMaxThreads(2048);
  builder.SetResourceQuota(quota);
  server_ = builder.BuildAndStart();
  if (server_ == nullptr || port_ == 0) {
    throw Error(StrCat("cannot listen on ", options.listen,
                       ": address in use or not local (use --listen HOST:PORT with a free port, or port 0)"));
  }
  expiry_thread_ = std::thread([this] { ExpireLoop(); });
}

CoordinatorServer::~CoordinatorServer() {
  Shutdown();
  if (expiry_thread_.joinable()) expiry_thread_.join();
}

void CoordinatorServer::ExpireLoop() {
  // Leases are checked ten times per timeout (at most once per second): a
  // dead worker's job is back in the queue within 1.1 timeouts.
  const double period = std::min(1.0, scheduler_.lease_timeout_seconds() / 10.0);
  std::unique_lock<std::mutex> lock(mutex_);
  while (!stopped_) {
    stopped_cv_.wait_for(lock, std::chrono::duration<double>(period));
    if (stopped_) break;
    lock.unlock();
    try {
      if (const int64_t expired = scheduler_.ExpireLeases(); expired > 0) {
        Logger("coordinator").info("{} lease(s) expired without a heartbeat; their jobs are pending again", expired);
      }
    } catch (const std::exception& e) {
      // A thread must not throw; the next round tries again (a full disk may clear).
      Logger("coordinator").error("expiring leases failed: {}", e.what());
    }
    lock.lock();
  }
}

void CoordinatorServer::Wait() {
  std::unique_lock<std::mutex> lock(mutex_);
  stopped_cv_.wait(lock, [this] { return stopped_; });
}

void CoordinatorServer::Shutdown() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (stopped_) return;
    stopped_ = true;
  }
  stopped_cv_.notify_all();
  scheduler_.Shutdown();  // wakes long-polling LeaseJob calls
  server_->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(2));
}

}  // namespace promptsweep
