// Calibration, OOD fitting, the one Testing evaluation and the files of the finished run (see the header).
#include "train/final_model.h"

#include <chrono>
#include <filesystem>
#include <fstream>
#include <optional>

#include "eval/metrics.h"
#include "eval/run_report.h"
#include "infer/calibration.h"
#include "infer/inference.h"
#include "infer/ood.h"
#include "models/model_file.h"

namespace mriscan {

namespace {

// Images per class from which the OOD detector's class means and shared covariance are estimated.
constexpr int kOodFitImagesPerClass = 400;

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
  OodDetector ood = OodDetector::fit(fit.features, fit.labels, num_classes);
  ood.calibrate_threshold(val.features);

  nlohmann::json metrics;
  metrics["validation"] = to_json(compute_metrics(apply_temperature(val.logits, temperature.temperature), val.labels),
                                  splits.class_names);
  metrics["temperature"] = {{"value", temperature.temperature}, {"val_nll_before", temperature.nll_before},
                            {"val_nll_after", temperature.nll_after}};
  metrics["history"] = inputs.history;
  metrics["best_epoch"] = inputs.best_epoch;
  metrics["config"] = train_config_to_json(config);
  metrics["splits"] = {{"train", splits.train.size()}, {"validation", splits.validation.size()},
                       {"test", splits.test.size()}};
  std::optional<InferenceOutput> test;
  if (!splits.test.empty()) {
    if (phase) phase("test");
    test = inputs.infer(splits.test);
    metrics["test"] = to_json(compute_metrics(apply_temperature(test->logits, temperature.temperature), test->labels),
                              splits.class_names);
  }

  std::map<std::string, std::string> metadata = ood.metadata();
  metadata["temperature"] = std::to_string(temperature.temperature);
  metadata["metrics"] = metrics.dump();
  metadata["created_at"] = std::to_string(std::chrono::duration_cast<std::chrono::seconds>(
                                              std::chrono::system_clock::now().time_since_epoch()).count());
  if (!inputs.write_files) return metrics;
  save_model_file(model_path, model, config.image_size, splits.class_names, metadata, ood.to_tensors());
  std::ofstream(std::filesystem::path(run_dir) / "metrics.json") << metrics.dump(2) << "\n";
  write_run_report(run_dir, model, config.image_size, splits.class_names, metrics, test ? *test : val);
  return metrics;
}

}  // namespace mriscan
