// The coordinator over real gRPC on 127.0.0.1 (port 0), with a real SQLite
// scheduler behind it: the typed client, the token, TLS, the worker loop with
// the built-in sleep jobs, preemption and a stale report, workers with
// several slots (--pack K).
#include "coordinator/coordinator_server.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include "common/version.h"
#include "client/coordinator_client.h"
#include "coordinator/coordinator_service.h"
#include "coordinator/sweep_spec.h"
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

// How many jobs a worker runs at once, from its log: "leased ..." starts one,
// the job's last line ("job <id> attempt <n>: succeeded ..." / "preempted" /
// "lease revoked" / "could not report") ends it.
class JobCounter {
 public:
  std::function<void(const std::string&)> Hook() {
    return [this](const std::string& line) {
      std::lock_guard<std::mutex> lock(mutex_);
      if (line.rfind("leased ", 0) == 0) {
        ++leases_;
        max_ = std::max(max_, ++current_);
      } else if (line.rfind("job ", 0) == 0) {
        --current_;
      }
    };
  }
  int64_t max() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return max_;
  }
  int64_t leases() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return leases_;
  }

 private:
  mutable std::mutex mutex_;
  int64_t current_ = 0;
  int64_t max_ = 0;
  int64_t leases_ = 0;
};

// Lines of the sweep's results.csv, header included.
int64_t ResultLines(const SweepStatus& status) {
  const std::string results = test::ReadFileBytes(status.output_dir + "/results.csv");
  return std::count(results.begin(), results.end(), '\n');
}

// Jobs of `sweep` that are leased or running now.
int64_t Active(CoordinatorClient& client, const std::string& sweep) {
  const SweepStatus status = client.Status(sweep, false);
  return status.leased + status.running;
}

SweepWorkerOptions SlotWorker(ClientOptions client, int64_t slots, std::function<void(const std::string&)> log) {
  SweepWorkerOptions options;
  options.client = std::move(client);
  options.slots = slots;
  options.lease_wait_ms = 200;
  options.log = std::move(log);
  return options;
}

TEST_F(CoordinatorServiceTest, WorkerWithThreeSlotsRunsThreeJobsAtOnce) {
  Start();
  CoordinatorClient client(Client());
  client.Submit(SleepSweep("packed", 6, 1.0));
  JobCounter counter;
  std::atomic<bool> shutdown{false};
  SweepWorkerSummary summary;
  const auto start = std::chrono::steady_clock::now();
  std::thread thread([&] { summary = SweepWorker(SlotWorker(Client(), 3, counter.Hook()), nullptr, nullptr).Run(shutdown); });
  int64_t max_active = 0;
  double makespan = 0.0;
  for (int i = 0; i < 1000; ++i) {
    max_active = std::max(max_active, Active(client, "packed"));
    if (client.Status("packed", false).done) {
      makespan = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  shutdown = true;
  thread.join();
  const SweepStatus status = client.Status("packed", true);
  EXPECT_TRUE(status.done);
  EXPECT_EQ(status.succeeded, 6);
  for (const JobStatusRow& row : status.jobs) EXPECT_EQ(row.attempts, 1) << row.job_id;
  EXPECT_EQ(summary.jobs, 6);
  EXPECT_EQ(summary.exit_reason, "shutdown");
  EXPECT_EQ(counter.leases(), 6);
  EXPECT_EQ(counter.max(), 3);  // the worker's view
  EXPECT_EQ(max_active, 3);     // the coordinator's: never more than 3 leases
  // Two rounds of 1 s, not six (generous: the machine is shared).
  EXPECT_GT(makespan, 1.9);
  EXPECT_LT(makespan, 5.0);
  EXPECT_EQ(ResultLines(status), 7);
}

TEST_F(CoordinatorServiceTest, ShutdownHandsBackEverySlotsCheckpoint) {
  Start();
  CoordinatorClient client(Client());
  client.Submit(SleepSweep("preempt3", 3, 1.0));
  std::atomic<bool> shutdown{false};
  SweepWorkerSummary first;
  std::thread thread([&] {
    first = SweepWorker(SlotWorker(Client(), 3, [](const std::string&) {}), nullptr, nullptr).Run(shutdown);
  });
  for (int i = 0; i < 250 && Active(client, "preempt3") < 3; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  ASSERT_EQ(Active(client, "preempt3"), 3);
  shutdown = true;  // what SIGTERM does in the CLI
  thread.join();
  EXPECT_EQ(first.preempted, 3);
  EXPECT_EQ(first.jobs, 0);
  EXPECT_EQ(first.exit_reason, "shutdown");
  SweepStatus status = client.Status("preempt3", true);
  ASSERT_EQ(status.pending, 3);
  for (const JobStatusRow& row : status.jobs) EXPECT_TRUE(row.has_checkpoint) << row.job_id;

  // The next worker resumes all three; each finishes once, on its second attempt.
  std::atomic<bool> second_shutdown{false};
  SweepWorkerSummary second;
  std::thread next([&] {
    second = SweepWorker(SlotWorker(Client(), 3, [](const std::string&) {}), nullptr, nullptr).Run(second_shutdown);
  });
  for (int i = 0; i < 500 && !client.Status("preempt3", false).done; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  second_shutdown = true;
  next.join();
  EXPECT_EQ(second.jobs, 3);
  EXPECT_EQ(second.preempted, 0);
  status = client.Status("preempt3", true);
  EXPECT_EQ(status.succeeded, 3);
  for (const JobStatusRow& row : status.jobs) {
    EXPECT_EQ(row.attempts, 2) << row.job_id;
    EXPECT_FALSE(row.has_checkpoint) << row.job_id;
  }
  EXPECT_EQ(ResultLines(status), 4);
}

TEST_F(CoordinatorServiceTest, MaxJobsCountsEverySlot) {
  Start();
  CoordinatorClient client(Client());
  client.Submit(SleepSweep("limited", 8, 0.3));
  for (const int64_t max_jobs : {4, 2}) {
    JobCounter counter;
    SweepWorkerOptions options = SlotWorker(Client(), 3, counter.Hook());
    options.max_jobs = max_jobs;
    std::atomic<bool> shutdown{false};
    std::atomic<int64_t> max_active{0};
    std::atomic<bool> done{false};
    std::thread watch([&] {
      CoordinatorClient watcher(Client());
      while (!done.load()) {
        max_active = std::max(max_active.load(), Active(watcher, "limited"));
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
      }
    });
    const SweepWorkerSummary summary = SweepWorker(options, nullptr, nullptr).Run(shutdown);
    done = true;
    watch.join();
    EXPECT_EQ(summary.jobs, max_jobs);
    EXPECT_EQ(summary.exit_reason, "max jobs");
    EXPECT_EQ(counter.leases(), max_jobs);  // never a lease beyond the limit
    EXPECT_LE(counter.max(), std::min<int64_t>(3, max_jobs));
    EXPECT_LE(max_active.load(), std::min<int64_t>(3, max_jobs));
  }
  const SweepStatus status = client.Status("limited", true);
  EXPECT_EQ(status.succeeded, 6);
  EXPECT_EQ(status.pending, 2);
}

TEST_F(CoordinatorServiceTest, IdleExitWhenNoSlotGetsAJob) {
  Start();
  SweepWorkerOptions options = SlotWorker(Client(), 3, [](const std::string&) {});
  options.idle_exit_seconds = 0.5;
  std::atomic<bool> shutdown{false};
  const auto start = std::chrono::steady_clock::now();
  const SweepWorkerSummary summary = SweepWorker(options, nullptr, nullptr).Run(shutdown);
  EXPECT_EQ(summary.exit_reason, "idle");
  EXPECT_EQ(summary.jobs, 0);
  EXPECT_LT(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count(), 10.0);
}

// A coordinator that forgot the worker (a new state directory behind the
// same address): the slots all hear "unknown worker", the worker registers
// again once, and goes on leasing.
TEST_F(CoordinatorServiceTest, SlotsRegisterAgainOnce) {
  Start();
  {
    CoordinatorClient other(Client());
    other.RegisterWorker(WorkerInfo{}, {});  // w1, w2: this worker is w3 here
    other.RegisterWorker(WorkerInfo{}, {});
  }
  std::mutex mutex;
  std::vector<std::string> lines;
  std::atomic<bool> shutdown{false};
  SweepWorkerSummary summary;
  const ClientOptions address = Client();
  std::thread thread([&] {
    auto log = [&](const std::string& line) {
      std::lock_guard<std::mutex> lock(mutex);
      lines.push_back(line);
    };
    SweepWorkerOptions options = SlotWorker(address, 3, log);
    options.client.reconnect_timeout_seconds = 10.0;
    summary = SweepWorker(options, nullptr, nullptr).Run(shutdown);
  });
  const auto registered = [&] {
    std::lock_guard<std::mutex> lock(mutex);
    return std::count_if(lines.begin(), lines.end(), [](const std::string& l) { return l.rfind("registered", 0) == 0; });
  };
  for (int i = 0; i < 500 && registered() == 0; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  std::this_thread::sleep_for(std::chrono::milliseconds(300));  // every slot is polling

  const int port = server_->port();
  server_->Shutdown();
  server_.reset();
  scheduler_.reset();
  ScopedTempDir fresh;
  SchedulerOptions scheduler_options;
  scheduler_options.state_dir = fresh.File("state");
  scheduler_ = std::make_unique<Scheduler>(scheduler_options);
  ServerOptions server;
  server.listen = "127.0.0.1:" + std::to_string(port);
  server_ = std::make_unique<CoordinatorServer>(*scheduler_, server);
  CoordinatorClient client(Client());
  client.Submit(SleepSweep("after", 3, 0.1));
  for (int i = 0; i < 500 && !client.Status("after", false).done; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  shutdown = true;
  thread.join();
  EXPECT_EQ(summary.jobs, 3);
  EXPECT_EQ(client.Status("after", false).succeeded, 3);
  EXPECT_EQ(registered(), 2);  // at the start and once again, not once per slot
  // The new coordinator gave out one id (w1): the next one is w2.
  EXPECT_EQ(client.RegisterWorker(WorkerInfo{}, {}).worker_id, "w2");
}

// A train job whose id is the hash of its settings (the scheduler checks it);
// `train` picks its pack.
SweepSubmission TrainSweep(const std::string& name, const std::vector<std::pair<std::string, std::string>>& jobs) {
  SweepSubmission sweep;
  sweep.name = name;
  sweep.metric_name = "loss";
  sweep.maximize = false;
  sweep.parameters = {"learning_rate"};
  for (const auto& [train, learning_rate] : jobs) {
    SweepSubmission::Job& job = sweep.jobs.emplace_back();
    job.kind = std::string(kTrainJob);
    job.settings = {{"model", "/models/m"}, {"train", train}, {"learning_rate", learning_rate}};
    job.id = JobId(JobSettings{job.settings, job.verbalizer});
    job.swept = {{"learning_rate", learning_rate}};
  }
  return sweep;
}

// Slots run the executor concurrently, and a slot's lease asks for the pack
// the other slot trains: a younger job of that pack comes before an older one.
TEST_F(CoordinatorServiceTest, SlotsRunTheExecutorConcurrentlyAndAskForTheirPack) {
  Start();
  CoordinatorClient client(Client());
  client.Submit(TrainSweep("first", {{"/d/y.jsonl", "0.1"}}));
  std::mutex mutex;
  std::vector<std::string> started;  // "learning_rate@train", in start order
  std::set<std::string> running;
  int64_t max_running = 0;
  std::atomic<bool> release{false};
  JobExecutor train = [&](const JobSpec& job, const JobContext& context) {
    const std::string name = SettingValue(job.settings, "learning_rate") + "@" + SettingValue(job.settings, "train");
    {
      std::lock_guard<std::mutex> lock(mutex);
      started.push_back(name);
      running.insert(name);
      max_running = std::max<int64_t>(max_running, static_cast<int64_t>(running.size()));
    }
    // The first job runs until the test lets it go; the others at once.
    const bool first = name == "0.1@/d/y.jsonl";
    for (int i = 0; first && i < 1000 && !release.load() && !context.stop->load(); ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    if (!first) std::this_thread::sleep_for(std::chrono::milliseconds(300));
    {
      std::lock_guard<std::mutex> lock(mutex);
      running.erase(name);
    }
    JobOutcome outcome;
    outcome.state = JobState::kSucceeded;
    outcome.metric_name = "loss";
    return outcome;
  };
  std::atomic<bool> shutdown{false};
  SweepWorkerSummary summary;
  std::thread thread([&] {
    summary = SweepWorker(SlotWorker(Client(), 2, [](const std::string&) {}), train, nullptr).Run(shutdown);
  });
  for (int i = 0; i < 500 && Active(client, "first") == 0; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  // Past one long poll (200 ms): the idle slot's current LeaseJob names the running pack.
  std::this_thread::sleep_for(std::chrono::milliseconds(700));
  // The older job is of another pack (other training data); the younger joins the running one.
  client.Submit(TrainSweep("second", {{"/d/x.jsonl", "0.2"}, {"/d/y.jsonl", "0.3"}}));
  for (int i = 0; i < 500; ++i) {
    {
      std::lock_guard<std::mutex> lock(mutex);
      if (started.size() >= 2) break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  release = true;
  for (int i = 0; i < 500 && !(client.Status("first", false).done && client.Status("second", false).done); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  shutdown = true;
  thread.join();
  EXPECT_EQ(summary.jobs, 3);
  EXPECT_EQ(client.Status("second", false).succeeded, 2);
  std::lock_guard<std::mutex> lock(mutex);
  EXPECT_EQ(started, (std::vector<std::string>{"0.1@/d/y.jsonl", "0.3@/d/y.jsonl", "0.2@/d/x.jsonl"}));
  EXPECT_EQ(max_running, 2);  // two executor calls at once
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
