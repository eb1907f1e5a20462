#include "client/proto_convert.h"

namespace promptsweep {

void ToProto(const SettingList& settings, google::protobuf::RepeatedPtrField<v1::Setting>* out) {
  out->Clear();
  out->Reserve(static_cast<int>(settings.size()));
  for (const auto& [name, value] : settings) {
    v1::Setting* setting = out->Add();
    setting->set_name(name);
    setting->set_value(value);
  }
}

SettingList FromProto(const google::protobuf::RepeatedPtrField<v1::Setting>& settings) {
  SettingList list;
  list.reserve(static_cast<std::size_t>(settings.size()));
  for (const v1::Setting& setting : settings) list.emplace_back(setting.name(), setting.value());
  return list;
}

void ToProto(const LeaseRef& lease, v1::LeaseRef* out) {
  out->set_sweep(lease.sweep);
  out->set_job_id(lease.job_id);
  out->set_attempt(lease.attempt);
}

LeaseRef FromProto(const v1::LeaseRef& lease) { return LeaseRef{lease.sweep(), lease.job_id(), lease.attempt()}; }

void ToProto(const JobSpec& job, v1::Job* out) {
  ToProto(LeaseRef{job.sweep, job.job_id, job.attempt}, out->mutable_lease());
  out->set_kind(job.kind);
  ToProto(job.settings, out->mutable_settings());
  ToProto(job.verbalizer, out->mutable_verbalizer());
  out->set_checkpoint(job.checkpoint);
  out->set_stop_at_step(job.stop_at_step);
  out->set_stop_reason(job.stop_reason);
}

JobSpec FromProto(const v1::Job& job) {
  JobSpec spec;
  spec.sweep = job.lease().sweep();
  spec.job_id = job.lease().job_id();
  spec.attempt = job.lease().attempt();
  spec.kind = job.kind();
  spec.settings = FromProto(job.settings());
  spec.verbalizer = FromProto(job.verbalizer());
  spec.checkpoint = job.checkpoint();
  spec.stop_at_step = job.stop_at_step();
  spec.stop_reason = job.stop_reason();
  return spec;
}

void ToProto(const WorkerInfo& info, v1::RegisterWorkerRequest* out) {
  out->set_host(info.host);
  out->set_device(info.device);
  out->set_ranks(info.ranks);
  out->set_threads(info.threads);
  out->set_memory_bytes(info.memory_bytes);
  out->set_pid(info.pid);
}

WorkerInfo FromProto(const v1::RegisterWorkerRequest& request) {
  WorkerInfo info;
  info.host = request.host();
  info.device = request.device();
  info.ranks = request.ranks();
  info.threads = request.threads();
  info.memory_bytes = request.memory_bytes();
  info.pid = request.pid();
  return info;
}

void ToProto(const JobProgress& progress, v1::ProgressUpdate* out) {
  out->set_step(progress.step);
  out->set_max_steps(progress.max_steps);
  out->set_train_loss(progress.train_loss);
  out->set_learning_rate(progress.learning_rate);
  out->set_tokens_per_second(progress.tokens_per_second);
  out->set_eta_seconds(progress.eta_seconds);
  if (progress.dev_metric) out->set_dev_metric(*progress.dev_metric);
  if (progress.best_metric) out->set_best_metric(*progress.best_metric);
}

JobProgress FromProto(const v1::ProgressUpdate& update) {
  JobProgress progress;
  progress.step = update.step();
  progress.max_steps = update.max_steps();
  progress.train_loss = update.train_loss();
  progress.learning_rate = update.learning_rate();
  progress.tokens_per_second = update.tokens_per_second();
  progress.eta_seconds = update.eta_seconds();
  if (update.has_dev_metric()) progress.dev_metric = update.dev_metric();
  if (update.has_best_metric()) progress.best_metric = update.best_metric();
  return progress;
}

void ToProto(const JobOutcome& outcome, v1::ReportResultRequest* out) {
  out->set_state(std::string(JobStateName(outcome.state)));
  out->set_message(outcome.message);
  out->set_retryable(outcome.retryable);
  out->set_metric_name(outcome.metric_name);
  if (outcome.final_dev) out->set_final_dev(*outcome.final_dev);
  if (outcome.best_dev) out->set_best_dev(*outcome.best_dev);
  if (outcome.test) out->set_test(*outcome.test);
  out->set_best_step(outcome.best_step);
  out->set_steps(outcome.steps);
  out->set_train_loss(outcome.train_loss);
  out->set_tokens_per_second(outcome.tokens_per_second);
  out->set_wall_seconds(outcome.wall_seconds);
  for (const MetricRow& row : outcome.history) {
    v1::MetricRow* r = out->add_history();
    r->set_step(row.step);
    r->set_split(row.split);
    r->set_metric(row.metric);
    r->set_value(row.value);
  }
  for (const auto& [name, content] : outcome.files) {
    v1::ResultFile* file = out->add_files();
    file->set_name(name);
    file->set_content(content);
  }
}

JobOutcome FromProto(const v1::ReportResultRequest& request) {
  JobOutcome outcome;
  outcome.state = ParseJobState(request.state());
  outcome.message = request.message();
  outcome.retryable = request.retryable();
  outcome.metric_name = request.metric_name();
  if (request.has_final_dev()) outcome.final_dev = request.final_dev();
  if (request.has_best_dev()) outcome.best_dev = request.best_dev();
  if (request.has_test()) outcome.test = request.test();
  outcome.best_step = request.best_step();
  outcome.steps = request.steps();
  outcome.train_loss = request.train_loss();
  outcome.tokens_per_second = request.tokens_per_second();
  outcome.wall_seconds = request.wall_seconds();
  outcome.history.reserve(static_cast<std::size_t>(request.history_size()));
  for (const v1::MetricRow& r : request.history()) {
    outcome.history.push_back(MetricRow{r.step(), r.split(), r.metric(), r.value()});
  }
  for (const v1::ResultFile& file : request.files()) outcome.files.emplace_back(file.name(), file.content());
  return outcome;
}

void ToProto(const EarlyTermination& config, v1::EarlyTerminate* out) {
  out->set_type(std::string(EarlyTerminationTypeName(config.type)));
  out->set_min_iter(config.min_iter);
  out->set_max_iter(config.max_iter);
  out->set_s(config.s);
  out->set_eta(config.eta);
  out->set_strict(config.strict);
  out->set_grace_period(config.grace_period);
  out->set_max_t(config.max_t);
  out->set_brackets(config.brackets);
  out->set_warmup_evals(config.warmup_evals);
  out->set_min_jobs(config.min_jobs);
}

EarlyTermination FromProto(const v1::EarlyTerminate& message) {
  EarlyTermination config;
  config.type = ParseEarlyTerminationType(message.type());
  if (!config.enabled()) return config;
  config.min_iter = message.min_iter();
  config.max_iter = message.max_iter();
  config.s = message.s();
  config.eta = message.eta();
  config.strict = message.strict();
  config.grace_period = message.grace_period();
  config.max_t = message.max_t();
  config.brackets = message.brackets();
  config.warmup_evals = message.warmup_evals();
  config.min_jobs = message.min_jobs();
  return config;
}

void ToProto(const SweepSubmission& sweep, v1::SubmitSweepRequest* out) {
  out->set_name(sweep.name);
  out->set_sweep_file(sweep.sweep_file);
  out->set_yaml(sweep.yaml);
  out->set_metric_name(sweep.metric_name);
  out->set_maximize(sweep.maximize);
  out->set_output_dir(sweep.output_dir);
  for (const std::string& p : sweep.parameters) out->add_parameters(p);
  out->set_max_attempts(sweep.max_attempts);
  if (sweep.early_terminate.enabled()) ToProto(sweep.early_terminate, out->mutable_early_terminate());
  for (const SweepSubmission::Job& job : sweep.jobs) {
    v1::SubmitJob* j = out->add_jobs();
    j->set_id(job.id);
    j->set_seed(job.seed);
    j->set_kind(job.kind);
    ToProto(job.swept, j->mutable_swept());
    ToProto(job.settings, j->mutable_settings());
    ToProto(job.verbalizer, j->mutable_verbalizer());
  }
}

SweepSubmission FromProto(const v1::SubmitSweepRequest& request) {
  SweepSubmission sweep;
  sweep.name = request.name();
  sweep.sweep_file = request.sweep_file();
  sweep.yaml = request.yaml();
  sweep.metric_name = request.metric_name();
  sweep.maximize = request.maximize();
  sweep.output_dir = request.output_dir();
  sweep.parameters.assign(request.parameters().begin(), request.parameters().end());
  sweep.max_attempts = request.max_attempts();
  if (request.has_early_terminate()) sweep.early_terminate = FromProto(request.early_terminate());
  sweep.jobs.reserve(static_cast<std::size_t>(request.jobs_size()));
  for (const v1::SubmitJob& j : request.jobs()) {
    SweepSubmission::Job job;
    job.id = j.id();
    job.seed = j.seed();
    job.kind = j.kind().empty() ? std::string(kTrainJob) : j.kind();
    job.swept = FromProto(j.swept());
    job.settings = FromProto(j.settings());
    job.verbalizer = FromProto(j.verbalizer());
    sweep.jobs.push_back(std::move(job));
  }
  return sweep;
}

void ToProto(const SweepStatus& status, bool with_jobs, v1::SweepStatusReply* out) {
  out->set_sweep(status.name);
  out->set_output_dir(status.output_dir);
  out->set_metric_name(status.metric_name);
  out->set_maximize(status.maximize);
  for (const std::string& p : status.parameters) out->add_parameters(p);
  out->set_total(status.total);
  out->set_pending(status.pending);
  out->set_leased(status.leased);
  out->set_running(status.running);
  out->set_succeeded(status.succeeded);
  out->set_failed(status.failed);
  out->set_diverged(status.diverged);
  out->set_cancelled(status.cancelled);
  out->set_stopped(status.stopped);
  out->set_steps_planned(status.steps_planned);
  out->set_steps_saved(status.steps_saved);
  out->set_done(status.done);
  if (status.best_dev) out->set_best_dev(*status.best_dev);
  out->set_best_job(status.best_job);
  out->set_elapsed_seconds(status.elapsed_seconds);
  out->set_eta_seconds(status.eta_seconds);
  out->set_live_workers(status.live_workers);
  if (!with_jobs) return;
  for (const JobStatusRow& row : status.jobs) {
    v1::JobStatus* j = out->add_jobs();
    j->set_job_id(row.job_id);
    j->set_state(std::string(JobStateName(row.state)));
    j->set_attempts(row.attempts);
    j->set_worker(row.worker);
    ToProto(row.swept, j->mutable_swept());
    j->set_seed(row.seed);
    j->set_step(row.step);
    j->set_max_steps(row.max_steps);
    j->set_train_loss(row.train_loss);
    j->set_eta_seconds(row.eta_seconds);
    if (row.best_dev) j->set_best_dev(*row.best_dev);
    if (row.test) j->set_test(*row.test);
    j->set_message(row.message);
    j->set_has_checkpoint(row.has_checkpoint);
  }
}

SweepStatus FromProto(const v1::SweepStatusReply& reply) {
  SweepStatus status;
  status.name = reply.sweep();
  status.output_dir = reply.output_dir();
  status.metric_name = reply.metric_name();
  status.maximize = reply.maximize();
  status.parameters.assign(reply.parameters().begin(), reply.parameters().end());
  status.total = reply.total();
  status.pending = reply.pending();
  status.leased = reply.leased();
  status.running = reply.running();
  status.succeeded = reply.succeeded();
  status.failed = reply.failed();
  status.diverged = reply.diverged();
  status.cancelled = reply.cancelled();
  status.stopped = reply.stopped();
  status.steps_planned = reply.steps_planned();
  status.steps_saved = reply.steps_saved();
  status.done = reply.done();
  if (reply.has_best_dev()) status.best_dev = reply.best_dev();
  status.best_job = reply.best_job();
  status.elapsed_seconds = reply.elapsed_seconds();
  status.eta_seconds = reply.eta_seconds();
  status.live_workers = reply.live_workers();
  for (const v1::JobStatus& j : reply.jobs()) {
    JobStatusRow row;
    row.job_id = j.job_id();
    row.state = ParseJobState(j.state());
    row.attempts = j.attempts();
    row.worker = j.worker();
    row.swept = FromProto(j.swept());
    row.seed = j.seed();
    row.step = j.step();
    row.max_steps = j.max_steps();
    row.train_loss = j.train_loss();
    row.eta_seconds = j.eta_seconds();
    if (j.has_best_dev()) row.best_dev = j.best_dev();
    if (j.has_test()) row.test = j.test();
    row.message = j.message();
    row.has_checkpoint = j.has_checkpoint();
    status.jobs.push_back(std::move(row));
  }
  return status;
}

}  // namespace promptsweep
