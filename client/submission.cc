#include "client/submission.h"

#include <utility>

#include "common/file_util.h"

namespace promptsweep {

SweepSubmission MakeSubmission(const Sweep& sweep, const std::string& output_dir) {
  SweepSubmission submission;
  submission.name = sweep.name;
  submission.sweep_file = sweep.path;
  submission.yaml = ReadFile(sweep.path, "the sweep file");
  submission.metric_name = sweep.metric.name;
  submission.maximize = sweep.metric.goal == MetricGoal::kMaximize;
  submission.early_terminate = sweep.early_terminate;
  submission.output_dir = output_dir;
  for (const SweepParameter& parameter : sweep.parameters) submission.parameters.push_back(parameter.name);
  submission.jobs.reserve(sweep.jobs.size());
  for (const SweepJob& job : sweep.jobs) {
    SweepSubmission::Job j;
    j.id = job.id;
    j.seed = job.seed;
    j.swept = job.swept;
    j.settings = job.settings.values;
    j.verbalizer = job.settings.verbalizer;
    submission.jobs.push_back(std::move(j));
  }
  return submission;
}

}  // namespace promptsweep
