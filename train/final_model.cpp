// Calibration, OOD fitting, the one Testing evaluation and the files of the finished run (see the header).
#include "train/final_model.h"

#include <chrono>
#include <filesystem>
#include <fstream>
#include <optional>

#include "engine/kernels/cpu_features.h"
#include "engine/kernels/dispatch.h"
#include "engine/parallel.h"
#include "eval/dedup_testing.h"
#include "eval/metrics.h"
#include "eval/ood_report.h"
#include "eval/run_report.h"
#include "infer/calibration.h"
#include "infer/inference.h"
#include "infer/ood_check.h"
#include "models/model_file.h"
#include "train/model_card.h"
#include "train/prediction_sets.h"

namespace mriscan {

namespace {

// Images per class from which the OOD detector's class means and shared covariance are estimated.
constexpr int kOodFitImagesPerClass = 400;

struct TestingOutputs {
  std::optional<InferenceOutput> test;   // Testing, when the run has it
  std::optional<InferenceOutput> dedup;  // Testing without copies of Training, when known and not empty
};

// Testing and its de-duplicated subset, evaluated once with nothing chosen from them; their metrics go into
// metrics["test"] and metrics["test_dedup"].
TestingOutputs evaluate_testing(const FinalModelInputs& inputs, double temperature,
                                const std::function<void(const char*)>& phase, nlohmann::json& metrics) {
  TestingOutputs out;
  const Splits& splits = inputs.splits;
  if (splits.test.empty()) return out;
  if (phase) phase("test");
  out.test = inputs.infer(splits.test);
  metrics["test"] =
      to_json(compute_metrics(apply_temperature(out.test->logits, temperature), out.test->labels), splits.class_names);
  out.dedup = without_training_copies(*out.test, inputs.config.data_dir);
  if (out.dedup && out.dedup->labels.empty()) out.dedup.reset();
  if (out.dedup)
    metrics["test_dedup"] = to_json(
        compute_metrics(apply_temperature(out.dedup->logits, temperature), out.dedup->labels), splits.class_names);
  return out;
}

}  // namespace

nlohmann::json write_final_model(MobileNetV2& model, const FinalModelInputs& inputs, const std::string& run_dir,
                                 const std::string& model_path, const std::function<void(const char*)>& phase) {
  const TrainConfig& config = inputs.config;
  const Splits& splits = inputs.splits;
  const int num_classes = static_cast<int>(splits.class_names.size());
  if (phase) phase("calibrate");
  InferenceOutput val = inputs.infer(splits.validation);
  TemperatureFit temperature = fit_temperature(val.logits, val.labels);
  // OOD statistics come from training images (no augmentation), the threshold from validation images.
  std::vector<Sample> ood_fit_samples = cap_per_class(splits.train, num_classes, kOodFitImagesPerClass);
  InferenceOutput fit = inputs.infer(ood_fit_samples);
  const OodCheck ood = OodCheck::fit({.train_features = fit.features,
                                      .train_labels = fit.labels,
                                      .train_statistics = fit.statistics,
                                      .val_features = val.features,
                                      .val_statistics = val.statistics},
                                     num_classes);

  nlohmann::json metrics;
  metrics["validation"] =
      to_json(compute_metrics(apply_temperature(val.logits, temperature.temperature), val.labels), splits.class_names);
  metrics["temperature"] = {{"value", temperature.temperature},
                            {"val_nll_before", temperature.nll_before},
                            {"val_nll_after", temperature.nll_after}};
  metrics["history"] = inputs.history;
  metrics["best_epoch"] = inputs.best_epoch;
  metrics["config"] = train_config_to_json(config);
  metrics["splits"] = {
      {"train", splits.train.size()}, {"validation", splits.validation.size()}, {"test", splits.test.size()}};
  const TestingOutputs testing = evaluate_testing(inputs, temperature.temperature, phase, metrics);
  const std::optional<InferenceOutput>& test = testing.test;
  std::map<std::string, const InferenceOutput*> scans = {{"validation", &val}};
  if (test) scans["test"] = &*test;
  metrics["ood"] = ood_report(model, ood, temperature.temperature, config.image_size, scans);
  // The temperature and the check as the file stores them (6 decimals; float tensors), which is what the
  // Classifier applies: the sets are made on those probabilities, for the scans that check answers.
  const std::string stored_temperature = std::to_string(temperature.temperature);
  const OodCheck stored_ood = OodCheck::from_tensors(ood.to_tensors(), ood.metadata());
  const PredictionSetFit sets = fit_prediction_sets({.validation = val,
                                                     .test = test ? &*test : nullptr,
                                                     .test_dedup = testing.dedup ? &*testing.dedup : nullptr,
                                                     .ood = &stored_ood,
                                                     .temperature = std::stof(stored_temperature),
                                                     .num_classes = num_classes});
  if (!sets.record.is_null()) metrics["prediction_sets"] = sets.metrics;
  metrics["train_seconds"] = inputs.train_seconds;
  metrics["machine"] = cpu_features().model_name;
  metrics["kernel_set"] = fast_kernels().name;
  const std::string card = model_card_markdown(metrics, splits.class_names);

  std::map<std::string, std::string> metadata = ood.metadata();
  metadata["temperature"] = stored_temperature;
  if (!sets.record.is_null()) metadata["conformal"] = sets.record.dump();
  metadata["metrics"] = metrics.dump();
  metadata["model_card"] = card;
  metadata["created_at"] = std::to_string(
      std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count());
  if (!inputs.write_files) return metrics;
  save_model_file(model_path, model, config.image_size, splits.class_names, metadata, ood.to_tensors());
  std::ofstream(std::filesystem::path(run_dir) / "metrics.json") << metrics.dump(2) << "\n";
  std::ofstream(std::filesystem::path(run_dir) / "MODEL_CARD.md") << card;
  write_run_report(run_dir, model, config.image_size, splits.class_names, metrics, test ? *test : val);
  return metrics;
}

}  // namespace mriscan
