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
void AddReportCommand(CLI::App& app);

// --help of `--pack K`, the same for `worker` and `run`.
inline constexpr char kPackHelp[] =
    "train up to K compatible jobs (same model, data and task) at once in one forward/backward per step; default 1 "
    "(on CPU one job already keeps the cores busy; on a GPU try 8-16)";

}  // namespace promptsweep::cli
