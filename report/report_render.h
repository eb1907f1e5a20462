// The two faces of a sweep report (report_data.h): one self-contained HTML
// page (the template report/web/report.html, compiled into the binary, with
// plotly.js and the data inlined: no CDN, opens offline) and Markdown tables
// for terminals and READMEs.
//
// Thread safety: plain functions.
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace promptsweep {

// The page template (report/web/report.html).
const std::string& ReportTemplate();

// `html_template` with `plotly_js` and `data` inlined. Error when the
// template lacks a placeholder or the library would end its <script> early.
std::string RenderReportHtml(const nlohmann::json& data, const std::string& plotly_js,
                             const std::string& html_template = ReportTemplate());

struct MarkdownOptions {
  // Also a table of the primary metric (mean ± std over the jobs with each
  // pair of values, everything else pooled) with `pivot[0]`'s values as rows
  // and `pivot[1]`'s as columns. Error naming the known parameters when
  // either is not swept.
  std::vector<std::string> pivot;
  int top = 10;  // rows of the best-jobs table
};

std::string RenderReportMarkdown(const nlohmann::json& data, const MarkdownOptions& options = {});

// plotly.min.js: `explicit_path` when given, else $PROMPTSWEEP_PLOTLY_JS,
// else .deps/npm/node_modules/plotly.js-dist-min/plotly.min.js under the
// source tree this binary was built from. Error saying how to get it
// (deploy/setup.sh) when none exists.
std::string FindPlotlyJs(const std::string& explicit_path);

}  // namespace promptsweep
