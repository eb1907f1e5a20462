// A sweep's status as text: the one-line progress bar (status, wait, run)
// and the per-job table (status SWEEP).
#pragma once

#include <ostream>
#include <string>

#include "client/sweep_types.h"

namespace promptsweep {

// "[#######.......] 21/48 done (20 ok, 1 failed) | 2 running | best accuracy 0.7123 | 3m10s, ETA 5m2s"
std::string ProgressLine(const SweepStatus& status);

// A table of the sweep's jobs (one line each) and the progress line.
void PrintStatusTable(const SweepStatus& status, std::ostream& out);

}  // namespace promptsweep
