// Subcommands of the `promptsweep` binary. Each Add*Command registers one
// subcommand (flags, --help text, callback) on the top-level app.
#pragma once

namespace CLI {
class App;
}  // namespace CLI

namespace promptsweep::cli {

void AddInspectCommand(CLI::App& app);
void AddTrainCommand(CLI::App& app);
void AddEvalCommand(CLI::App& app);
void AddGenerateCommand(CLI::App& app);
void AddTokenizeCommand(CLI::App& app);
void AddPlanCommand(CLI::App& app);
void AddTrainTokenizerCommand(CLI::App& app);
void AddPretrainCommand(CLI::App& app);
void AddPerplexityCommand(CLI::App& app);
void AddCoordinatorCommand(CLI::App& app);
void AddWorkerCommand(CLI::App& app);
void AddSubmitCommand(CLI::App& app);
void AddStatusCommand(CLI::App& app);
void AddCancelCommand(CLI::App& app);
void AddWaitCommand(CLI::App& app);
void AddRunCommand(CLI::App& app);

}  // namespace promptsweep::cli
