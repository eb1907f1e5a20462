#include "common/job.h"

#include <array>

#include "common/error.h"

namespace promptsweep {
namespace {

constexpr std::array<std::pair<JobState, std::string_view>, 8> kStateNames = {{
    {JobState::kPending, "pending"},
    {JobState::kLeased, "leased"},
    {JobState::kRunning, "running"},
    {JobState::kSucceeded, "succeeded"},
    {JobState::kFailed, "failed"},
    {JobState::kDiverged, "diverged"},
    {JobState::kCancelled, "cancelled"},
    {JobState::kStopped, "stopped"},
}};

}  // namespace

std::string_view JobStateName(JobState state) {
  for (const auto& [s, name] : kStateNames) {
    if (s == state) return name;
  }
  return "unknown";
}

JobState ParseJobState(std::string_view name) {
  for (const auto& [state, n] : kStateNames) {
    if (n == name) return state;
  }
  throw Error(StrCat("unknown job state '", name,
                     "' (states: pending, leased, running, succeeded, stopped, failed, diverged, cancelled)"));
}

}  // namespace promptsweep
