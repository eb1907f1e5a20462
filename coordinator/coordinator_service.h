// gRPC face of the coordinator. It only checks the token, converts between
// proto messages and domain structs (proto_convert.h) and forwards to the
// Scheduler, which holds every decision.
#pragma once

#include <exception>
#include <string>

#include <grpcpp/grpcpp.h>

#include "coordinator/scheduler.h"
#include "promptsweep.grpc.pb.h"

namespace promptsweep {

struct ServiceOptions {
  // When not empty, every call must carry "authorization: Bearer <token>".
  std::string token;
  // Longest a LeaseJob call is held waiting for a job.
  int64_t max_lease_wait_ms = 30000;
};

// Thread-safe: gRPC calls its methods from many threads; the scheduler
// serialises what needs it.
// The status a call answers when its handler threw `error` (rpc: the call's
// name, for the log): Error -> INVALID_ARGUMENT; IoError (the coordinator's
// storage) -> UNAVAILABLE starting with kStorageFailurePrefix, which clients
// retry; InternalError and anything else -> INTERNAL.
grpc::Status StatusOfException(const std::exception_ptr& error, const char* rpc);

class CoordinatorService final : public v1::Coordinator::Service {
 public:
  CoordinatorService(Scheduler& scheduler, ServiceOptions options);

  grpc::Status GetServerInfo(grpc::ServerContext* context, const v1::GetServerInfoRequest* request,
                             v1::ServerInfo* reply) override;
  grpc::Status RegisterWorker(grpc::ServerContext* context, const v1::RegisterWorkerRequest* request,
                              v1::RegisterWorkerReply* reply) override;
  grpc::Status LeaseJob(grpc::ServerContext* context, const v1::LeaseJobRequest* request,
                        v1::LeaseJobReply* reply) override;
  grpc::Status StreamProgress(grpc::ServerContext* context, grpc::ServerReader<v1::ProgressUpdate>* reader,
                              v1::ProgressAck* reply) override;
  grpc::Status Heartbeat(grpc::ServerContext* context, const v1::HeartbeatRequest* request,
                         v1::HeartbeatReply* reply) override;
  grpc::Status ReportResult(grpc::ServerContext* context, const v1::ReportResultRequest* request,
                            v1::ReportReply* reply) override;
  grpc::Status ReportCheckpoint(grpc::ServerContext* context, const v1::ReportCheckpointRequest* request,
                                v1::ReportReply* reply) override;
  grpc::Status SubmitSweep(grpc::ServerContext* context, const v1::SubmitSweepRequest* request,
                           v1::SubmitSweepReply* reply) override;
  grpc::Status GetSweepStatus(grpc::ServerContext* context, const v1::SweepStatusRequest* request,
                              v1::SweepStatusReply* reply) override;
  grpc::Status CancelSweep(grpc::ServerContext* context, const v1::CancelSweepRequest* request,
                           v1::CancelSweepReply* reply) override;

 private:
  // UNAUTHENTICATED unless the call carries the token (when one is set).
  grpc::Status Authorize(const grpc::ServerContext& context) const;

  Scheduler& scheduler_;
  const ServiceOptions options_;
};

}  // namespace promptsweep
