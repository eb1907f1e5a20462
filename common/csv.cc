#include "common/csv.h"

#include "common/format.h"

namespace promptsweep {

std::string CsvField(std::string_view text) {
  if (text.find_first_of(",\"\r\n") == std::string_view::npos) return std::string(text);
  std::string quoted = "\"";
  for (const char c : text) {
    if (c == '"') quoted += '"';
    quoted += c;
  }
  quoted += '"';
  return quoted;
}

std::string MetricsCsvHeader(bool with_job_id) {
  return with_job_id ? "job_id,step,split,metric,value\n" : "step,split,metric,value\n";
}

std::string MetricsCsvLines(const std::vector<MetricRow>& rows, std::optional<std::string_view> job_id) {
  const std::string id = job_id ? CsvField(*job_id) + "," : "";
  std::string lines;
  for (const MetricRow& row : rows) {
    lines += id;
    lines += std::to_string(row.step);
    lines += "," + CsvField(row.split);
    lines += "," + CsvField(row.metric);
    // Shortest round trip, one spelling for NaN (so a file rebuilt from the
    // coordinator's database equals the one appended).
    lines += "," + FormatShortest(row.value);
    lines += '\n';
  }
  return lines;
}

}  // namespace promptsweep
