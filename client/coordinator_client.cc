#include "client/coordinator_client.h"

#include <algorithm>
#include <chrono>
#include <thread>
#include <utility>

#include <grpcpp/grpcpp.h>

#include "common/error.h"
#include "common/version.h"
#include "common/file_util.h"
#include "common/log.h"
#include "client/proto_convert.h"
#include "promptsweep.grpc.pb.h"

namespace promptsweep {
namespace {

using Clock = std::chrono::steady_clock;

// Unreachable, or the coordinator shutting down under a call (its server
// cancels calls in flight, e.g. a worker's long-poll, when it stops): retried.
// This client never cancels its own calls.
bool Transient(const grpc::Status& status) {
  return status.error_code() == grpc::StatusCode::UNAVAILABLE ||
         status.error_code() == grpc::StatusCode::CANCELLED;
}

}  // namespace

class CoordinatorClient::Impl {
 public:
  explicit Impl(ClientOptions options) : options_(std::move(options)) {
    if (options_.address.empty()) throw Error("no coordinator address: give --coordinator HOST:PORT");
    std::shared_ptr<grpc::ChannelCredentials> credentials;
    if (!options_.tls_ca.empty()) {
      grpc::SslCredentialsOptions ssl;
      ssl.pem_root_certs = ReadPemFile(options_.tls_ca, "CA certificate");
      credentials = grpc::SslCredentials(ssl);
    } else {
      credentials = grpc::InsecureChannelCredentials();
    }
    grpc::ChannelArguments args;
    args.SetMaxReceiveMessageSize(static_cast<int>(options_.max_message_bytes));
    args.SetMaxSendMessageSize(static_cast<int>(options_.max_message_bytes));
    // Reconnect quickly after a coordinator restart (gRPC's default backoff grows to 2 minutes).
    args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 2000);
    args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 100);
    args.SetInt(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, 100);
    stub_ = v1::Coordinator::NewStub(grpc::CreateCustomChannel(options_.address, credentials, args));
  }

  // Calls `rpc(context)` until it succeeds or fails for good. Transient
  // failures (coordinator unreachable, or its storage failing) are retried
  // with exponential backoff for up to reconnect_timeout_seconds. Retrying is
  // safe for every call: the coordinator changed nothing when it answered
  // UNAVAILABLE, and a report repeated after a lost answer is refused as
  // stale rather than counted twice (reports are keyed by attempt).
  template <typename Rpc>
  void Call(const char* what, double timeout_seconds, Rpc&& rpc) {
    const auto give_up = Clock::now() + std::chrono::duration_cast<Clock::duration>(
                                            std::chrono::duration<double>(options_.reconnect_timeout_seconds));
    double backoff = 0.1;
    while (true) {
      grpc::ClientContext context;
      Prepare(context, timeout_seconds);
      const grpc::Status status = rpc(context);
      if (status.ok()) return;
      if (!Transient(status) || Clock::now() >= give_up) throw CallError(what, status);
      Logger("client").debug("{} to {}: {}; retrying in {} s", what, options_.address, status.error_message(),
                             backoff);
      std::this_thread::sleep_for(std::chrono::duration<double>(backoff));
      backoff = std::min(backoff * 2.0, 5.0);
    }
  }

  void Prepare(grpc::ClientContext& context, double timeout_seconds) const {
    if (!options_.token.empty()) context.AddMetadata("authorization", "Bearer " + options_.token);
    context.set_deadline(std::chrono::system_clock::now() +
                         std::chrono::duration_cast<std::chrono::system_clock::duration>(
                             std::chrono::duration<double>(timeout_seconds)));
  }

  Error CallError(const char* what, const grpc::Status& status) const {
    switch (status.error_code()) {
      case grpc::StatusCode::UNAVAILABLE:
        if (status.error_message().rfind(kStorageFailurePrefix, 0) == 0) {
          return Error(StrCat("coordinator at ", options_.address, " (", what, "): ", status.error_message(),
                              "; retried for ", options_.reconnect_timeout_seconds,
                              " s: free space or fix the disk of its state directory"));
        }
        return Error(StrCat("cannot reach the coordinator at ", options_.address, " (", what, "): ",
                            status.error_message(), "; is `promptsweep coordinator` running there?"));
      case grpc::StatusCode::UNAUTHENTICATED:
        return Error(StrCat("coordinator at ", options_.address, " refused the call: ", status.error_message()));
      case grpc::StatusCode::INVALID_ARGUMENT:
        return Error(status.error_message());
      default:
        return Error(StrCat("coordinator at ", options_.address, ": ", what, " failed: ", status.error_message()));
    }
  }

  class Stream;

  ClientOptions options_;
  std::unique_ptr<v1::Coordinator::Stub> stub_;
};

class CoordinatorClient::Impl::Stream final : public CoordinatorClient::ProgressStream {
 public:
  explicit Stream(Impl& impl) : impl_(impl) {}
  ~Stream() override {
    if (writer_ != nullptr) {
      writer_->WritesDone();
      writer_->Finish();
    }
  }

  void Write(const std::string& worker_id, const LeaseRef& lease, const JobProgress& progress) override {
    if (broken_) return;
    if (writer_ == nullptr) {
      impl_.Prepare(context_, 24.0 * 3600.0);
      writer_ = impl_.stub_->StreamProgress(&context_, &ack_);
    }
    v1::ProgressUpdate update;
    update.set_worker_id(worker_id);
    ToProto(lease, update.mutable_lease());
    ToProto(progress, &update);
    if (!writer_->Write(update)) broken_ = true;
  }

 private:
  Impl& impl_;
  grpc::ClientContext context_;
  v1::ProgressAck ack_;
  std::unique_ptr<grpc::ClientWriter<v1::ProgressUpdate>> writer_;
  bool broken_ = false;
};


namespace {

// Short calls get this deadline; a long-poll gets its wait on top.
constexpr double kCallSeconds = 30.0;


}  // namespace

CoordinatorClient::CoordinatorClient(ClientOptions options) : impl_(std::make_unique<Impl>(std::move(options))) {}
CoordinatorClient::~CoordinatorClient() = default;

const std::string& CoordinatorClient::address() const { return impl_->options_.address; }

std::string CoordinatorClient::Handshake() {
  v1::GetServerInfoRequest request;
  request.set_client_protocol_version(kProtocolVersion);
  v1::ServerInfo reply;
  impl_->Call("handshake", kCallSeconds,
              [&](grpc::ClientContext& c) { return impl_->stub_->GetServerInfo(&c, request, &reply); });
  if (!reply.compatible()) {
    throw Error(StrCat("coordinator at ", address(), " is promptsweep ", reply.version(), " speaking protocol ",
                       reply.protocol_version(), "; this client (", kVersion, ") speaks ", kProtocolVersion,
                       ": run the same release on both sides"));
  }
  return reply.version();
}

RegisterReply CoordinatorClient::RegisterWorker(const WorkerInfo& info, const std::vector<std::string>& loaded_models) {
  v1::RegisterWorkerRequest request;
  ToProto(info, &request);
  for (const std::string& model : loaded_models) request.add_loaded_models(model);
  v1::RegisterWorkerReply reply;
  impl_->Call("register", kCallSeconds,
              [&](grpc::ClientContext& c) { return impl_->stub_->RegisterWorker(&c, request, &reply); });
  return RegisterReply{reply.worker_id(), reply.heartbeat_interval_ms(), reply.lease_timeout_ms()};
}

LeaseReply CoordinatorClient::LeaseJob(const std::string& worker_id, const std::vector<std::string>& loaded_models,
                                       int64_t wait_ms, const std::vector<std::string>& running_packs) {
  v1::LeaseJobRequest request;
  request.set_worker_id(worker_id);
  for (const std::string& model : loaded_models) request.add_loaded_models(model);
  request.set_wait_ms(wait_ms);
  for (const std::string& pack : running_packs) request.add_running_packs(pack);
  v1::LeaseJobReply reply;
  impl_->Call("lease", kCallSeconds + static_cast<double>(wait_ms) / 1000.0,
              [&](grpc::ClientContext& c) { return impl_->stub_->LeaseJob(&c, request, &reply); });
  LeaseReply result;
  result.unknown_worker = reply.unknown_worker();
  if (reply.has_job()) result.job = FromProto(reply.job());
  return result;
}

HeartbeatReply CoordinatorClient::Heartbeat(const std::string& worker_id, const std::vector<LeaseRef>& leases) {
  v1::HeartbeatRequest request;
  request.set_worker_id(worker_id);
  for (const LeaseRef& lease : leases) ToProto(lease, request.add_leases());
  v1::HeartbeatReply reply;
  impl_->Call("heartbeat", kCallSeconds,
              [&](grpc::ClientContext& c) { return impl_->stub_->Heartbeat(&c, request, &reply); });
  HeartbeatReply result;
  result.unknown_worker = reply.unknown_worker();
  for (const v1::LeaseRef& lease : reply.revoked()) result.revoked.push_back(FromProto(lease));
  for (const v1::StopOrder& order : reply.stop()) {
    result.stop.push_back(StopOrder{FromProto(order.lease()), order.reason()});
  }
  return result;
}

ReportAck CoordinatorClient::ReportResult(const std::string& worker_id, const LeaseRef& lease,
                                          const JobOutcome& outcome) {
  v1::ReportResultRequest request;
  request.set_worker_id(worker_id);
  ToProto(lease, request.mutable_lease());
  ToProto(outcome, &request);
  v1::ReportReply reply;
  impl_->Call("report result", kCallSeconds,
              [&](grpc::ClientContext& c) { return impl_->stub_->ReportResult(&c, request, &reply); });
  return ReportAck{reply.accepted(), reply.reason()};
}

ReportAck CoordinatorClient::ReportCheckpoint(const std::string& worker_id, const LeaseRef& lease,
                                              const std::string& checkpoint, int64_t step) {
  v1::ReportCheckpointRequest request;
  request.set_worker_id(worker_id);
  ToProto(lease, request.mutable_lease());
  request.set_checkpoint(checkpoint);
  request.set_step(step);
  v1::ReportReply reply;
  impl_->Call("report checkpoint", kCallSeconds,
              [&](grpc::ClientContext& c) { return impl_->stub_->ReportCheckpoint(&c, request, &reply); });
  return ReportAck{reply.accepted(), reply.reason()};
}

SubmitResult CoordinatorClient::Submit(const SweepSubmission& sweep) {
  v1::SubmitSweepRequest request;
  ToProto(sweep, &request);
  v1::SubmitSweepReply reply;
  impl_->Call("submit", 120.0, [&](grpc::ClientContext& c) { return impl_->stub_->SubmitSweep(&c, request, &reply); });
  return SubmitResult{reply.sweep(), reply.output_dir(), reply.added(), reply.existing()};
}

SweepStatus CoordinatorClient::Status(const std::string& sweep, bool with_jobs) {
  v1::SweepStatusRequest request;
  request.set_sweep(sweep);
  request.set_jobs(with_jobs);
  v1::SweepStatusReply reply;
  impl_->Call("status", kCallSeconds,
              [&](grpc::ClientContext& c) { return impl_->stub_->GetSweepStatus(&c, request, &reply); });
  return FromProto(reply);
}

std::vector<std::string> CoordinatorClient::SweepNames() {
  v1::SweepStatusRequest request;
  v1::SweepStatusReply reply;
  impl_->Call("status", kCallSeconds,
              [&](grpc::ClientContext& c) { return impl_->stub_->GetSweepStatus(&c, request, &reply); });
  return {reply.sweeps().begin(), reply.sweeps().end()};
}

int64_t CoordinatorClient::Cancel(const std::string& sweep, const std::vector<std::string>& job_ids) {
  v1::CancelSweepRequest request;
  request.set_sweep(sweep);
  for (const std::string& id : job_ids) request.add_job_ids(id);
  v1::CancelSweepReply reply;
  impl_->Call("cancel", kCallSeconds,
              [&](grpc::ClientContext& c) { return impl_->stub_->CancelSweep(&c, request, &reply); });
  return reply.cancelled();
}

std::unique_ptr<CoordinatorClient::ProgressStream> CoordinatorClient::OpenProgressStream() {
  return std::make_unique<Impl::Stream>(*impl_);
}

}  // namespace promptsweep
