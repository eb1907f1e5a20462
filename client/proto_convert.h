// Conversions between the protocol's messages (proto/promptsweep.proto) and
// the domain structs (common/job.h, client/sweep_types.h). The one place
// that knows both; the service and the clients only call these.
#pragma once

#include "common/job.h"
#include "client/sweep_types.h"
#include "promptsweep.pb.h"

namespace promptsweep {

void ToProto(const SettingList& settings, google::protobuf::RepeatedPtrField<v1::Setting>* out);
SettingList FromProto(const google::protobuf::RepeatedPtrField<v1::Setting>& settings);

void ToProto(const LeaseRef& lease, v1::LeaseRef* out);
LeaseRef FromProto(const v1::LeaseRef& lease);

void ToProto(const JobSpec& job, v1::Job* out);
JobSpec FromProto(const v1::Job& job);

void ToProto(const WorkerInfo& info, v1::RegisterWorkerRequest* out);
WorkerInfo FromProto(const v1::RegisterWorkerRequest& request);

// The worker and lease are not part of JobProgress: the caller sets them.
void ToProto(const JobProgress& progress, v1::ProgressUpdate* out);
JobProgress FromProto(const v1::ProgressUpdate& update);

// Error for an unknown state name.
void ToProto(const JobOutcome& outcome, v1::ReportResultRequest* out);
JobOutcome FromProto(const v1::ReportResultRequest& request);

void ToProto(const EarlyTermination& config, v1::EarlyTerminate* out);
// Error for an unknown type.
EarlyTermination FromProto(const v1::EarlyTerminate& message);

void ToProto(const SweepSubmission& sweep, v1::SubmitSweepRequest* out);
SweepSubmission FromProto(const v1::SubmitSweepRequest& request);

void ToProto(const SweepStatus& status, bool with_jobs, v1::SweepStatusReply* out);
SweepStatus FromProto(const v1::SweepStatusReply& reply);

}  // namespace promptsweep
