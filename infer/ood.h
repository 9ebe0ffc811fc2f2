// Out-of-distribution scoring with the Mahalanobis distance on penultimate features (Lee et al. 2018,
// "A Simple Unified Framework for Detecting Out-of-Distribution Samples and Adversarial Attacks").
//
// Model: class-conditional Gaussians N(mu_k, Sigma) with one shared ("tied") covariance, fitted on the
// training features (N, D) (D = 1280 for MobileNetV2). The score of a feature vector x is
//     score(x) = min_k (x - mu_k)^T Sigma^{-1} (x - mu_k)      (a squared distance, >= 0)
// and x is flagged out-of-distribution when score(x) > threshold, the chosen quantile (default 99.5%) of the
// scores of in-distribution validation images, so about 0.5% of genuine images are flagged.
//
// Covariance estimate: the pooled within-class scatter S = (1/N) sum_i (x_i - mu_{y_i})(x_i - mu_{y_i})^T,
// shrunk towards a scaled identity, Sigma = (1 - a) S + a (tr(S)/D) I, with the Ledoit-Wolf (2004) optimal
// a in [0, 1] (the same estimator as sklearn.covariance.ledoit_wolf). With D = 1280 and a few thousand images S
// is badly conditioned; shrinkage makes Sigma well conditioned without a hand-tuned ridge. A fixed a can be
// passed instead.
//
// The precision is precomputed once, in factored form: with the Cholesky factor Sigma = L L^T,
// W = L^{-1} satisfies W^T W = Sigma^{-1}, so (x - mu)^T Sigma^{-1} (x - mu) = ||W x - W mu||^2. Scoring is
// then one (D, D) matrix-vector product per image plus K short distances, and the squared norm can never
// come out negative through round-off, as x^T P x - 2 mu^T P x + ... can.
//
// What it is not: a classifier, or a feature extractor: the caller brings the features.
#pragma once

#include <cstdint>
#include <map>
#include <span>
#include <string>
#include <vector>

#include "engine/tensor.h"

namespace mriscan {

class OodDetector {
 public:
  // Fits means and the shrunk tied covariance. features: (N, D); labels: (N,) in [0, K); every class needs at
  // least one sample. shrinkage < 0 selects Ledoit-Wolf; a value in [0, 1] is used as given.
  static OodDetector fit(const Tensor& features, std::span<const int> labels, int num_classes,
                         double shrinkage = -1.0);

  // Squared Mahalanobis distance to the nearest class mean, one per row of features (N, D) -> (N,).
  std::vector<float> score(const Tensor& features) const;

  // Sets the threshold to the `quantile` (in (0, 1]) of the scores of in-distribution features (N, D),
  // interpolating linearly between order statistics (numpy's default). Returns the threshold.
  double calibrate_threshold(const Tensor& validation_features, double quantile = 0.995);

  bool is_out_of_distribution(double score) const { return score > threshold_; }

  int num_classes() const { return num_classes_; }
  int feature_dim() const { return feature_dim_; }
  double shrinkage() const { return shrinkage_; }
  double threshold() const { return threshold_; }
  double quantile() const { return quantile_; }

  // Serialisation for the model's safetensors file: tensors "ood.means" (K, D) and "ood.whitening" (D, D)
  // (lower triangular W above), and metadata strings "ood.method", "ood.shrinkage", "ood.threshold",
  // "ood.quantile". from_tensors ignores entries without the "ood." prefix, so the model's full tensor and
  // metadata maps can be passed as they are.
  std::map<std::string, Tensor> to_tensors() const;
  std::map<std::string, std::string> metadata() const;
  static OodDetector from_tensors(const std::map<std::string, Tensor>& tensors,
                                  const std::map<std::string, std::string>& metadata);
  static bool present_in(const std::map<std::string, Tensor>& tensors) { return tensors.count("ood.means") > 0; }

 private:
  void precompute_whitened_means();

  // Plain row-major buffers, so this header does not pull Eigen into every file that includes it; ood.cpp
  // wraps them in Eigen::Map for the linear algebra.
  int num_classes_ = 0, feature_dim_ = 0;
  std::vector<double> means_;           // (K, D) class means mu_k, one per row
  std::vector<double> whitening_;       // (D, D) W = L^{-1}, lower triangular, W^T W = Sigma^{-1}
  std::vector<double> whitened_means_;  // (K, D) rows W mu_k, derived from the two above
  double shrinkage_ = 0.0;
  double threshold_ = 0.0;
  double quantile_ = 0.0;  // 0 until calibrate_threshold ran
};

// The Ledoit-Wolf shrinkage intensity a in [0, 1] for centred samples `residuals` (N, D) row-major, with the
// scatter S = residuals^T residuals / N and the target (tr(S)/D) I. Exposed for tests.
double ledoit_wolf_shrinkage(std::span<const double> residuals, int64_t dim);

}  // namespace mriscan
