// What one retraining job does: fine-tune the active model on the training data plus the uploads, register the
// result as a new version, and activate it if the activation rule allows.
//
// Steps: take the active model (its file is the starting weights; its width and image size are kept), build a
// TrainConfig (epochs, learning rate and frozen blocks from the request; the uploads as extra training samples;
// validation carved from the training data with the trainer's fixed seed), run train_model (train/trainer.h) in the
// job's run folder with its cancel flag, then in the job's ONE commit transaction (JobContext::commit) register
// RUNDIR/model.safetensors as v{n+1} with its metrics and apply the rule:
//   always     activate every successful retrain
//   not-worse  activate if candidate validation accuracy >= the active version's recorded validation accuracy
//              (both come from the same seeded split of the same data when the retrain uses the same sample cap)
//   never      register only; an operator activates through POST /models/{version}/activate
// The activation is recorded in that transaction and then served (ModelRegistry::follow_database loads it).
// A failure is thrown as a JobStepError naming the step ("saving the model"), for a public message.
// What it is not: the trainer (train/trainer.h) or the queue (server/state/job_queue.h).
#pragma once

#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "server/state/job_queue.h"
#include "server/model_registry.h"
#include "server/retrain_params.h"
#include "server/upload_store.h"
#include "train/train_config.h"

namespace mriscan {

enum class ActivationRule { kAlways, kNotWorse, kNever };

// "always" | "not-worse" | "never"; throws std::invalid_argument naming the value otherwise.
ActivationRule parse_activation_rule(const std::string& text);
std::string to_string(ActivationRule rule);

struct RetrainSettings {
  std::string data_dir;  // dataset root (Training/ and optionally Testing/)
  ActivationRule rule = ActivationRule::kNotWorse;
  int threads = 1;       // OpenMP threads of the training loop
  int batch_size = 32;
  int default_max_samples_per_class = 0;  // 0 = all; a request may ask for fewer
  bool evaluate_test = false;             // also evaluate on Testing/ (slow; never used for the decision)
};

class Retrainer {
 public:
  Retrainer(ModelRegistry& registry, UploadStore& uploads, RetrainSettings settings);
  std::optional<nlohmann::json> run(const JobContext& job);
  const RetrainSettings& settings() const { return settings_; }

 private:
  struct Activation {
    bool activated = false;
    std::string reason;                          // the rule and the numbers it compared
    double candidate = -1.0, incumbent = -1.0;  // validation accuracies; -1 when unknown
  };
  // The job's training run: the active model's file, width and image size; the request's epochs, learning rate,
  // frozen blocks and sample cap; the uploads as extra training samples.
  TrainConfig job_config(const JobContext& job, const Classifier& classifier);
  // run() step by step, naming the step it is in for a failure's message.
  std::optional<nlohmann::json> run_steps(const JobContext& job, std::string& step);
  // The activation rule applied to the registered `version`, trained from `base` (whose validation accuracy is
  // `incumbent`); records it active when allowed.
  Activation activate_if_allowed(Database::Session& session, const ModelVersion& version, const ActiveModel& base,
                                 const nlohmann::json& metrics, double incumbent);
  void serve_now();  // serves a recorded activation at once

  ModelRegistry& registry_;
  UploadStore& uploads_;
  RetrainSettings settings_;
};

}  // namespace mriscan
