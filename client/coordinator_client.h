// Typed client of the coordinator (proto/promptsweep.proto) for workers and
// the CLI: domain structs in and out, the token on every call, TLS when a CA
// file is given, and retries with exponential backoff while the coordinator
// is unreachable (it may be restarting).
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/job.h"
#include "client/sweep_types.h"

namespace promptsweep {

// How the coordinator's UNAVAILABLE for its own failed storage (disk full, I/O
// error; nothing was changed) begins, so that a client that retried in vain
// says so rather than "cannot reach the coordinator".
inline constexpr char kStorageFailurePrefix[] = "coordinator storage failure: ";

struct ClientOptions {
  std::string address;  // host:port
  std::string token;    // empty: none
  std::string tls_ca;   // PEM file of the CA (or the server's certificate); empty: plaintext
  // How long calls keep retrying an unreachable coordinator before Error.
  double reconnect_timeout_seconds = 60.0;
  int64_t max_message_bytes = 64 << 20;
};

struct RegisterReply {
  std::string worker_id;
  int64_t heartbeat_interval_ms = 10000;
  int64_t lease_timeout_ms = 30000;
};

struct LeaseReply {
  std::optional<JobSpec> job;
  bool unknown_worker = false;
};

struct HeartbeatReply {
  std::vector<LeaseRef> revoked;
  bool unknown_worker = false;
  std::vector<StopOrder> stop;  // early termination of leases the worker still owns
};

// Thread-safe (gRPC stubs are). Every method throws Error with the
// coordinator's message for a rejected call, or after reconnect_timeout for
// an unreachable coordinator.
class CoordinatorClient {
 public:
  explicit CoordinatorClient(ClientOptions options);
  ~CoordinatorClient();

  // Checks that the coordinator speaks this client's protocol; returns its version.
  std::string Handshake();

  RegisterReply RegisterWorker(const WorkerInfo& info, const std::vector<std::string>& loaded_models);
  // `running_packs`: PackKeys of the jobs the worker's other slots run (preferred).
  LeaseReply LeaseJob(const std::string& worker_id, const std::vector<std::string>& loaded_models, int64_t wait_ms,
                      const std::vector<std::string>& running_packs = {});
  HeartbeatReply Heartbeat(const std::string& worker_id, const std::vector<LeaseRef>& leases);
  ReportAck ReportResult(const std::string& worker_id, const LeaseRef& lease, const JobOutcome& outcome);
  ReportAck ReportCheckpoint(const std::string& worker_id, const LeaseRef& lease, const std::string& checkpoint,
                             int64_t step);

  SubmitResult Submit(const SweepSubmission& sweep);
  SweepStatus Status(const std::string& sweep, bool with_jobs);
  std::vector<std::string> SweepNames();
  int64_t Cancel(const std::string& sweep, const std::vector<std::string>& job_ids);

  // One job's progress stream. Write never throws: progress is best effort
  // (a lost update costs nothing), so a broken stream just stops sending.
  class ProgressStream {
   public:
    virtual ~ProgressStream() = default;
    virtual void Write(const std::string& worker_id, const LeaseRef& lease, const JobProgress& progress) = 0;
  };
  std::unique_ptr<ProgressStream> OpenProgressStream();

  const std::string& address() const;

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace promptsweep
