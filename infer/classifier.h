// Classifier: a trained model file turned into predictions. This is the only thing the CLI's `predict` and the
// server call: image in, probabilities (temperature-scaled), out-of-distribution flag and Grad-CAM out.
//
// A model file is a safetensors file (io/safetensors.h) with torchvision-named parameters in PyTorch layouts,
// the out-of-distribution check's tensors ("ood.*"), and metadata: class_names (JSON list), width_mult, image_size,
// temperature, preprocessing, version, metrics (JSON), conformal (JSON: the calibration scores of prediction sets,
// infer/conformal.h; absent from files written before them). What it is not: a trainer; it never changes weights.
// Predictions run on a FoldedMobileNetV2 snapshot (BN folded, ReLU6 fused, no tape) built once at load; Grad-CAM
// needs the tape and runs on the MobileNetV2 itself. Both hold the same weights, since neither ever changes.
// Thread safety: `predict*` and `explain` may be called from many threads. Predictions run concurrently (the
// folded forward is const, its buffers per call); each uses the calling thread's kernel thread budget
// (engine/parallel.h), which the server sets per request (server/thread_budget.h). `explain` runs the taped
// model, whose layers keep what backward needs, so explanations are serialised on an internal mutex.
#pragma once

#include <chrono>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

#include "infer/conformal.h"
#include "infer/ood_check.h"
#include "io/image_io.h"
#include "models/folded_mobilenet_v2.h"
#include "models/mobilenet_v2.h"
#include "models/model_file.h"

namespace mriscan {

// A split conformal prediction set (infer/conformal.h): holds the true class with probability >= 1 - alpha.
struct PredictionSet {
  double alpha = 0.0;
  std::vector<int> classes;  // class indices, ascending; empty when no class is plausible enough at this level
};

struct Prediction {
  int class_index = -1;
  std::string class_name;
  float confidence = 0.0f;               // probability of class_index after temperature scaling
  std::vector<float> probabilities;      // (K)
  bool out_of_distribution = false;      // not like the training scans (infer/ood_check.h): do not read as a diagnosis
  std::vector<std::string> ood_reasons;  // why, when out_of_distribution
  float ood_score = 0.0f;      // squared Mahalanobis distance of the 1280-d features to the nearest class mean
  float ood_threshold = 0.0f;  // chosen on validation at training time
  double inference_ms = 0.0;   // preprocessing + forward, measured
  // The configured level's set first, then the other reported levels' (kReportedSetAlphas); none when the model file
  // has no conformal scores. Computed for every prediction; an out-of-distribution answer shows none (the callers
  // withhold them as they withhold the class: the guarantee holds for scans like the calibration scans only).
  std::vector<PredictionSet> prediction_sets;
};

struct Explanation {
  Prediction prediction;
  int class_index = -1;        // the class whose score was explained
  std::vector<float> heatmap;  // (h, w) in [0, 1], the last feature map's resolution
  int heatmap_h = 0, heatmap_w = 0;
  Image overlay;  // the input image with the upsampled heatmap blended on top
};

class Classifier {
 public:
  // Loads and validates a model file; throws std::runtime_error naming the file and the problem.
  // A foreign file (models/model_file.h) takes its class names from `options`; what was assumed is in warnings().
  // `set_alpha` is the level of the prediction set each answer leads with (0 < alpha < 1).
  static std::shared_ptr<Classifier> load(const std::string& path, const ModelLoadOptions& options = {},
                                          double set_alpha = kDefaultSetAlpha);

  Prediction predict(const Image& image);
  std::vector<Prediction> predict_batch(const std::vector<Image>& images);
  // Grad-CAM of class_index (-1: the predicted class) at the last convolutional block (features.18).
  Explanation explain(const Image& image, int class_index = -1);

  const std::vector<std::string>& class_names() const { return class_names_; }
  int image_size() const { return image_size_; }
  float temperature() const { return temperature_; }
  bool has_prediction_sets() const { return !set_levels_.empty(); }
  double set_alpha() const { return set_alpha_; }  // the level each answer's first set has
  const nlohmann::json& metadata() const { return metadata_; }  // every __metadata__ entry, JSON values parsed
  const std::string& path() const { return path_; }
  const std::vector<std::string>& warnings() const { return warnings_; }

 private:
  using Clock = std::chrono::steady_clock;
  Classifier() = default;
  // Predictions for a preprocessed batch (N, S, S, 3); each one's inference_ms counts from `start` (which comes
  // before preprocessing).
  std::vector<Prediction> predict_folded(const Tensor& batch, Clock::time_point start) const;

  std::mutex explain_mutex_;                   // the taped model_ is not reentrant
  std::unique_ptr<MobileNetV2> model_;         // taped, for Grad-CAM
  std::unique_ptr<FoldedMobileNetV2> folded_;  // model_'s snapshot, for predictions
  std::vector<std::string> class_names_;
  int image_size_ = 224;
  float temperature_ = 1.0f;
  std::unique_ptr<OodCheck> ood_;  // null for a model without one (an imported torchvision file)
  double set_alpha_ = kDefaultSetAlpha;
  std::vector<std::pair<double, double>> set_levels_;  // (alpha, qhat), set_alpha_ first; empty: no sets
  nlohmann::json metadata_;
  std::string path_;
  std::vector<std::string> warnings_;
};

}  // namespace mriscan
