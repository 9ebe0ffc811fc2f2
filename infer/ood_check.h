// OodCheck: "does this look like the brain MRIs the model was trained on?", from two detectors that fail
// differently, so that an answer that looks like a diagnosis is only given for inputs like the training scans.
//
//   1. input statistics (infer/image_statistics.h): colour, a bright frame, too much or too little darkness.
//      Cheap and blunt; catches photographs, screenshots, documents and diagrams whatever the network thinks.
//   2. feature distance (infer/ood.h): the Mahalanobis distance of the penultimate features to the nearest class.
//      Catches what passes 1 but is unlike every class to the network (patterns, shapes, grey photographs).
// An image is out of distribution when either says so; the verdict lists every reason.
//
// Fitting (fit): both detectors' statistics come from training scans; the thresholds are chosen on validation
// scans so that together they flag `target_rate` of them: the input ranges at their training tails (0.1% each
// side, widened down to the training extremes until they flag at most half the target of validation), then the
// feature threshold at the quantile of the remaining validation scores that brings the total to the target. Never on
// Testing: the rate measured there is the honest check. With fewer than kMinScansForInputRanges training scans a 0.1%
// tail cannot be estimated, so the input ranges are left out (tiny test runs); the feature threshold then takes the
// whole target. What it is not: a calibration of the class probabilities (infer/calibration.h).
#pragma once

#include <array>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "engine/tensor.h"
#include "infer/image_statistics.h"
#include "infer/ood.h"

namespace mriscan {

struct OodVerdict {
  bool out_of_distribution = false;
  std::vector<std::string> reasons;  // empty when in distribution
  float feature_score = 0.0f;        // squared Mahalanobis distance to the nearest class mean
  float feature_threshold = 0.0f;
};

// What fit needs: features (N, D) with labels from training scans, and their input statistics; the same for
// validation scans (labels unused).
struct OodFitData {
  Tensor train_features;                          // (N, D)
  std::vector<int> train_labels;                  // (N)
  std::vector<ImageStatistics> train_statistics;  // (N)
  Tensor val_features;                            // (M, D)
  std::vector<ImageStatistics> val_statistics;    // (M)
};

class OodCheck {
 public:
  static constexpr size_t kMinScansForInputRanges = 200;
  // The training-scan tails tried for the input ranges, narrowest first (fit says why; 0 = the extremes).
  static constexpr std::array<double, 4> kInputTails = {0.001, 0.0005, 0.0002, 0.0};

  static OodCheck fit(const OodFitData& data, int num_classes, double target_rate = 0.008);

  // One verdict per row of features (N, D) and statistics (N).
  std::vector<OodVerdict> check(const Tensor& features, const std::vector<ImageStatistics>& statistics) const;

  const OodDetector& features() const { return features_; }
  const std::optional<ImageStatisticsRanges>& inputs() const { return inputs_; }
  double target_rate() const { return target_rate_; }

  // The model file's "ood.*" tensors and metadata. A file written before the input statistics existed has the
  // feature detector alone; it loads with inputs() empty.
  std::map<std::string, Tensor> to_tensors() const { return features_.to_tensors(); }
  std::map<std::string, std::string> metadata() const;
  static OodCheck from_tensors(const std::map<std::string, Tensor>& tensors,
                               const std::map<std::string, std::string>& metadata);
  static bool present_in(const std::map<std::string, Tensor>& tensors) { return OodDetector::present_in(tensors); }

 private:
  OodDetector features_;
  std::optional<ImageStatisticsRanges> inputs_;
  double target_rate_ = 0.0;
};

}  // namespace mriscan
