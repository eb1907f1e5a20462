// promptsweep: prompt tuning at scale. Thin main: parse, dispatch, and turn
// errors into one line on stderr and a non-zero exit code.
#include <exception>
#include <iostream>

#include <CLI/CLI.hpp>

#include "cli/commands.h"
#include "common/error.h"
#include "common/version.h"

int main(int argc, char** argv) {
  CLI::App app{
      "promptsweep: train soft prompts (prompt tuning) on frozen causal language models, "
      "and run sweeps of them.",
      "promptsweep"};
  app.set_version_flag("--version", promptsweep::kVersion);
  app.require_subcommand(1);
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
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);  // prints usage errors and --help; exit code 0 for --help
  } catch (const promptsweep::Error& e) {
    std::cerr << "promptsweep: error: " << e.what() << "\n";
    return 1;
  } catch (const std::exception& e) {
    std::cerr << "promptsweep: unexpected error: " << e.what() << "\n";
    return 3;
  }
  return 0;
}
