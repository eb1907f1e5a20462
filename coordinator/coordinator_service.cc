#include "coordinator/coordinator_service.h"

#include <algorithm>
#include <chrono>
#include <utility>

#include <openssl/crypto.h>

#include "common/error.h"
#include "common/log.h"
#include "common/version.h"
#include "client/coordinator_client.h"
#include "client/proto_convert.h"

namespace promptsweep {
namespace {

// Runs `body`; what it throws becomes the status (StatusOfException).
template <typename Body>
grpc::Status Forward(const char* rpc, Body&& body) {
  try {
    body();
    return grpc::Status::OK;
  } catch (...) {
    return StatusOfException(std::current_exception(), rpc);
  }
}

}  // namespace

// IoError is UNAVAILABLE, not INVALID_ARGUMENT: nothing was wrong with the
// request, and clients retry UNAVAILABLE with backoff. Retrying is safe: the
// failed transaction changed nothing, and every call is idempotent (a report
// is keyed by its attempt, a repeat of an applied one refused as stale; a
// submit by job ids). Failures that are the coordinator's are logged here.
grpc::Status StatusOfException(const std::exception_ptr& error, const char* rpc) {
  try {
    std::rethrow_exception(error);
  } catch (const IoError& e) {
    Logger("coordinator").error("{}: storage failure (the client retries): {}", rpc, e.what());
    return grpc::Status(grpc::StatusCode::UNAVAILABLE, StrCat(kStorageFailurePrefix, e.what()));
  } catch (const Error& e) {
    Logger("coordinator").debug("{}: refused: {}", rpc, e.what());
    return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, e.what());
  } catch (const std::exception& e) {
    Logger("coordinator").error("{}: {}", rpc, e.what());
    return grpc::Status(grpc::StatusCode::INTERNAL, StrCat("coordinator error: ", e.what()));
  } catch (...) {
    Logger("coordinator").error("{}: unknown exception", rpc);
    return grpc::Status(grpc::StatusCode::INTERNAL, "coordinator error: unknown exception");
  }
}

CoordinatorService::CoordinatorService(Scheduler& scheduler, ServiceOptions options)
    : scheduler_(scheduler), options_(std::move(options)) {}

grpc::Status CoordinatorService::Authorize(const grpc::ServerContext& context) const {
  if (options_.token.empty()) return grpc::Status::OK;
  const auto& metadata = context.client_metadata();
  const auto it = metadata.find("authorization");
  const std::string expected = "Bearer " + options_.token;
  // Constant-time comparison: the token must not leak through timing.
  if (it != metadata.end() && it->second.size() == expected.size() &&
      CRYPTO_memcmp(it->second.data(), expected.data(), expected.size()) == 0) {
    return grpc::Status::OK;
  }
  return grpc::Status(grpc::StatusCode::UNAUTHENTICATED,
                      it == metadata.end() ? "this coordinator needs a token: pass --token or set PROMPTSWEEP_TOKEN"
                                           : "wrong token (--token / PROMPTSWEEP_TOKEN)");
}

grpc::Status CoordinatorService::GetServerInfo(grpc::ServerContext* context, const v1::GetServerInfoRequest* request,
                                               v1::ServerInfo* reply) {
  if (grpc::Status status = Authorize(*context); !status.ok()) return status;
  reply->set_version(kVersion);
  reply->set_protocol_version(kProtocolVersion);
  reply->set_compatible(request->client_protocol_version() == kProtocolVersion);
  return grpc::Status::OK;
}

grpc::Status CoordinatorService::RegisterWorker(grpc::ServerContext* context,
                                                const v1::RegisterWorkerRequest* request,
                                                v1::RegisterWorkerReply* reply) {
  if (grpc::Status status = Authorize(*context); !status.ok()) return status;
  return Forward("RegisterWorker", [&] {
    reply->set_worker_id(scheduler_.RegisterWorker(FromProto(*request)));
    const int64_t timeout_ms = static_cast<int64_t>(scheduler_.lease_timeout_seconds() * 1000.0);
    reply->set_lease_timeout_ms(timeout_ms);
    // Three heartbeats per timeout: one lost heartbeat never loses a lease.
    reply->set_heartbeat_interval_ms(std::max<int64_t>(50, timeout_ms / 3));
  });
}

grpc::Status CoordinatorService::LeaseJob(grpc::ServerContext* context, const v1::LeaseJobRequest* request,
                                          v1::LeaseJobReply* reply) {
  if (grpc::Status status = Authorize(*context); !status.ok()) return status;
  if (!scheduler_.KnownWorker(request->worker_id())) {
    reply->set_unknown_worker(true);
    return grpc::Status::OK;
  }
  const std::vector<std::string> models(request->loaded_models().begin(), request->loaded_models().end());
  const std::vector<std::string> packs(request->running_packs().begin(), request->running_packs().end());
  const auto deadline = std::chrono::steady_clock::now() +
                        std::chrono::milliseconds(std::clamp<int64_t>(request->wait_ms(), 0, options_.max_lease_wait_ms));
  return Forward("LeaseJob", [&] {
    while (true) {
      if (std::optional<JobSpec> job = scheduler_.Lease(request->worker_id(), models, packs)) {
        ToProto(*job, reply->mutable_job());
        return;
      }
      if (context->IsCancelled() || std::chrono::steady_clock::now() >= deadline || scheduler_.shut_down()) return;
      // Wake at least every 200 ms to notice a client that went away.
      scheduler_.WaitForWork(std::min(deadline, std::chrono::steady_clock::now() + std::chrono::milliseconds(200)));
    }
  });
}

grpc::Status CoordinatorService::StreamProgress(grpc::ServerContext* context,
                                                grpc::ServerReader<v1::ProgressUpdate>* reader,
                                                v1::ProgressAck* reply) {
  if (grpc::Status status = Authorize(*context); !status.ok()) return status;
  v1::ProgressUpdate update;
  int64_t accepted = 0;
  int64_t rejected = 0;
  return Forward("StreamProgress", [&] {
    while (reader->Read(&update)) {
      const ReportAck ack = scheduler_.Progress(update.worker_id(), FromProto(update.lease()), FromProto(update));
      ++(ack.accepted ? accepted : rejected);
    }
    reply->set_accepted(accepted);
    reply->set_rejected(rejected);
  });
}

grpc::Status CoordinatorService::Heartbeat(grpc::ServerContext* context, const v1::HeartbeatRequest* request,
                                           v1::HeartbeatReply* reply) {
  if (grpc::Status status = Authorize(*context); !status.ok()) return status;
  if (!scheduler_.KnownWorker(request->worker_id())) {
    reply->set_unknown_worker(true);
    return grpc::Status::OK;
  }
  std::vector<LeaseRef> held;
  for (const v1::LeaseRef& lease : request->leases()) held.push_back(FromProto(lease));
  return Forward("Heartbeat", [&] {
    std::vector<StopOrder> stop;
    for (const LeaseRef& lease : scheduler_.Heartbeat(request->worker_id(), held, &stop)) {
      ToProto(lease, reply->add_revoked());
    }
    for (const StopOrder& order : stop) {
      v1::StopOrder* out = reply->add_stop();
      ToProto(order.lease, out->mutable_lease());
      out->set_reason(order.reason);
    }
  });
}

grpc::Status CoordinatorService::ReportResult(grpc::ServerContext* context, const v1::ReportResultRequest* request,
                                              v1::ReportReply* reply) {
  if (grpc::Status status = Authorize(*context); !status.ok()) return status;
  return Forward("ReportResult", [&] {
    const ReportAck ack = scheduler_.ReportResult(request->worker_id(), FromProto(request->lease()), FromProto(*request));
    reply->set_accepted(ack.accepted);
    reply->set_reason(ack.reason);
  });
}

grpc::Status CoordinatorService::ReportCheckpoint(grpc::ServerContext* context,
                                                  const v1::ReportCheckpointRequest* request, v1::ReportReply* reply) {
  if (grpc::Status status = Authorize(*context); !status.ok()) return status;
  return Forward("ReportCheckpoint", [&] {
    const ReportAck ack = scheduler_.ReportCheckpoint(request->worker_id(), FromProto(request->lease()),
                                                      request->checkpoint(), request->step());
    reply->set_accepted(ack.accepted);
    reply->set_reason(ack.reason);
  });
}

grpc::Status CoordinatorService::SubmitSweep(grpc::ServerContext* context, const v1::SubmitSweepRequest* request,
                                             v1::SubmitSweepReply* reply) {
  if (grpc::Status status = Authorize(*context); !status.ok()) return status;
  return Forward("SubmitSweep", [&] {
    const SubmitResult result = scheduler_.Submit(FromProto(*request));
    reply->set_sweep(result.sweep);
    reply->set_output_dir(result.output_dir);
    reply->set_added(result.added);
    reply->set_existing(result.existing);
  });
}

grpc::Status CoordinatorService::GetSweepStatus(grpc::ServerContext* context, const v1::SweepStatusRequest* request,
                                                v1::SweepStatusReply* reply) {
  if (grpc::Status status = Authorize(*context); !status.ok()) return status;
  return Forward("GetSweepStatus", [&] {
    if (request->sweep().empty()) {
      for (const std::string& name : scheduler_.SweepNames()) reply->add_sweeps(name);
      return;
    }
    ToProto(scheduler_.Status(request->sweep(), request->jobs()), request->jobs(), reply);
  });
}

grpc::Status CoordinatorService::CancelSweep(grpc::ServerContext* context, const v1::CancelSweepRequest* request,
                                             v1::CancelSweepReply* reply) {
  if (grpc::Status status = Authorize(*context); !status.ok()) return status;
  return Forward("CancelSweep", [&] {
    const std::vector<std::string> ids(request->job_ids().begin(), request->job_ids().end());
    reply->set_cancelled(scheduler_.Cancel(request->sweep(), ids));
  });
}

}  // namespace promptsweep
