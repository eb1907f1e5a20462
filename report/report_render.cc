#include "report/report_render.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <optional>
#include <utility>

#include "common/error.h"
#include "common/file_util.h"
#include "common/format.h"
#include "report/report_data.h"  // MeanAndStd

namespace promptsweep {

// The template's text, generated from report/web/report.html at build time.
extern const char kReportTemplateHtml[];

namespace {

namespace fs = std::filesystem;
using nlohmann::json;

constexpr char kPlotlyPlaceholder[] = "/*@PLOTLY@*/";
constexpr char kDataPlaceholder[] = "/*@DATA@*/";
constexpr char kPlotlyRelative[] = ".deps/npm/node_modules/plotly.js-dist-min/plotly.min.js";

// The position of `placeholder` in `text`; Error unless it is there exactly once.
size_t FindOnce(const std::string& text, const std::string& placeholder) {
  const size_t at = text.find(placeholder);
  if (at == std::string::npos || text.find(placeholder, at + 1) != std::string::npos) {
    throw Error(StrCat("the report template must hold ", placeholder, " exactly once"));
  }
  return at;
}

std::string Lower(std::string text) {
  std::transform(text.begin(), text.end(), text.begin(), [](unsigned char c) { return std::tolower(c); });
  return text;
}

// --- Markdown ---

bool IsRate(const std::string& metric) { return metric == "accuracy" || metric == "exact_match"; }

std::string FormatMetric(const json& value, bool rate) {
  if (!value.is_number()) return "n/a";
  char text[32];
  if (rate) {
    std::snprintf(text, sizeof(text), "%.1f", 100.0 * value.get<double>());
  } else {
    std::snprintf(text, sizeof(text), "%.4g", value.get<double>());
  }
  return text;
}

std::string FormatMeanStd(const json& mean, const json& std, bool rate) {
  if (!mean.is_number()) return "n/a";
  return FormatMetric(mean, rate) + " ± " + FormatMetric(std, rate);
}

std::string ValueText(const json& value) {
  if (value.is_null()) return "";
  if (value.is_string()) return value.get<std::string>();
  if (value.is_number_integer()) return std::to_string(value.get<int64_t>());
  return FormatShortest(value.get<double>());
}

// Markdown cell: pipes escaped, line breaks flattened.
std::string Cell(std::string text) {
  std::string cell;
  for (const char c : text) {
    if (c == '|') {
      cell += "\\|";
    } else if (c == '\n' || c == '\r') {
      cell += ' ';
    } else {
      cell += c;
    }
  }
  return cell;
}

void Table(std::string& out, const std::vector<std::string>& header, const std::vector<std::vector<std::string>>& rows) {
  out += "|";
  for (const std::string& h : header) out += " " + Cell(h) + " |";
  out += "\n|";
  for (size_t i = 0; i < header.size(); ++i) out += "---|";
  out += "\n";
  for (const auto& row : rows) {
    out += "|";
    for (const std::string& c : row) out += " " + Cell(c) + " |";
    out += "\n";
  }
}

}  // namespace

const std::string& ReportTemplate() {
  static const std::string text(kReportTemplateHtml);
  return text;
}

std::string RenderReportHtml(const json& data, const std::string& plotly_js, const std::string& html_template) {
  if (Lower(plotly_js).find("</script") != std::string::npos) {
    throw Error("the plotting library holds '</script', which would end its <script> element early");
  }
  // '<' escaped: nothing in the data can close the element or open a comment.
  std::string blob = data.dump(-1, ' ', false, json::error_handler_t::replace);
  std::string escaped;
  escaped.reserve(blob.size());
  for (const char c : blob) {
    if (c == '<') {
      escaped += "\\u003c";
    } else {
      escaped += c;
    }
  }
  // Both found in the template before either is filled: neither the data nor
  // the library can then be mistaken for a placeholder.
  struct Part {
    size_t at, length;
    const std::string* text;
  };
  Part parts[2] = {{FindOnce(html_template, kDataPlaceholder), sizeof(kDataPlaceholder) - 1, &escaped},
                   {FindOnce(html_template, kPlotlyPlaceholder), sizeof(kPlotlyPlaceholder) - 1, &plotly_js}};
  if (parts[1].at < parts[0].at) std::swap(parts[0], parts[1]);
  std::string html;
  html.reserve(html_template.size() + escaped.size() + plotly_js.size());
  size_t from = 0;
  for (const Part& part : parts) {
    html.append(html_template, from, part.at - from);
    html += *part.text;
    from = part.at + part.length;
  }
  html.append(html_template, from, std::string::npos);
  return html;
}

std::string RenderReportMarkdown(const json& data, const MarkdownOptions& options) {
  const json& sweep = data.at("sweep");
  const std::string metric = sweep.at("metric").get<std::string>();
  const bool rate = IsRate(metric);
  const bool maximize = sweep.at("maximize").get<bool>();
  const json& parameters = data.at("parameters");
  const json& jobs = data.at("jobs");
  const json& counts = data.at("counts");
  const std::string primary = data.at("primary").at("key").get<std::string>();
  const std::string primary_label = data.at("primary").at("label").get<std::string>();
  const std::string unit = rate ? " (%)" : "";  // in headers
  const std::string percent = rate ? "%" : "";   // after a value
  std::vector<std::string> names;
  for (const json& p : parameters) names.push_back(p.at("name").get<std::string>());

  std::string out = StrCat("# Sweep ", sweep.at("name").get<std::string>(), "\n\n");
  if (sweep.at("model").is_string()) out += StrCat("- model: `", sweep["model"].get<std::string>(), "`\n");
  if (sweep.at("task").is_string()) out += StrCat("- task: `", sweep["task"].get<std::string>(), "`\n");
  out += StrCat("- metric: ", metric, " (", maximize ? "maximize" : "minimize", "); ranked by ", primary_label, "\n");
  if (sweep.contains("majority_baseline") && sweep["majority_baseline"].is_number()) {
    out += StrCat("- majority-class baseline (test): ", FormatMetric(sweep["majority_baseline"], rate), percent, "\n");
  }
  std::string tally;
  for (const char* state : {"succeeded", "stopped", "failed", "diverged", "cancelled", "running", "leased", "pending"}) {
    const int64_t count = counts.at(state).get<int64_t>();
    if (count > 0) tally += StrCat(tally.empty() ? "" : ", ", count, " ", state);
  }
  out += StrCat("- jobs: ", counts.at("total").get<int64_t>(), tally.empty() ? "" : " (" + tally + ")", "\n");
  if (data.at("wall_seconds").is_number()) {
    out += StrCat("- wall time: ", FormatDuration(data["wall_seconds"].get<double>()),
                  data.at("source").at("running").get<bool>() ? " so far (still running)" : "", "\n");
  }
  if (data.at("compute").is_object()) {
    const json& c = data["compute"];
    const int64_t planned = c.at("steps_planned").get<int64_t>(), saved = c.at("steps_saved").get<int64_t>();
    out += StrCat("- early termination: ", sweep.at("early_terminate").get<std::string>(), "; ",
                  c.at("steps_run").get<int64_t>(), " of ", planned, " planned steps run, ", saved, " saved",
                  planned > 0 ? StrCat(" (", static_cast<int64_t>(std::llround(100.0 * saved / planned)), "%)") : "",
                  "\n");
  }
  if (data.at("best").is_object()) {
    const json& best = data["best"];
    const size_t j = best.at("job").get<size_t>();
    std::string settings;
    for (size_t p = 0; p < names.size(); ++p) {
      settings += StrCat(p == 0 ? "" : ", ", names[p], " ", ValueText(jobs.at("params").at(p).at(j)));
    }
    out += StrCat("- best: job ", jobs.at("id").at(j).get<std::string>(), " (", settings, settings.empty() ? "" : ", ",
                  "seed ", jobs.at("seed").at(j).get<uint64_t>(), "): ", primary_label, " ",
                  FormatMetric(best.at("value"), rate), percent, "\n");
    if (best.at("eval").is_string()) out += StrCat("  - evaluate it: `", best["eval"].get<std::string>(), "`\n");
  }

  // Settings over seeds.
  const json& groups = data.at("groups");
  out += StrCat("\n## Settings over seeds: mean ± std of ", primary_label, unit, "\n\n");
  if (groups.empty()) {
    out += "No jobs.\n";
  } else {
    std::vector<std::string> header = names;
    header.insert(header.end(), {"n", StrCat(primary_label, unit), StrCat("best dev ", metric, unit), "failed"});
    std::vector<std::vector<std::string>> rows;
    for (const json& group : groups) {
      std::vector<std::string> row;
      for (const json& value : group.at("values")) row.push_back(ValueText(value));
      int64_t bad = 0;
      for (const json& j : group.at("jobs")) {
        const std::string status = jobs.at("status").at(j.get<size_t>()).get<std::string>();
        if (status == "failed" || status == "diverged") ++bad;
      }
      row.insert(row.end(), {std::to_string(group.at("n").get<int64_t>()),
                             FormatMeanStd(group.at("mean"), group.at("std"), rate),
                             FormatMeanStd(group.at("dev_mean"), group.at("dev_std"), rate), std::to_string(bad)});
      rows.push_back(std::move(row));
    }
    Table(out, header, rows);
  }

  // Pivot.
  if (!options.pivot.empty()) {
    if (options.pivot.size() != 2) throw Error("--pivot takes two parameters: ROW,COLUMN");
    size_t axis[2];
    for (int i = 0; i < 2; ++i) {
      const auto found = std::find(names.begin(), names.end(), options.pivot[i]);
      if (found == names.end()) {
        std::string known;
        for (const std::string& name : names) known += (known.empty() ? "" : ", ") + name;
        throw Error(StrCat("--pivot: '", options.pivot[i], "' is not a swept parameter of sweep ",
                           sweep.at("name").get<std::string>(), " (swept: ", known.empty() ? "none" : known, ")"));
      }
      axis[i] = static_cast<size_t>(found - names.begin());
    }
    const json& row_values = parameters.at(axis[0]).at("values");
    const json& col_values = parameters.at(axis[1]).at("values");
    std::map<std::pair<std::string, std::string>, std::vector<double>> cells;
    for (size_t j = 0; j < jobs.at("id").size(); ++j) {
      const json& value = jobs.at(primary).at(j);
      if (!value.is_number()) continue;
      cells[{ValueText(jobs["params"][axis[0]][j]), ValueText(jobs["params"][axis[1]][j])}].push_back(value.get<double>());
    }
    out += StrCat("\n## ", primary_label, unit, ": ", names[axis[0]], " × ", names[axis[1]],
                  " (mean ± std over the jobs of each cell; mean: of the cell means)\n\n");
    std::vector<std::string> header = {StrCat(names[axis[0]], " \\ ", names[axis[1]])};
    for (const json& c : col_values) header.push_back(ValueText(c));
    header.push_back("mean");
    // Cell means, for the margins: each cell counts once, however many seeds it has.
    std::vector<double> column_sum(col_values.size(), 0.0);
    std::vector<int64_t> column_count(col_values.size(), 0);
    const auto margin = [rate](double sum, int64_t count) {
      return count == 0 ? std::string("n/a") : FormatMetric(sum / static_cast<double>(count), rate);
    };
    std::vector<std::vector<std::string>> rows;
    for (const json& r : row_values) {
      std::vector<std::string> row = {ValueText(r)};
      double row_sum = 0.0;
      int64_t row_count = 0;
      for (size_t c = 0; c < col_values.size(); ++c) {
        const auto found = cells.find({ValueText(r), ValueText(col_values[c])});
        if (found == cells.end()) {
          row.push_back("n/a");
          continue;
        }
        const MeanStd cell = MeanAndStd(found->second);
        const double mean = *cell.mean;
        row.push_back(FormatMeanStd(mean, *cell.std, rate));
        row_sum += mean;
        ++row_count;
        column_sum[c] += mean;
        ++column_count[c];
      }
      row.push_back(margin(row_sum, row_count));
      rows.push_back(std::move(row));
    }
    std::vector<std::string> means = {"mean"};
    for (size_t c = 0; c < col_values.size(); ++c) means.push_back(margin(column_sum[c], column_count[c]));
    means.push_back("");
    rows.push_back(std::move(means));
    Table(out, header, rows);
  }

  // Importance.
  const json& items = data.at("importance").at("items");
  if (!items.empty()) {
    out += StrCat("\n## Parameter importance (share of the ", primary_label, " variance explained alone)\n\n");
    std::vector<std::vector<std::string>> rows;
    for (const json& item : items) {
      char share[16];
      std::snprintf(share, sizeof(share), "%.2f", item.at("share").get<double>());
      rows.push_back({item.at("name").get<std::string>(), share});
    }
    Table(out, {"parameter", "share"}, rows);
    out += StrCat("\n", data["importance"].at("method").get<std::string>(), "\n");
  }

  // Best jobs.
  std::vector<size_t> ranked;
  for (size_t j = 0; j < jobs.at("id").size(); ++j) {
    if (jobs.at(primary).at(j).is_number()) ranked.push_back(j);
  }
  std::stable_sort(ranked.begin(), ranked.end(), [&](size_t a, size_t b) {
    const double x = jobs[primary][a].get<double>(), y = jobs[primary][b].get<double>();
    return maximize ? x > y : x < y;
  });
  if (!ranked.empty() && options.top > 0) {
    if (ranked.size() > static_cast<size_t>(options.top)) ranked.resize(static_cast<size_t>(options.top));
    out += StrCat("\n## Best ", ranked.size(), " jobs by ", primary_label, "\n\n");
    std::vector<std::string> header = {"job"};
    header.insert(header.end(), names.begin(), names.end());
    header.insert(header.end(), {"seed", "status", StrCat(primary_label, unit), "best step", "steps", "adapter"});
    std::vector<std::vector<std::string>> rows;
    for (const size_t j : ranked) {
      std::vector<std::string> row = {jobs["id"][j].get<std::string>()};
      for (size_t p = 0; p < names.size(); ++p) row.push_back(ValueText(jobs["params"][p][j]));
      row.insert(row.end(), {ValueText(jobs["seed"][j]), jobs["status"][j].get<std::string>(),
                             FormatMetric(jobs[primary][j], rate), ValueText(jobs["best_step"][j]),
                             ValueText(jobs["steps"][j]), jobs["adapter"][j].get<std::string>()});
      rows.push_back(std::move(row));
    }
    Table(out, header, rows);
  }
  return out;
}

std::string FindPlotlyJs(const std::string& explicit_path) {
  std::vector<std::string> candidates;
  if (!explicit_path.empty()) {
    candidates.push_back(explicit_path);
  } else {
    if (const char* env = std::getenv("PROMPTSWEEP_PLOTLY_JS"); env != nullptr && *env != '\0') {
      candidates.push_back(env);
    }
    candidates.push_back((fs::path(PROMPTSWEEP_SOURCE_DIR) / kPlotlyRelative).string());
  }
  for (const std::string& path : candidates) {
    if (fs::is_regular_file(path)) return ReadFile(path, "the plotting library (plotly.min.js)");
  }
  if (!explicit_path.empty()) throw Error(StrCat(explicit_path, ": no such file (--plotly)"));
  std::string tried;
  for (const std::string& path : candidates) tried += StrCat(tried.empty() ? "" : ", ", path);
  throw Error(StrCat("plotly.min.js (npm plotly.js-dist-min) not found (looked at ", tried,
                     "); run deploy/setup.sh, which fetches it into .deps/npm, or pass --plotly FILE "
                     "(or use --format md, which needs no library)"));
}

}  // namespace promptsweep
