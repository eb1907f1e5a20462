// CSV output shared by the two writers of metrics.csv: `promptsweep train`
// (one job's OUTPUT/metrics.csv) and the coordinator (a sweep's metrics.csv,
// through coordinator/results_csv.h). One format for both:
//
//   step,split,metric,value            (one job)
//   job_id,step,split,metric,value     (a sweep: the same rows, job id first)
//
// RFC 4180: a field holding a comma, quote, CR or LF is quoted, quotes
// doubled; lines end in LF. Values are the shortest text that reads back as
// the same double (FormatShortest: 0.75, 1e-05, 2.3025850929940459), "nan"
// for any NaN.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/job.h"  // MetricRow

namespace promptsweep {

// RFC 4180 field: quoted when it holds , " CR or LF.
std::string CsvField(std::string_view text);

// The header line (with its LF); `job_id` column first when with_job_id.
std::string MetricsCsvHeader(bool with_job_id);

// One line per row (each with its LF); `job_id` first when given.
std::string MetricsCsvLines(const std::vector<MetricRow>& rows, std::optional<std::string_view> job_id = std::nullopt);

// Reads RFC 4180 text back (LF or CRLF line ends; a last line without one):
// the records, each a list of fields. Empty lines are skipped. Error naming
// `source`:line:column for a quote that is never closed or a character after
// a closing quote.
std::vector<std::vector<std::string>> ParseCsv(std::string_view text, const std::string& source);

}  // namespace promptsweep
