// `promptsweep report OUT_DIR`: one self-contained HTML page (or Markdown
// tables, or the data as JSON) about a sweep, finished or still running.
#include <chrono>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "cli/commands.h"
#include "common/error.h"
#include "common/file_util.h"
#include "common/format.h"
#include "common/version.h"
#include "report/report_data.h"
#include "report/report_render.h"
#include "report/sweep_source.h"

namespace promptsweep::cli {
namespace {

namespace fs = std::filesystem;

struct ReportArgs {
  std::string dir;
  std::string output;
  std::string format = "html";
  std::string state;
  std::string plotly;
  std::vector<std::string> pivot;
  int top = 10;
};

double UnixNow() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

std::string UtcText(double unix_seconds) {
  const std::time_t t = static_cast<std::time_t>(unix_seconds);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char text[32];
  std::strftime(text, sizeof(text), "%Y-%m-%d %H:%M:%S UTC", &tm);
  return text;
}

// This binary, as the eval / generate lines should call it.
std::string ProgramPath() {
  std::error_code error;
  const fs::path self = fs::read_symlink("/proc/self/exe", error);
  return error ? std::string("promptsweep") : self.string();
}

void RunReport(const ReportArgs& args) {
  const auto start = std::chrono::steady_clock::now();
  if (args.format != "html" && args.format != "md" && args.format != "json") {
    throw Error(StrCat("--format ", args.format, ": use html, md or json"));
  }
  // Fail before reading the sweep when the page cannot be made.
  const std::string plotly = args.format == "html" ? FindPlotlyJs(args.plotly) : "";
  const SweepSource source = LoadSweepSource(args.dir, args.state);
  ReportDataOptions options;
  options.now = UnixNow();
  options.generated = UtcText(options.now);
  options.version = kVersion;
  options.program = ProgramPath();
  const nlohmann::json data = BuildReportData(source, options);
  std::string text;
  if (args.format == "html") {
    text = RenderReportHtml(data, plotly);
  } else if (args.format == "md") {
    MarkdownOptions markdown;
    markdown.pivot = args.pivot;
    markdown.top = args.top;
    text = RenderReportMarkdown(data, markdown);
  } else {
    text = data.dump(1) + "\n";
  }
  std::string output = args.output;
  if (output.empty()) output = args.format == "html" ? (fs::path(source.dir) / "report.html").string() : "-";
  if (output == "-") {
    std::cout << text << std::flush;
    return;
  }
  WriteFileAtomically(output, text);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  char summary[160];
  std::snprintf(summary, sizeof(summary), " (%.1f MB, %zu jobs, from %s, %.2f s)", text.size() / 1e6,
                source.jobs.size(), source.kind == "sqlite" ? "the state database" : "the CSVs", seconds);
  std::cout << "report: " << output << summary << "\n";
}

}  // namespace

void AddReportCommand(CLI::App& app) {
  auto args = std::make_shared<ReportArgs>();
  CLI::App* cmd = app.add_subcommand(
      "report",
      "Report on a sweep, finished or still running: one self-contained HTML page (opens offline; plotly.js and "
      "the data inlined) with the job counts, the best job and how to use it, a sortable and filterable results "
      "table, settings grouped over seeds with error bars, the metric against each parameter and each pair "
      "(heatmaps), parallel coordinates, parameter importance, learning curves with early-termination rungs, and "
      "a timeline of which worker ran which job when. --format md prints the tables as Markdown instead. Reads "
      "the sweep's state database (read only, beside a running coordinator) or, without one, its results.csv "
      "and metrics.csv.");
  cmd->add_option("dir", args->dir,
                  "the sweep's output directory: a `run` output directory (runs/<name>) or a coordinator's "
                  "STATE_DIR/sweeps/<name>, or any directory holding a results.csv")
      ->required()
      ->type_name("OUT_DIR");
  cmd->add_option("-o,--output", args->output,
                  "file to write, - for stdout (default: OUT_DIR/report.html for html, stdout for md and json)")
      ->type_name("FILE");
  cmd->add_option("--format", args->format,
                  "html (default), md (Markdown tables: summary, settings over seeds, importance, best jobs) or "
                  "json (the data the page draws)")
      ->type_name("FORMAT");
  cmd->add_option("--state", args->state,
                  "the state database to read (default: OUT_DIR/promptsweep.db, or STATE_DIR/promptsweep.db for "
                  "STATE_DIR/sweeps/<name>)")
      ->type_name("DB");
  cmd->add_option("--plotly", args->plotly,
                  "plotly.min.js to inline (default: $PROMPTSWEEP_PLOTLY_JS, else the one deploy/setup.sh fetched "
                  "into .deps/npm)")
      ->type_name("FILE");
  cmd->add_option("--pivot", args->pivot,
                  "md: also a table of the ranked metric with ROW's values as rows and COLUMN's as columns "
                  "(mean ± std over the jobs of each cell)")
      ->delimiter(',')
      ->expected(2)
      ->type_name("ROW,COLUMN");
  cmd->add_option("--top", args->top, "md: rows of the best-jobs table (default 10; 0: none)");
  cmd->callback([args] { RunReport(*args); });
}

}  // namespace promptsweep::cli
