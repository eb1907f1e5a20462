// A read sweep (coordinator/sweep_spec.h) as the SweepSubmission that
// `submit` and `run` hand to the coordinator.
#pragma once

#include <string>

#include "client/sweep_types.h"
#include "coordinator/sweep_spec.h"

namespace promptsweep {

// The submission of a read sweep; `output_dir` as given (may be empty). The
// sweep file's text goes with it, for the record. Error when it cannot be read.
SweepSubmission MakeSubmission(const Sweep& sweep, const std::string& output_dir);

}  // namespace promptsweep
