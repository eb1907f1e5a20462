// The coordinator over real gRPC on 127.0.0.1 (port 0), with a real SQLite
// scheduler behind it: the typed client, the token, TLS, the worker loop with
// the built-in sleep jobs, preemption and a stale report.
#include "coordinator/coordinator_server.h"

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <exception>
#include <memory>
#include <thread>

#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include "common/version.h"
#include "client/coordinator_client.h"
#include "coordinator/coordinator_service.h"
#include "promptsweep.grpc.pb.h"
#include "test_utils.h"
#include "worker/sweep_worker.h"

namespace promptsweep {
namespace {

using test::ErrorOf;
using test::HasText;
using test::ScopedTempDir;

// A sweep of `n` sleep jobs of `seconds` each.
SweepSubmission SleepSweep(const std::string& name, int n, double seconds) {
  SweepSubmission sweep;
  sweep.name = name;
  sweep.metric_name = "loss";
  sweep.maximize = false;
  sweep.parameters = {"index"};
  for (int i = 0; i < n; ++i) {
    SweepSubmission::Job job;
    char id[17];
    std::snprintf(id, sizeof(id), "%016x", i + 1);
    job.id = id;
    job.kind = std::string(kSleepJob);
    job.swept = {{"index", std::to_string(i)}};
    job.settings = {{"seconds", std::to_string(seconds)}, {"index", std::to_string(i)}};
    sweep.jobs.push_back(std::move(job));
  }
  return sweep;
}

class CoordinatorServiceTest : public ::testing::Test {
 protected:
  void Start(const std::string& token = "", const std::string& cert = "", const std::string& key = "",
             double lease_timeout = 5.0) {
    SchedulerOptions options;
    options.state_dir = state_.File("state");
    options.lease_timeout_seconds = lease_timeout;
    scheduler_ = std::make_unique<Scheduler>(options);
    ServerOptions server;
    server.listen = "127.0.0.1:0";
    server.token = token;
    server.tls_cert = cert;
    server.tls_key = key;
    server_ = std::make_unique<CoordinatorServer>(*scheduler_, server);
  }
  ClientOptions Client(const std::string& token = "") const {
    ClientOptions options;
    options.address = "127.0.0.1:" + std::to_string(server_->port());
    options.token = token;
    options.reconnect_timeout_seconds = 2.0;
    return options;
  }
  void TearDown() override {
    if (server_) server_->Shutdown();
  }

  ScopedTempDir state_;
  std::unique_ptr<Scheduler> scheduler_;
  std::unique_ptr<CoordinatorServer> server_;
};

TEST_F(CoordinatorServiceTest, HandshakeReportsVersion) {
  Start();
  CoordinatorClient client(Client());
  EXPECT_EQ(client.Handshake(), kVersion);
}

TEST_F(CoordinatorServiceTest, FlagsIncompatibleClient) {
  Start();
  auto channel = grpc::CreateChannel("127.0.0.1:" + std::to_string(server_->port()), grpc::InsecureChannelCredentials());
  auto stub = v1::Coordinator::NewStub(channel);
  grpc::ClientContext context;
  v1::GetServerInfoRequest request;
  request.set_client_protocol_version(kProtocolVersion + 1);
  v1::ServerInfo reply;
  ASSERT_TRUE(stub->GetServerInfo(&context, request, &reply).ok());
  EXPECT_FALSE(reply.compatible());
}

TEST_F(CoordinatorServiceTest, CallsWithoutTheTokenAreRejected) {
  Start("s3cret");
  EXPECT_TRUE(HasText(ErrorOf([&] { CoordinatorClient(Client()).Handshake(); }), "needs a token"));
  EXPECT_TRUE(HasText(ErrorOf([&] { CoordinatorClient(Client("wrong")).SweepNames(); }), "wrong token"));
  // Every rpc, not only the handshake: a worker call without the token too.
  EXPECT_TRUE(HasText(ErrorOf([&] { CoordinatorClient(Client()).RegisterWorker(WorkerInfo{}, {}); }), "token"));
  CoordinatorClient good(Client("s3cret"));
  EXPECT_EQ(good.Handshake(), kVersion);
  EXPECT_TRUE(good.SweepNames().empty());
}

TEST_F(CoordinatorServiceTest, TlsWithACertificate) {
  ScopedTempDir certs;
  const std::string cert = certs.File("cert.pem");
  const std::string key = certs.File("key.pem");
  const std::string command = "openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=localhost "
                              "-addext subjectAltName=IP:127.0.0.1,DNS:localhost -keyout " +
                              key + " -out " + cert + " >/dev/null 2>&1";
  if (std::system(command.c_str()) != 0) GTEST_SKIP() << "openssl could not make a certificate";
  Start("tok", cert, key);
  ClientOptions tls = Client("tok");
  tls.tls_ca = cert;
  EXPECT_EQ(CoordinatorClient(tls).Handshake(), kVersion);
  // A plaintext client cannot talk to a TLS coordinator.
  EXPECT_FALSE(ErrorOf([&] { CoordinatorClient(Client("tok")).Handshake(); }).empty());
}

TEST_F(CoordinatorServiceTest, SubmitErrorsComeBackAsMessages) {
  Start();
  CoordinatorClient client(Client());
  SweepSubmission sweep = SleepSweep("bad name!", 1, 0.0);
  EXPECT_TRUE(HasText(ErrorOf([&] { client.Submit(sweep); }), "bad name!"));
  EXPECT_TRUE(HasText(ErrorOf([&] { client.Status("nope", false); }), "nope"));
}

TEST_F(CoordinatorServiceTest, WorkersRunEverySleepJobOnce) {
  Start();
  CoordinatorClient client(Client());
  const SubmitResult submitted = client.Submit(SleepSweep("sleepy", 12, 0.05));
  EXPECT_EQ(submitted.added, 12);
  std::atomic<bool> shutdown{false};
  std::vector<std::thread> threads;
  std::atomic<int64_t> jobs{0};
  for (int w = 0; w < 3; ++w) {
    threads.emplace_back([&] {
      SweepWorkerOptions options;
      options.client = Client();
      options.lease_wait_ms = 200;
      options.log = [](const std::string&) {};
      SweepWorker worker(options, nullptr, nullptr);
      jobs += worker.Run(shutdown).jobs;
    });
  }
  for (int i = 0; i < 200 && !client.Status("sleepy", false).done; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  shutdown = true;
  for (std::thread& t : threads) t.join();
  const SweepStatus status = client.Status("sleepy", true);
  EXPECT_TRUE(status.done);
  EXPECT_EQ(status.succeeded, 12);
  EXPECT_EQ(jobs.load(), 12);
  for (const JobStatusRow& row : status.jobs) EXPECT_EQ(row.attempts, 1) << row.job_id;
  // Resubmitting adds nothing and leases nothing.
  EXPECT_EQ(client.Submit(SleepSweep("sleepy", 12, 0.05)).added, 0);
  const std::string results = test::ReadFileBytes(status.output_dir + "/results.csv");
  EXPECT_EQ(std::count(results.begin(), results.end(), '\n'), 13) << results;
}

TEST_F(CoordinatorServiceTest, PreemptedJobResumesOnTheNextWorker) {
  Start();
  CoordinatorClient client(Client());
  client.Submit(SleepSweep("preempt", 1, 30.0));
  std::atomic<bool> shutdown{false};
  std::thread first([&] {
    SweepWorkerOptions options;
    options.client = Client();
    options.lease_wait_ms = 200;
    options.log = [](const std::string&) {};
    SweepWorker worker(options, nullptr, nullptr);
    const SweepWorkerSummary summary = worker.Run(shutdown);
    EXPECT_EQ(summary.preempted, 1);
  });
  for (int i = 0; i < 100 && client.Status("preempt", false).leased + client.Status("preempt", false).running == 0;
       ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  shutdown = true;  // what SIGTERM does in the CLI
  first.join();
  SweepStatus status = client.Status("preempt", true);
  ASSERT_EQ(status.pending, 1);
  EXPECT_TRUE(status.jobs[0].has_checkpoint);
  // The next lease carries the checkpoint and the next attempt number.
  const RegisterReply worker = client.RegisterWorker(WorkerInfo{}, {});
  const LeaseReply lease = client.LeaseJob(worker.worker_id, {}, 1000);
  ASSERT_TRUE(lease.job.has_value());
  EXPECT_EQ(lease.job->attempt, 2);
  EXPECT_EQ(lease.job->checkpoint, "sleep");
}

TEST_F(CoordinatorServiceTest, LateResultOfAnExpiredLeaseIsRejected) {
  Start("", "", "", /*lease_timeout=*/0.5);
  CoordinatorClient client(Client());
  client.Submit(SleepSweep("late", 1, 0.0));
  const std::string dead = client.RegisterWorker(WorkerInfo{}, {}).worker_id;
  const LeaseReply first = client.LeaseJob(dead, {}, 1000);
  ASSERT_TRUE(first.job.has_value());
  // No heartbeat: the lease runs out and the job goes to another worker.
  const std::string alive = client.RegisterWorker(WorkerInfo{}, {}).worker_id;
  const LeaseReply second = client.LeaseJob(alive, {}, 5000);
  ASSERT_TRUE(second.job.has_value());
  EXPECT_EQ(second.job->attempt, 2);
  JobOutcome outcome;
  outcome.state = JobState::kSucceeded;
  const ReportAck late = client.ReportResult(dead, LeaseRef{"late", first.job->job_id, 1}, outcome);
  EXPECT_FALSE(late.accepted);
  EXPECT_TRUE(HasText(late.reason, "attempt"));
  EXPECT_TRUE(client.ReportResult(alive, LeaseRef{"late", second.job->job_id, 2}, outcome).accepted);
  const SweepStatus status = client.Status("late", true);
  EXPECT_EQ(status.succeeded, 1);
  const std::string results = test::ReadFileBytes(status.output_dir + "/results.csv");
  EXPECT_EQ(std::count(results.begin(), results.end(), '\n'), 2) << results;
}

TEST_F(CoordinatorServiceTest, UnreachableCoordinatorIsAClearError) {
  ClientOptions options;
  options.address = "127.0.0.1:1";  // nothing listens on port 1
  options.reconnect_timeout_seconds = 0.3;
  EXPECT_TRUE(HasText(ErrorOf([&] { CoordinatorClient(options).Handshake(); }), "cannot reach the coordinator"));
}

// A report retried after its answer was lost (what the client does on
// UNAVAILABLE) is refused as stale, so the job keeps exactly one result.
TEST_F(CoordinatorServiceTest, RepeatedReportCountsOnce) {
  Start();
  CoordinatorClient client(Client());
  client.Submit(SleepSweep("twice", 1, 0.0));
  const std::string worker = client.RegisterWorker(WorkerInfo{}, {}).worker_id;
  const LeaseReply lease = client.LeaseJob(worker, {}, 1000);
  ASSERT_TRUE(lease.job.has_value());
  JobOutcome outcome;
  outcome.state = JobState::kSucceeded;
  const LeaseRef ref{"twice", lease.job->job_id, lease.job->attempt};
  EXPECT_TRUE(client.ReportResult(worker, ref, outcome).accepted);
  EXPECT_FALSE(client.ReportResult(worker, ref, outcome).accepted);
  const SweepStatus status = client.Status("twice", true);
  EXPECT_EQ(status.succeeded, 1);
  const std::string results = test::ReadFileBytes(status.output_dir + "/results.csv");
  EXPECT_EQ(std::count(results.begin(), results.end(), '\n'), 2) << results;
}

TEST(CoordinatorServiceStatusTest, ErrorKindsMapToStatusCodes) {
  const grpc::Status user = StatusOfException(std::make_exception_ptr(Error("unknown sweep 'x'")), "test");
  EXPECT_EQ(user.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(user.error_message(), "unknown sweep 'x'");
  const grpc::Status disk = StatusOfException(std::make_exception_ptr(IoError("db: disk I/O error")), "test");
  EXPECT_EQ(disk.error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_EQ(disk.error_message(), std::string(kStorageFailurePrefix) + "db: disk I/O error");
  const grpc::Status bug = StatusOfException(std::make_exception_ptr(InternalError("check failed")), "test");
  EXPECT_EQ(bug.error_code(), grpc::StatusCode::INTERNAL);
  EXPECT_TRUE(HasText(bug.error_message(), "check failed"));
}

// A coordinator whose storage fails `failures` times (then works) for ReportResult.
class FlakyStorageService final : public v1::Coordinator::Service {
 public:
  explicit FlakyStorageService(int failures) : failures_(failures) {}
  grpc::Status ReportResult(grpc::ServerContext*, const v1::ReportResultRequest*, v1::ReportReply* reply) override {
    if (calls_++ < failures_) {
      return StatusOfException(std::make_exception_ptr(IoError("promptsweep.db: database or disk is full")),
                               "ReportResult");
    }
    reply->set_accepted(true);
    return grpc::Status::OK;
  }
  std::atomic<int> calls_{0};

 private:
  const int failures_;
};

class FlakyStorageTest : public ::testing::Test {
 protected:
  ClientOptions Serve(int failures, double reconnect_timeout) {
    service_ = std::make_unique<FlakyStorageService>(failures);
    grpc::ServerBuilder builder;
    int port = 0;
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
    builder.RegisterService(service_.get());
    server_ = builder.BuildAndStart();
    ClientOptions options;
    options.address = "127.0.0.1:" + std::to_string(port);
    options.reconnect_timeout_seconds = reconnect_timeout;
    return options;
  }
  void TearDown() override {
    if (server_) server_->Shutdown();
  }
  std::unique_ptr<FlakyStorageService> service_;
  std::unique_ptr<grpc::Server> server_;
};

TEST_F(FlakyStorageTest, ClientRetriesAStorageFailure) {
  CoordinatorClient client(Serve(/*failures=*/2, /*reconnect_timeout=*/30.0));
  EXPECT_TRUE(client.ReportResult("w1", LeaseRef{"s", "j", 1}, JobOutcome{}).accepted);
  EXPECT_EQ(service_->calls_.load(), 3);
}

TEST_F(FlakyStorageTest, LastingStorageFailureSaysSo) {
  CoordinatorClient client(Serve(/*failures=*/1000, /*reconnect_timeout=*/0.3));
  const std::string message = ErrorOf([&] { client.ReportResult("w1", LeaseRef{"s", "j", 1}, JobOutcome{}); });
  EXPECT_TRUE(HasText(message, "coordinator storage failure: promptsweep.db: database or disk is full")) << message;
  EXPECT_FALSE(HasText(message, "cannot reach")) << message;
  EXPECT_GE(service_->calls_.load(), 2);
}

}  // namespace
}  // namespace promptsweep
