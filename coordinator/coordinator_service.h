// gRPC face of the coordinator. It only converts between proto messages and
// domain calls; scheduling logic lives in plain classes beside it.
#pragma once

#include <grpcpp/grpcpp.h>

#include "promptsweep.grpc.pb.h"

namespace promptsweep {

// Thread-safe: gRPC calls its methods from many threads; it holds no state yet.
class CoordinatorService final : public v1::Coordinator::Service {
 public:
  grpc::Status GetServerInfo(grpc::ServerContext* context, const v1::GetServerInfoRequest* request,
                             v1::ServerInfo* reply) override;
};

}  // namespace promptsweep
