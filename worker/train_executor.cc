#include "worker/train_executor.h"

#include <algorithm>
#include <filesystem>
#include <optional>
#include <stdexcept>
#include <utility>

#include "engine/job_settings.h"
#include "worker/train_job.h"
#include "common/error.h"
#include "common/file_util.h"
#include "engine/trainer.h"

namespace promptsweep {
namespace {

namespace fs = std::filesystem;

// The result files a finished job sends back, in this order.
constexpr const char* kResultFiles[] = {"adapter_config.json", "adapter_model.safetensors", kAdapterTaskFile,
                                        "result.json"};

// The bytes of a file this run wrote. A failure is the worker's (disk), so an
// IoError whatever ReadFile says: the job is retryable elsewhere.
std::string ReadRunFile(const fs::path& path) {
  try {
    return ReadFile(path.string(), "a file this run wrote");
  } catch (const Error& e) {
    throw IoError(e.what());
  }
}

// The job id names a directory that is removed afterwards: nothing in it may leave the work directory.
void CheckJobId(const std::string& id) {
  const bool ok = !id.empty() && id.find_first_not_of("0123456789abcdefABCDEFGHIJKLMNOPQRSTUVWXYZghijklmnopqrstuvwxyz_-") ==
                                     std::string::npos;
  if (!ok) throw Error(StrCat("job '", id, "': a job id is letters, digits, '-' and '_'"));
}

JobState StateOf(TrainStatus status) {
  switch (status) {
    case TrainStatus::kSucceeded:
      return JobState::kSucceeded;
    case TrainStatus::kDiverged:
      return JobState::kDiverged;
    case TrainStatus::kCancelled:
      return JobState::kCancelled;
    case TrainStatus::kStopped:
      return JobState::kStopped;
    case TrainStatus::kFailed:
      break;
  }
  return JobState::kFailed;
}

std::optional<double> MetricOf(const std::optional<EvalResult>& eval, EvalMetric metric) {
  if (!eval) return std::nullopt;
  return eval->Metric(metric);
}

JobProgress ProgressOf(const TrainProgress& progress, EvalMetric metric) {
  JobProgress out;
  out.step = progress.step;
  out.max_steps = progress.max_steps;
  out.train_loss = progress.train_loss;
  out.learning_rate = progress.learning_rate;
  out.tokens_per_second = progress.tokens_per_second;
  out.eta_seconds = progress.eta_seconds;
  out.dev_metric = MetricOf(progress.dev, metric);
  out.best_metric = progress.best_metric;
  return out;
}

JobOutcome OutcomeOf(const TrainJobResult& run, const JobContext& context, const fs::path& dir) {
  const TrainResult& result = run.result;
  JobOutcome outcome;
  outcome.state = StateOf(result.status);
  outcome.message = result.message;
  // The trainer fails (rather than throws) only for the runtime's reasons:
  // out of memory, a LibTorch error. Another worker may do better.
  outcome.retryable = result.status == TrainStatus::kFailed;
  outcome.metric_name = std::string(EvalMetricName(result.metric));
  outcome.final_dev = MetricOf(result.final_dev, result.metric);
  outcome.best_dev = MetricOf(result.best_dev, result.metric);
  outcome.test = MetricOf(result.test, result.metric);
  outcome.best_step = result.best_step;
  outcome.steps = result.steps;
  outcome.train_loss = result.final_train_loss;
  outcome.tokens_per_second = result.tokens_per_second;
  outcome.wall_seconds = result.wall_seconds;
  for (const MetricRecord& r : result.history) outcome.history.push_back(MetricRow{r.step, r.split, r.metric, r.value});
  for (const char* name : kResultFiles) {
    if (fs::exists(dir / name)) outcome.files.emplace_back(name, ReadRunFile(dir / name));
  }
  if (result.status == TrainStatus::kCancelled && context.preempt != nullptr && context.preempt->load()) {
    outcome.checkpoint = ReadRunFile(run.checkpoint_path);
  }
  return outcome;
}

}  // namespace

TrainJobExecutor::TrainJobExecutor(Options options)
    : options_(std::move(options)), models_(ModelCache::Options{options_.memory_budget_bytes, nullptr}) {}

JobOutcome TrainJobExecutor::Run(const JobSpec& job, const JobContext& context) {
  JobOutcome outcome;
  fs::path dir;
  try {
    CheckJobId(job.job_id);
    const fs::path work =
        options_.work_dir.empty() ? fs::temp_directory_path() / "promptsweep-jobs" : fs::path(options_.work_dir);
    dir = work / StrCat(job.job_id, "-", job.attempt);
    outcome = RunJob(job, context, dir.string());
  } catch (const IoError& e) {
    // This worker's disk (its work directory): another worker may do better.
    outcome = JobOutcome{};
    outcome.state = JobState::kFailed;
    outcome.message = e.what();
    outcome.retryable = true;
  } catch (const Error& e) {
    // The job's settings or files: the same on every worker, so final.
    outcome = JobOutcome{};
    outcome.state = JobState::kFailed;
    outcome.message = e.what();
    outcome.retryable = false;
  } catch (const std::exception& e) {
    // InternalError (a promptsweep bug), LibTorch, out of memory: this run's,
    // not the job's, so another attempt may succeed.
    outcome = JobOutcome{};
    outcome.state = JobState::kFailed;
    outcome.message = e.what();
    outcome.retryable = true;
  } catch (...) {
    outcome = JobOutcome{};
    outcome.state = JobState::kFailed;
    outcome.message = "unknown exception";
    outcome.retryable = true;
  }
  if (!dir.empty()) {
    std::error_code ignored;  // best effort: the outcome already holds what matters
    fs::remove_all(dir, ignored);
  }
  return outcome;
}

JobOutcome TrainJobExecutor::RunJob(const JobSpec& job, const JobContext& context, const std::string& dir) {
  const std::string where = StrCat("job ", job.job_id);
  if (job.kind != kTrainJob) throw Error(StrCat(where, ": kind '", job.kind, "' is not a train job"));
  TrainJobArgs args;
  SettingFlags settings;
  settings.Add(TrainJobSettings(args));
  settings.ApplySettings(job.settings, job.verbalizer, where);
  if (!context.device.empty()) args.model.device = context.device;
  if (context.threads > 0) args.model.threads = context.threads;
  args.output = dir;  // the worker's directory, whatever the settings say
  args.trainer.verify_every = options_.verify_every;
  ValidateTrainJob(args);
  SetTorchThreads(args.model.threads);

  // A leftover of a crashed run of this attempt would mix into the outputs.
  fs::remove_all(dir);
  fs::create_directories(dir);

  const ModelSpec model_spec = ModelSpecOf(args.model);
  const std::shared_ptr<const LoadedModel> model = models_.Get(model_spec);
  const TaskSpec task = MakeTaskSpec(args.task, *model->model);
  const std::string tokenizer_key = ModelCacheKeyOf(model_spec).model_key;
  TrainJobData data = LoadTrainJobData(
      args, [&](const std::string& path) { return data_.Get(path, task, tokenizer_key, *model->tokenizer); });
  if (!job.checkpoint.empty()) {
    args.resume_from = (fs::path(dir) / "resume.safetensors").string();
    WriteFileAtomically(args.resume_from, job.checkpoint);
  }

  TrainJob train(args, model->model, *model->tokenizer, std::move(data), options_.collective);
  TrainJobHooks hooks;
  hooks.stop = context.stop;
  hooks.terminate = context.terminate;
  if (context.progress) {
    hooks.progress = [&context, metric = train.metric()](const TrainProgress& progress) {
      context.progress(ProgressOf(progress, metric));
    };
  }
  if (options_.pack <= 1 || options_.collective != nullptr) return OutcomeOf(train.Run(hooks), context, dir);
  hooks.pack = AcquirePack(model->model);
  struct Release {  // however the run ends
    TrainJobExecutor* executor;
    const CausalLM* model;
    ~Release() { executor->ReleasePack(model); }
  } release{this, model->model.get()};
  return OutcomeOf(train.Run(hooks), context, dir);
}

PackRunner* TrainJobExecutor::AcquirePack(const std::shared_ptr<const CausalLM>& model) {
  std::lock_guard<std::mutex> lock(packs_mutex_);
  Pack& pack = packs_[model.get()];
  if (pack.runner == nullptr) pack.runner = std::make_unique<PackRunner>(model);
  ++pack.jobs;
  return pack.runner.get();
}

void TrainJobExecutor::ReleasePack(const CausalLM* model) {
  std::unique_ptr<PackRunner> idle;
  {
    std::lock_guard<std::mutex> lock(packs_mutex_);
    auto pack = packs_.find(model);
    if (pack == packs_.end() || --pack->second.jobs > 0) return;
    idle = std::move(pack->second.runner);
    packs_.erase(pack);
  }
  // Its thread has no job left; joined outside the lock.
}

std::vector<std::string> TrainJobExecutor::LoadedModels() const {
  std::vector<std::string> models;
  for (const ModelCacheKey& key : models_.LoadedKeys()) {
    // One model on two devices is one ModelKey.
    if (std::find(models.begin(), models.end(), key.model_key) == models.end()) models.push_back(key.model_key);
  }
  return models;
}

TrainJobExecutor::Stats TrainJobExecutor::stats() const { return Stats{models_.loads(), data_.loads()}; }

}  // namespace promptsweep
