// Calibration, OOD fitting, the one Testing evaluation and the files of the finished run (see the header).
#include "train/final_model.h"

#include <chrono>
#include <filesystem>
#include <fstream>
#include <optional>
#include <set>

#include "data/data_check.h"
#include "engine/kernels/cpu_features.h"
#include "engine/kernels/dispatch.h"
#include "engine/parallel.h"
#include "eval/metrics.h"
#include "eval/ood_report.h"
#include "eval/run_report.h"
#include "infer/calibration.h"
#include "infer/inference.h"
#include "infer/ood_check.h"
#include "models/model_file.h"
#include "train/model_card.h"

namespace mriscan {

namespace {

// Images per class from which the OOD detector's class means and shared covariance are estimated.
constexpr int kOodFitImagesPerClass = 400;

// The rows of `test` whose image has no exact or near copy in the dataset's Training split (data/data_check.h),
// as an InferenceOutput of those rows; nullopt when the data has no Training and Testing folders.
std::optional<InferenceOutput> without_training_copies(const InferenceOutput& test, const std::string& data_dir) {
  namespace fs = std::filesystem;
  const DataCheckReport report = run_data_check({.root = data_dir});
  if (report.training_split.empty() || report.testing_split.empty()) return std::nullopt;
  std::set<std::string> kept;
  for (int i : report.dedup_testing) kept.insert(fs::weakly_canonical(report.files[i].path).string());
  InferenceOutput out;
  const int64_t k = test.logits.dim(1);
  std::vector<float> logits;
  for (size_t i = 0; i < test.labels.size(); ++i) {
    if (!kept.count(fs::weakly_canonical(test.paths[i]).string())) continue;
    logits.insert(logits.end(), test.logits.data() + i * k, test.logits.data() + (i + 1) * k);
    out.labels.push_back(test.labels[i]);
    out.paths.push_back(test.paths[i]);
  }
  out.logits = Tensor(Shape{static_cast<int64_t>(out.labels.size()), k}, logits);
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
  std::optional<InferenceOutput> test;
  if (!splits.test.empty()) {
    if (phase) phase("test");
    test = inputs.infer(splits.test);
    metrics["test"] = to_json(compute_metrics(apply_temperature(test->logits, temperature.temperature), test->labels),
                              splits.class_names);
    if (std::optional<InferenceOutput> dedup = without_training_copies(*test, config.data_dir);
        dedup && !dedup->labels.empty())
      metrics["test_dedup"] =
          to_json(compute_metrics(apply_temperature(dedup->logits, temperature.temperature), dedup->labels),
                  splits.class_names);
  }
  std::map<std::string, const InferenceOutput*> scans = {{"validation", &val}};
  if (test) scans["test"] = &*test;
  metrics["ood"] = ood_report(model, ood, temperature.temperature, config.image_size, scans);
  metrics["train_seconds"] = inputs.train_seconds;
  metrics["machine"] = cpu_features().model_name;
  metrics["kernel_set"] = fast_kernels().name;
  const std::string card = model_card_markdown(metrics, splits.class_names);

  std::map<std::string, std::string> metadata = ood.metadata();
  metadata["temperature"] = std::to_string(temperature.temperature);
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
