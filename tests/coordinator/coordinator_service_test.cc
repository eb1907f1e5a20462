// A real gRPC round trip on 127.0.0.1 with an OS-chosen port.
#include "coordinator/coordinator_service.h"

#include <memory>

#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include "common/version.h"

namespace promptsweep {
namespace {

class CoordinatorServiceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    grpc::ServerBuilder builder;
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port_);
    builder.RegisterService(&service_);
    server_ = builder.BuildAndStart();
    ASSERT_NE(server_, nullptr);
    ASSERT_GT(port_, 0);
    auto channel = grpc::CreateChannel("127.0.0.1:" + std::to_string(port_),
                                       grpc::InsecureChannelCredentials());
    stub_ = v1::Coordinator::NewStub(channel);
  }
  void TearDown() override { server_->Shutdown(); }

  v1::ServerInfo Call(uint32_t client_version) {
    grpc::ClientContext context;
    v1::GetServerInfoRequest request;
    request.set_client_protocol_version(client_version);
    v1::ServerInfo reply;
    const grpc::Status status = stub_->GetServerInfo(&context, request, &reply);
    EXPECT_TRUE(status.ok()) << status.error_message();
    return reply;
  }

  CoordinatorService service_;
  int port_ = 0;
  std::unique_ptr<grpc::Server> server_;
  std::unique_ptr<v1::Coordinator::Stub> stub_;
};

TEST_F(CoordinatorServiceTest, ReportsVersionOverRealSocket) {
  const v1::ServerInfo info = Call(kProtocolVersion);
  EXPECT_EQ(info.version(), kVersion);
  EXPECT_EQ(info.protocol_version(), kProtocolVersion);
  EXPECT_TRUE(info.compatible());
}

TEST_F(CoordinatorServiceTest, FlagsIncompatibleClient) {
  EXPECT_FALSE(Call(kProtocolVersion + 1).compatible());
}

}  // namespace
}  // namespace promptsweep
