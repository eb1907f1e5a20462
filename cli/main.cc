// promptsweep: prompt tuning at scale. Thin main: parse, dispatch, and turn
// errors into one line on stderr and a non-zero exit code.
#include <exception>
#include <iostream>

#include <CLI/CLI.hpp>

#include "cli/commands.h"
#include "common/error.h"
#include "common/log.h"
#include "common/version.h"

int main(int argc, char** argv) {
  CLI::App app{
      "promptsweep: train soft prompts (prompt tuning) on frozen causal language models, "
      "and run sweeps of them.",
      "promptsweep"};
  app.set_version_flag("--version", promptsweep::kVersion);
  app.require_subcommand(1);
  std::string log_level;
  app.add_option("--log-level", log_level,
                 "log level of the coordinator, workers and run: trace, debug, info, warn, error or off "
                 "(default $PROMPTSWEEP_LOG_LEVEL, else info); before the command: promptsweep --log-level debug "
                 "worker ...")
      ->type_name("LEVEL");
  // Set before any command runs: the global option is parsed before the subcommand's callback.
  app.parse_complete_callback([&log_level] { promptsweep::ConfigureLogging(log_level); });
  promptsweep::cli::AddInspectCommand(app);
  promptsweep::cli::AddTokenizeCommand(app);
  promptsweep::cli::AddTrainTokenizerCommand(app);
  promptsweep::cli::AddTrainCommand(app);
  promptsweep::cli::AddEvalCommand(app);
  promptsweep::cli::AddGenerateCommand(app);
  promptsweep::cli::AddPlanCommand(app);
  promptsweep::cli::AddPretrainCommand(app);
  promptsweep::cli::AddPerplexityCommand(app);
  promptsweep::cli::AddRunCommand(app);
  promptsweep::cli::AddCoordinatorCommand(app);
  promptsweep::cli::AddWorkerCommand(app);
  promptsweep::cli::AddSubmitCommand(app);
  promptsweep::cli::AddStatusCommand(app);
  promptsweep::cli::AddCancelCommand(app);
  promptsweep::cli::AddWaitCommand(app);
  promptsweep::cli::AddReportCommand(app);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);  // prints usage errors and --help; exit code 0 for --help
  } catch (const promptsweep::Error& e) {
    std::cerr << "promptsweep: error: " << e.what() << "\n";
    return 1;
  } catch (const promptsweep::InternalError& e) {
    // A PS_CHECK failed: a bug in promptsweep, whatever the input was.
    std::cerr << "promptsweep: " << e.what() << "\n"
              << "promptsweep: this is a bug in promptsweep " << promptsweep::kVersion
              << "; please report it with the command line that caused it\n";
    return 3;
  } catch (const std::exception& e) {
    std::cerr << "promptsweep: unexpected error: " << e.what() << "\n";
    return 3;
  }
  return 0;
}
