#include "client/status_text.h"

#include <cmath>
#include <cstdio>
#include <optional>
#include <vector>

#include "common/error.h"
#include "common/format.h"

namespace promptsweep {
namespace {

std::string Number(std::optional<double> value, int precision = 4) {
  if (!value) return "-";
  char text[32];
  std::snprintf(text, sizeof(text), "%.*f", precision, *value);
  return text;
}

}  // namespace

std::string ProgressLine(const SweepStatus& s) {
  const int64_t finished = s.finished();
  constexpr int kWidth = 24;
  const int filled = s.total > 0 ? static_cast<int>(kWidth * finished / s.total) : 0;
  std::string line = "[" + std::string(filled, '#') + std::string(kWidth - filled, '.') + "] ";
  line += StrCat(finished, "/", s.total, " done (", s.succeeded, " ok");
  if (s.stopped > 0) {
    line += StrCat(", ", s.stopped, " stopped early");
    if (s.steps_planned > 0) {
      line += StrCat(" saving ", s.steps_saved, " steps = ",
                     static_cast<int64_t>(std::lround(100.0 * static_cast<double>(s.steps_saved) /
                                                      static_cast<double>(s.steps_planned))),
                     "%");
    }
  }
  if (s.failed > 0) line += StrCat(", ", s.failed, " failed");
  if (s.diverged > 0) line += StrCat(", ", s.diverged, " diverged");
  if (s.cancelled > 0) line += StrCat(", ", s.cancelled, " cancelled");
  line += StrCat(") | ", s.running + s.leased, " running on ", s.live_workers, " workers");
  if (s.best_dev) line += StrCat(" | best ", s.metric_name, " ", Number(s.best_dev), " (", s.best_job, ")");
  line += StrCat(" | ", FormatDuration(s.elapsed_seconds));
  if (!s.done && s.eta_seconds > 0) line += StrCat(", ETA ", FormatDuration(s.eta_seconds));
  return line;
}

void PrintStatusTable(const SweepStatus& s, std::ostream& out) {
  std::vector<std::string> header = {"job", "state", "try", "step", "loss", "best_dev", "test"};
  for (const std::string& p : s.parameters) header.push_back(p);
  header.push_back("seed");
  header.push_back("worker / message");
  std::vector<std::vector<std::string>> rows = {header};
  for (const JobStatusRow& job : s.jobs) {
    std::vector<std::string> row = {job.job_id,
                                    std::string(JobStateName(job.state)),
                                    std::to_string(job.attempts),
                                    job.max_steps > 0 ? StrCat(job.step, "/", job.max_steps) : std::to_string(job.step),
                                    job.step > 0 ? Number(job.train_loss) : "-",
                                    Number(job.best_dev),
                                    Number(job.test)};
    for (const std::string& p : s.parameters) row.push_back(SettingValue(job.swept, p, "-"));
    row.push_back(std::to_string(job.seed));
    std::string tail = job.worker;
    if (!job.message.empty()) tail += (tail.empty() ? "" : ": ") + job.message;
    if (job.has_checkpoint && !IsFinished(job.state)) tail += " (checkpoint)";
    row.push_back(tail);
    rows.push_back(std::move(row));
  }
  out << FormatTable(rows);
  out << ProgressLine(s) << "\n";
}

}  // namespace promptsweep
