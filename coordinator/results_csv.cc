#include "coordinator/results_csv.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <type_traits>
#include <utility>

#include "common/error.h"
#include "common/file_util.h"

namespace promptsweep {
namespace {

template <typename T>
std::string OptionalField(const std::optional<T>& value) {
  if (!value) return "";
  if constexpr (std::is_floating_point_v<T>) {
    return CsvNumber(*value);
  } else {
    return std::to_string(*value);
  }
}

// Appends `text` to `path` in one write(2) (looping only on a short write),
// with `header` first when the file is new or empty.
void AppendToFile(const std::string& path, const std::string& header, const std::string& text) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) throw Error(StrCat(path, ": cannot open for appending: ", ErrnoText(errno)));
  struct stat info {};
  if (::fstat(fd, &info) != 0) {
    const int error = errno;
    ::close(fd);
    throw Error(StrCat(path, ": cannot stat: ", ErrnoText(error)));
  }
  const std::string block = info.st_size == 0 ? header + text : text;
  std::size_t written = 0;
  while (written < block.size()) {
    const ssize_t n = ::write(fd, block.data() + written, block.size() - written);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      const int error = errno;
      ::close(fd);
      throw Error(StrCat(path, ": cannot append: ", ErrnoText(error)));
    }
    written += static_cast<std::size_t>(n);
  }
  if (::close(fd) != 0) throw Error(StrCat(path, ": close failed: ", ErrnoText(errno)));
}

}  // namespace

std::string CsvNumber(double value) {
  // One spelling for NaN whatever its sign bit (glibc prints "-nan"), so a
  // rewritten file equals the appended one.
  if (std::isnan(value)) return "nan";
  char buffer[32];
  std::snprintf(buffer, sizeof(buffer), "%.10g", value);
  return buffer;
}

ResultsCsv::ResultsCsv(std::string output_dir, std::string metric_name, std::vector<std::string> parameters)
    : output_dir_(std::move(output_dir)), metric_name_(std::move(metric_name)), parameters_(std::move(parameters)) {}

std::string ResultsCsv::results_path() const { return (std::filesystem::path(output_dir_) / kResultsFile).string(); }

std::string ResultsCsv::metrics_path() const { return (std::filesystem::path(output_dir_) / kMetricsFile).string(); }

std::string ResultsCsv::ResultsHeader() const {
  std::string line = "job_id";
  for (const std::string& parameter : parameters_) line += "," + CsvField(parameter);
  const std::string metric = CsvField(metric_name_);
  line += ",seed,status,attempts,final_dev_" + metric + ",best_dev_" + metric + ",best_step,test_" + metric +
          ",train_loss,steps,stopped_at_step,tokens_per_second,wall_seconds,worker,adapter,message\n";
  return line;
}

std::string ResultsCsv::ResultsLine(const ResultRow& row) const {
  PS_CHECK(row.swept.size() == parameters_.size(), "job ", row.job_id, " has ", row.swept.size(),
           " swept values for ", parameters_.size(), " parameters");
  std::string line = CsvField(row.job_id);
  for (const std::string& value : row.swept) line += "," + CsvField(value);
  line += "," + std::to_string(row.seed);
  line += "," + CsvField(row.status);
  line += "," + std::to_string(row.attempts);
  line += "," + OptionalField(row.final_dev);
  line += "," + OptionalField(row.best_dev);
  line += "," + OptionalField(row.best_step);
  line += "," + OptionalField(row.test);
  line += "," + OptionalField(row.train_loss);
  line += "," + OptionalField(row.steps);
  line += "," + OptionalField(row.stopped_at_step);
  line += "," + OptionalField(row.tokens_per_second);
  line += "," + OptionalField(row.wall_seconds);
  line += "," + CsvField(row.worker);
  line += "," + CsvField(row.adapter);
  line += "," + CsvField(row.message);
  line += '\n';
  return line;
}

std::string ResultsCsv::MetricsHeader() { return MetricsCsvHeader(/*with_job_id=*/true); }

std::string ResultsCsv::MetricsLines(const std::string& job_id, const std::vector<MetricRow>& rows) {
  return MetricsCsvLines(rows, job_id);
}

void ResultsCsv::Rewrite(const std::vector<FinishedJobRows>& jobs) const {
  std::string results = ResultsHeader();
  std::string metrics = MetricsHeader();
  for (const FinishedJobRows& job : jobs) {
    results += ResultsLine(job.result);
    metrics += MetricsLines(job.result.job_id, job.metrics);
  }
  // metrics.csv first: a crash in between leaves results.csv (what users read
  // first) old but consistent, and the next open rewrites both anyway.
  WriteFileAtomically(metrics_path(), metrics);
  WriteFileAtomically(results_path(), results);
}

void ResultsCsv::Append(const std::vector<FinishedJobRows>& jobs) const {
  if (jobs.empty()) return;
  std::string results;
  std::string metrics;
  for (const FinishedJobRows& job : jobs) {
    results += ResultsLine(job.result);
    metrics += MetricsLines(job.result.job_id, job.metrics);
  }
  AppendToFile(metrics_path(), MetricsHeader(), metrics);
  AppendToFile(results_path(), ResultsHeader(), results);
}

}  // namespace promptsweep
