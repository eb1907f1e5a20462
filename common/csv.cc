#include "common/csv.h"

#include <cstdint>
#include <utility>

#include "common/error.h"
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

std::vector<std::vector<std::string>> ParseCsv(std::string_view text, const std::string& source) {
  std::vector<std::vector<std::string>> records;
  std::vector<std::string> record;
  std::string field;
  int64_t line = 1, column = 1;
  size_t i = 0;
  auto end_record = [&] {
    record.push_back(std::move(field));
    field.clear();
    if (!(record.size() == 1 && record[0].empty())) records.push_back(std::move(record));
    record.clear();
  };
  while (i < text.size()) {
    const char c = text[i];
    if (c == '"' && field.empty()) {  // a quoted field
      const int64_t open_line = line, open_column = column;
      ++i, ++column;
      for (;;) {
        if (i >= text.size()) {
          throw Error(StrCat(source, ":", open_line, ":", open_column, ": a quoted field is never closed"));
        }
        if (text[i] == '"') {
          if (i + 1 < text.size() && text[i + 1] == '"') {
            field += '"';
            i += 2, column += 2;
            continue;
          }
          ++i, ++column;
          break;
        }
        if (text[i] == '\n') ++line, column = 0;
        field += text[i++];
        ++column;
      }
      if (i < text.size() && text[i] != ',' && text[i] != '\n' && text[i] != '\r') {
        throw Error(StrCat(source, ":", line, ":", column, ": '", std::string(1, text[i]),
                           "' after a closing quote (a quote inside a field must be doubled)"));
      }
      continue;
    }
    if (c == ',') {
      record.push_back(std::move(field));
      field.clear();
    } else if (c == '\n' || (c == '\r' && i + 1 < text.size() && text[i + 1] == '\n')) {
      if (c == '\r') ++i;
      end_record();
      ++line, column = 0;
    } else {
      field += c;
    }
    ++i, ++column;
  }
  if (!field.empty() || !record.empty()) end_record();
  return records;
}

}  // namespace promptsweep
