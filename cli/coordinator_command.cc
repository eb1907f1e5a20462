// `promptsweep coordinator`: the scheduler (SQLite state) behind the gRPC server, until a signal.
#include <chrono>
#include <filesystem>
#include <memory>
#include <thread>

#include <CLI/CLI.hpp>

#include "cli/commands.h"
#include "common/error.h"
#include "common/file_util.h"
#include "common/log.h"
#include "common/signals.h"
#include "common/version.h"
#include "coordinator/coordinator_server.h"
#include "coordinator/scheduler.h"

namespace promptsweep::cli {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

struct CoordinatorArgs {
  std::string listen = "127.0.0.1:7878";
  std::string state_dir = "promptsweep-state";
  std::string token;
  std::string tls_cert;
  std::string tls_key;
  double lease_timeout = 30.0;
  int64_t max_attempts = 3;
  std::string port_file;
};

void RunCoordinator(CoordinatorArgs& args) {
  if (args.token.empty()) {
    if (const char* token = std::getenv("PROMPTSWEEP_TOKEN")) args.token = token;
  }
  if (args.lease_timeout <= 0) throw Error("--lease-timeout must be > 0 seconds");
  if (args.max_attempts < 1) throw Error("--max-attempts must be >= 1");
  SchedulerOptions options;
  options.state_dir = fs::absolute(args.state_dir).lexically_normal().string();
  options.lease_timeout_seconds = args.lease_timeout;
  options.max_attempts = args.max_attempts;
  Scheduler scheduler(options);
  const std::atomic<bool>& shutdown = InstallShutdownSignals();
  ServerOptions server_options;
  server_options.listen = args.listen;
  server_options.token = args.token;
  server_options.tls_cert = args.tls_cert;
  server_options.tls_key = args.tls_key;
  CoordinatorServer server(scheduler, server_options);
  const std::string host = args.listen.substr(0, args.listen.rfind(':'));
  Logger("coordinator")
      .info("promptsweep coordinator {} listening on {}:{}{}{}, state in {} ({} sweeps)", kVersion, host,
            server.port(), args.tls_cert.empty() ? "" : " (TLS)", args.token.empty() ? "" : " (token required)",
            options.state_dir, scheduler.SweepNames().size());
  if (args.token.empty() && host != "127.0.0.1" && host != "localhost" && host != "[::1]") {
    Logger("coordinator")
        .warn("listening beyond loopback without a token: anyone who can reach {} can submit and lease jobs "
              "(set PROMPTSWEEP_TOKEN)",
              args.listen);
  }
  if (!args.port_file.empty()) WriteFileAtomically(args.port_file, std::to_string(server.port()) + "\n");
  while (!shutdown.load()) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  Logger("coordinator").info("shutting down (state is saved; start it again to continue)");
  server.Shutdown();
}

}  // namespace

void AddCoordinatorCommand(CLI::App& app) {
  auto args = std::make_shared<CoordinatorArgs>();
  CLI::App* cmd = app.add_subcommand(
      "coordinator",
      "Run the coordinator: keeps sweeps and jobs in STATE_DIR/promptsweep.db (SQLite, WAL), hands jobs to "
      "workers over gRPC, takes back leases that are not renewed, writes each sweep's adapters, results.csv and "
      "metrics.csv. Killed and started again on the same --state-dir, it continues where it was: finished jobs "
      "are never rerun. Ctrl-C / SIGTERM stops it.");
  cmd->add_option("--listen", args->listen,
                  "address to listen on (default 127.0.0.1:7878: loopback only; 0.0.0.0:PORT for other machines, "
                  "then with a token); port 0 picks a free port")
      ->type_name("HOST:PORT");
  cmd->add_option("--state-dir", args->state_dir,
                  "state directory: promptsweep.db, and sweeps/<name>/ for sweeps submitted without --output "
                  "(default ./promptsweep-state)")
      ->type_name("DIR");
  cmd->add_option("--token", args->token, "shared secret every call must carry (default $PROMPTSWEEP_TOKEN)");
  cmd->add_option("--tls-cert", args->tls_cert, "TLS certificate chain (PEM); with --tls-key turns on TLS")
      ->type_name("FILE");
  cmd->add_option("--tls-key", args->tls_key, "TLS private key (PEM)")->type_name("FILE");
  cmd->add_option("--lease-timeout", args->lease_timeout,
                  "seconds without a heartbeat before a worker's job goes back to the queue (default 30)");
  cmd->add_option("--max-attempts", args->max_attempts,
                  "attempts per job (lost leases, retryable failures) before it is failed (default 3)");
  cmd->add_option("--port-file", args->port_file, "write the bound port to FILE (useful with port 0)")
      ->type_name("FILE");
  cmd->callback([args] { RunCoordinator(*args); });
}

}  // namespace promptsweep::cli
