// One retraining job from start to registered version; see retrainer.h.
#include "server/retrainer.h"

#include <cstdio>
#include <stdexcept>

#include "engine/kernels/matmul_precision.h"
#include "models/mobilenet_v2.h"
#include "train/trainer.h"

namespace mriscan {
namespace {

double validation_accuracy(const nlohmann::json& metrics) {
  if (metrics.is_object() && metrics.contains("validation") && metrics["validation"].contains("accuracy") &&
      metrics["validation"]["accuracy"].is_number())
    return metrics["validation"]["accuracy"].get<double>();
  return -1.0;  // unknown: any candidate is "not worse"
}

// A job's progress as GET /retrain_status shows it: the latest numbers of every kind (a "calibrate" or "done"
// event carries no epoch, so fields are updated, never replaced), the epoch history, and an ETA over the remaining
// epochs (training batches only; validation passes come on top).
class JobProgress {
 public:
  JobProgress(const JobContext& job, size_t uploads_used)
      : job_(job),
        progress_({{"phase", "starting"}, {"history", nlohmann::json::array()}, {"uploads_used", uploads_used}}) {}

  ProgressCallback callback() {
    return [this](const TrainProgress& p) { update(p); };
  }

 private:
  void update(const TrainProgress& p) {
    progress_["phase"] = p.phase;
    if (p.phase == "train") {
      const double seconds_per_batch = p.batches > p.batch ? p.eta_seconds / (p.batches - p.batch) : 0.0;
      progress_.update({{"epoch", p.epoch}, {"epochs", p.epochs}, {"batch", p.batch}, {"batches", p.batches},
                        {"loss", p.loss}, {"accuracy", p.accuracy}, {"learning_rate", p.learning_rate},
                        {"images_per_second", p.images_per_second},
                        {"eta_seconds", p.eta_seconds + (p.epochs - p.epoch) * p.batches * seconds_per_batch}});
    }
    if (!p.epoch_summary.is_null()) {
      progress_["history"].push_back(p.epoch_summary);
      progress_["epoch"] = p.epoch;
      progress_["epochs"] = p.epochs;
    }
    if (p.phase == "done") progress_["eta_seconds"] = 0.0;
    // Persist at epoch ends and phase changes after training; per-batch numbers stay in memory.
    job_.report(progress_, p.phase == "epoch" || p.phase == "calibrate" || p.phase == "done");
  }

  const JobContext& job_;
  nlohmann::json progress_;
};

}  // namespace

ActivationRule parse_activation_rule(const std::string& text) {
  if (text == "always") return ActivationRule::kAlways;
  if (text == "not-worse") return ActivationRule::kNotWorse;
  if (text == "never") return ActivationRule::kNever;
  throw std::invalid_argument("unknown activation rule '" + text + "': expected always, not-worse or never");
}

std::string to_string(ActivationRule rule) {
  switch (rule) {
    case ActivationRule::kAlways: return "always";
    case ActivationRule::kNotWorse: return "not-worse";
    case ActivationRule::kNever: return "never";
  }
  return "?";
}

Retrainer::Retrainer(ModelRegistry& registry, UploadStore& uploads, RetrainSettings settings)
    : registry_(registry), uploads_(uploads), settings_(std::move(settings)) {}

TrainConfig Retrainer::job_config(const JobContext& job, const Classifier& classifier) {
  const nlohmann::json& metadata = classifier.metadata();
  TrainConfig config;
  config.data_dir = settings_.data_dir;
  config.weights = classifier.path();
  config.out_dir = job.run_dir;
  config.epochs = job.params.at("epochs");
  config.learning_rate = job.params.at("learning_rate");
  config.frozen_blocks = job.params.at("frozen_blocks");
  int cap = job.params.at("max_samples_per_class");
  config.max_samples_per_class = cap > 0 ? cap : settings_.default_max_samples_per_class;
  config.image_size = classifier.image_size();
  if (metadata.contains("width_mult"))
    config.width_mult = metadata["width_mult"].is_number() ? metadata["width_mult"].get<float>()
                                                           : std::stof(metadata["width_mult"].get<std::string>());
  config.batch_size = settings_.batch_size;
  config.threads = settings_.threads;
  config.precision = matmul_precision_name(matmul_precision());  // the server's (mriscan serve --precision)
  config.evaluate_test = settings_.evaluate_test;
  config.extra_training_samples = uploads_.samples(classifier.class_names());
  return config;
}

// Inside the job's commit transaction (so only `session` may touch the database), so the recorded active version
// read here is the one changed.
Retrainer::Activation Retrainer::activate_if_allowed(Database::Session& session, const ModelVersion& version,
                                                     const ActiveModel& base, const nlohmann::json& metrics,
                                                     double incumbent) {
  Activation decision;
  decision.candidate = validation_accuracy(metrics);
  decision.incumbent = incumbent;
  switch (settings_.rule) {
    case ActivationRule::kAlways: decision.activated = true, decision.reason = "rule 'always'"; break;
    case ActivationRule::kNever:
      decision.reason = "rule 'never': activate it with POST /models/" + version.name() + "/activate";
      break;
    case ActivationRule::kNotWorse:
      decision.activated = decision.candidate >= decision.incumbent;
      decision.reason = "rule 'not-worse': validation accuracy " + std::to_string(decision.candidate) +
                        (decision.activated ? " >= " : " < ") + std::to_string(decision.incumbent) + " of " +
                        base.name;
      break;
  }
  // Only over the version this job started from: if an operator activated or rolled back another version while
  // it ran, their choice stands and the candidate stays registered.
  if (decision.activated && !ModelRegistry::record_active(session, version.number, base.number)) {
    decision.activated = false;
    auto recorded = session.query("SELECT number FROM models WHERE active = 1");
    decision.reason += "; not activated: the active version changed from " + base.name + " to " +
                       (recorded.empty() ? std::string("none") : "v" + recorded[0].text("number")) +
                       " while this job ran (an operator's choice stands)";
  }
  return decision;
}

std::optional<nlohmann::json> Retrainer::run(const JobContext& job) {
  std::string step = "preparing the training run";
  try {
    return run_steps(job, step);
  } catch (const std::exception& error) {
    throw JobStepError(step, error.what());
  }
}

std::optional<nlohmann::json> Retrainer::run_steps(const JobContext& job, std::string& step) {
  std::shared_ptr<const ActiveModel> base = registry_.active();
  if (!base) throw std::runtime_error("no active model to fine-tune");
  if (settings_.data_dir.empty()) throw std::runtime_error("the server was started without --data");
  const TrainConfig config = job_config(job, *base->classifier);

  step = "training";
  JobProgress progress(job, config.extra_training_samples.size());
  TrainResult trained = train_model(config, progress.callback(), job.cancel);
  if (trained.cancelled || !job.begin_commit()) return std::nullopt;  // a cancel after the last batch counts

  step = "saving the model";
  const ModelRegistry::Staged staged = registry_.stage(
      trained.model_path, "retrain job " + std::to_string(job.id) + " from " + base->name, trained.metrics);
  std::optional<ModelVersion> base_version = registry_.find(base->number);  // its metrics never change
  const double incumbent = base_version ? validation_accuracy(base_version->metrics) : -1.0;
  std::optional<nlohmann::json> result;
  try {
    step = "registering the model";
    // The version, its activation and the job's completion in one transaction: nothing is registered for a job
    // that another replica recorded meanwhile (an expired lease) or that a cancel reached first.
    result = job.commit([&](Database::Session& session) {
      const ModelVersion version = registry_.commit_staged(session, staged);
      const Activation activation = activate_if_allowed(session, version, *base, trained.metrics, incumbent);
      return nlohmann::json{{"model_version", version.name()},
                            {"base_version", base->name},
                            {"activated", activation.activated},
                            {"activation_rule", to_string(settings_.rule)},
                            {"activation_reason", activation.reason},
                            {"candidate_val_accuracy", activation.candidate},
                            {"incumbent_val_accuracy", activation.incumbent},
                            {"uploads_used", config.extra_training_samples.size()},
                            {"metrics", public_metrics(trained.metrics)}};
    });
  } catch (...) {
    ModelRegistry::discard(staged);
    throw;
  }
  ModelRegistry::discard(staged);  // committed or not (a renamed copy is no longer there)
  if (result && result->value("activated", false)) serve_now();
  return result;
}

// The activation is recorded; this process serves it now rather than at the App's next follow tick. A failure
// here changes nothing recorded: the follower retries it (server/model_registry.h).
void Retrainer::serve_now() {
  try {
    const std::string change = registry_.follow_database();
    if (!change.empty()) std::fprintf(stderr, "mriscan serve: after the retrain: %s\n", change.c_str());
  } catch (const std::exception& error) {
    std::fprintf(stderr, "mriscan serve: cannot serve the retrained version yet (the follower retries): %s\n",
                 error.what());
  }
}

}  // namespace mriscan
