#include "coordinator/coordinator_service.h"

#include "common/version.h"

namespace promptsweep {

grpc::Status CoordinatorService::GetServerInfo(grpc::ServerContext* /*context*/,
                                               const v1::GetServerInfoRequest* request,
                                               v1::ServerInfo* reply) {
  reply->set_version(kVersion);
  reply->set_protocol_version(kProtocolVersion);
  reply->set_compatible(request->client_protocol_version() == kProtocolVersion);
  return grpc::Status::OK;
}

}  // namespace promptsweep
