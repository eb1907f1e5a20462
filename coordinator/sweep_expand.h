// Internal to promptsweep_sweep: the reader (sweep_spec.cc) hands a read sweep
// to the expansion (sweep_expand.cc) through this.
#pragma once

#include <functional>
#include <string>

#include "coordinator/sweep_spec.h"

namespace promptsweep {

// What the expansion needs from the reader besides the Sweep itself.
struct ReadSweepSettings {
  // One job's settings: the sweep's fixed settings with `swept` (parameter
  // choices, the seed) on top, defaults filled in, in job-file order.
  std::function<JobSettings(const SettingList& swept)> job_settings;
  std::string parameters_where;  // file:line:col of parameters: (or the file), for messages
  std::string run_cap_where;     // the same for run_cap:
};

// Fills sweep.jobs (and uncapped_jobs, warnings) from sweep.parameters, seeds,
// method and run_cap. Error for a grid too large without run_cap, two grid jobs
// with the same settings, or a job schema.check_job rejects.
void ExpandSweep(const ReadSweepSettings& reader, const SweepSchema& schema, Sweep& sweep);

}  // namespace promptsweep
