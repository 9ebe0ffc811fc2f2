// Mahalanobis out-of-distribution detector: fit (class means, Ledoit-Wolf tied covariance, whitening
// matrix), scoring, threshold calibration and (de)serialisation. See infer/ood.h for the maths.

// GCC 12 reports a false -Wmaybe-uninitialized inside Eigen's AVX-512 double GEMM packing
// (_mm512_extractf64x4_pd); the diagnostic is located in the compiler's intrinsic headers, so it can only be
// silenced before they are first included.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

#include "infer/ood.h"

#include <Eigen/Cholesky>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <stdexcept>

namespace mriscan {

namespace {

// Row-major matrices throughout, so they map directly onto Tensor data and onto the std::vector members.
using RowMajorF = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using RowMajorD = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using MapD = Eigen::Map<RowMajorD>;
using ConstMapD = Eigen::Map<const RowMajorD>;

// A (N, D) float tensor as a double matrix (the fit and the distances are done in double).
RowMajorD to_double_matrix(const char* what, const Tensor& features, int64_t expected_dim) {
  if (!features.defined() || features.shape().rank() != 2)
    throw std::invalid_argument(std::string(what) + ": features must be a defined (N, D) tensor, got " +
                                (features.defined() ? features.shape().str() : std::string("undefined")));
  if (expected_dim >= 0 && features.dim(1) != expected_dim)
    throw std::invalid_argument(std::string(what) + ": features " + features.shape().str() + " but the detector " +
                                "was fitted on D = " + std::to_string(expected_dim));
  return Eigen::Map<const RowMajorF>(features.data(), features.dim(0), features.dim(1)).cast<double>();
}

Tensor to_tensor(const std::vector<double>& values, int64_t rows, int64_t cols) {
  Tensor t(Shape{rows, cols});  // (rows, cols)
  for (int64_t i = 0; i < rows * cols; ++i) t[i] = static_cast<float>(values[i]);
  return t;
}

std::vector<double> to_vector(const RowMajorD& m) { return {m.data(), m.data() + m.size()}; }

std::string format_double(double value) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.17g", value);  // 17 significant digits round-trip a double exactly
  return buf;
}

double parse_double(const std::map<std::string, std::string>& metadata, const std::string& key) {
  auto it = metadata.find(key);
  if (it == metadata.end()) throw std::invalid_argument("OodDetector::from_tensors: missing metadata '" + key + "'");
  try {
    return std::stod(it->second);
  } catch (const std::exception&) {
    throw std::invalid_argument("OodDetector::from_tensors: metadata '" + key + "' = '" + it->second +
                                "' is not a number");
  }
}

constexpr const char* kMethod = "mahalanobis-tied-ledoit-wolf";

// S = R^T R / N (D, D) for residuals R (N, D), as a symmetric rank-N update (half the work of a general
// product), then mirrored into the upper triangle.
RowMajorD scatter_matrix(const RowMajorD& residuals) {
  const int64_t d = residuals.cols();
  RowMajorD s = RowMajorD::Zero(d, d);
  s.selfadjointView<Eigen::Lower>().rankUpdate(residuals.transpose(), 1.0 / static_cast<double>(residuals.rows()));
  s = s.selfadjointView<Eigen::Lower>();
  return s;
}

// The Ledoit-Wolf intensity given the residuals R (N, D) and their scatter S (D, D).
double ledoit_wolf(const RowMajorD& residuals, const RowMajorD& s) {
  const double n = static_cast<double>(residuals.rows());
  const double p = static_cast<double>(residuals.cols());
  if (residuals.rows() == 0 || residuals.cols() == 0) return 0.0;
  // Target mu I with mu = tr(S) / D.
  const double mu = s.trace() / p;
  // delta: how far S is from the target, ||S - mu I||_F^2 / D.
  const double s_norm2 = s.squaredNorm();
  const double delta = (s_norm2 - 2.0 * mu * s.trace() + p * mu * mu) / p;
  // beta: the estimation noise of S, (1 / n^2) sum_i ||r_i r_i^T - S||_F^2 / D
  //     = (1 / (n D)) ((1/n) sum_i ||r_i||^4 - ||S||_F^2).
  const double sum_r4 = residuals.rowwise().squaredNorm().array().square().sum();
  double beta = (sum_r4 / n - s_norm2) / (n * p);
  // Shrink by noise / dispersion, capped at 1 (all target) when the noise exceeds the dispersion.
  beta = std::clamp(beta, 0.0, delta);
  return delta > 0.0 ? beta / delta : 0.0;
}

}  // namespace

double ledoit_wolf_shrinkage(std::span<const double> residuals, int64_t dim) {
  if (dim <= 0 || residuals.size() % dim != 0)
    throw std::invalid_argument("ledoit_wolf_shrinkage: " + std::to_string(residuals.size()) +
                                " values are not (N, D) rows of D = " + std::to_string(dim));
  const RowMajorD r = ConstMapD(residuals.data(), static_cast<int64_t>(residuals.size()) / dim, dim);
  return ledoit_wolf(r, scatter_matrix(r));
}

OodDetector OodDetector::fit(const Tensor& features, std::span<const int> labels, int num_classes,
                             double shrinkage) {
  const RowMajorD x = to_double_matrix("OodDetector::fit", features, -1);  // (N, D)
  const int64_t n = x.rows(), d = x.cols();
  if (static_cast<int64_t>(labels.size()) != n)
    throw std::invalid_argument("OodDetector::fit: features " + features.shape().str() + " but " +
                                std::to_string(labels.size()) + " labels");
  if (num_classes <= 0 || d == 0) throw std::invalid_argument("OodDetector::fit: need num_classes > 0 and D > 0");
  if (shrinkage > 1.0) throw std::invalid_argument("OodDetector::fit: shrinkage must be <= 1 (negative = auto)");

  // Class means mu_k (K, D).
  RowMajorD means = RowMajorD::Zero(num_classes, d);
  std::vector<int64_t> count(num_classes, 0);
  for (int64_t i = 0; i < n; ++i) {
    const int y = labels[i];
    if (y < 0 || y >= num_classes)
      throw std::invalid_argument("OodDetector::fit: label " + std::to_string(y) + " at index " + std::to_string(i) +
                                  " is outside [0, " + std::to_string(num_classes) + ")");
    means.row(y) += x.row(i);
    ++count[y];
  }
  for (int k = 0; k < num_classes; ++k) {
    if (count[k] == 0)
      throw std::invalid_argument("OodDetector::fit: class " + std::to_string(k) + " has no training samples");
    means.row(k) /= static_cast<double>(count[k]);
  }

  // Within-class residuals r_i = x_i - mu_{y_i} (N, D): pooling them gives the tied covariance.
  RowMajorD residuals = x;
  for (int64_t i = 0; i < n; ++i) residuals.row(i) -= means.row(labels[i]);
  RowMajorD sigma = scatter_matrix(residuals);  // S (D, D)
  OodDetector det;
  det.shrinkage_ = shrinkage < 0.0 ? ledoit_wolf(residuals, sigma) : shrinkage;

  // Sigma = (1 - a) S + a mu I (D, D), mu = tr(S) / D.
  const double mu = sigma.trace() / static_cast<double>(d);
  sigma *= 1.0 - det.shrinkage_;
  sigma.diagonal().array() += det.shrinkage_ * mu;

  // W = L^{-1} from Sigma = L L^T (solve L W = I; W stays lower triangular).
  Eigen::LLT<RowMajorD> llt(sigma);
  if (llt.info() != Eigen::Success)
    throw std::runtime_error("OodDetector::fit: the shrunk covariance is not positive definite (shrinkage " +
                             format_double(det.shrinkage_) + ", N = " + std::to_string(n) + ", D = " +
                             std::to_string(d) + "); pass a larger fixed shrinkage");
  const RowMajorD whitening = llt.matrixL().solve(RowMajorD::Identity(d, d));

  det.num_classes_ = num_classes;
  det.feature_dim_ = static_cast<int>(d);
  det.means_ = to_vector(means);
  det.whitening_ = to_vector(whitening);
  det.precompute_whitened_means();
  return det;
}

void OodDetector::precompute_whitened_means() {
  const ConstMapD means(means_.data(), num_classes_, feature_dim_);          // (K, D)
  const ConstMapD whitening(whitening_.data(), feature_dim_, feature_dim_);  // (D, D)
  // Row k is (W mu_k)^T = mu_k^T W^T.
  whitened_means_ = to_vector(means * whitening.transpose());
}

std::vector<float> OodDetector::score(const Tensor& features) const {
  if (num_classes_ == 0) throw std::logic_error("OodDetector::score: detector is not fitted");
  const RowMajorD x = to_double_matrix("OodDetector::score", features, feature_dim_);  // (N, D)
  const ConstMapD whitening(whitening_.data(), feature_dim_, feature_dim_);            // (D, D)
  const ConstMapD whitened_means(whitened_means_.data(), num_classes_, feature_dim_);  // (K, D)
  // z_i = W x_i for every row at once: Z = X W^T (N, D); W is lower triangular, so W^T is upper.
  const RowMajorD z = x * whitening.transpose().triangularView<Eigen::Upper>();
  std::vector<float> scores(x.rows());  // (N,)
  for (int64_t i = 0; i < x.rows(); ++i) {
    // min_k ||z_i - W mu_k||^2
    scores[i] = static_cast<float>((whitened_means.rowwise() - z.row(i)).rowwise().squaredNorm().minCoeff());
  }
  return scores;
}

double OodDetector::calibrate_threshold(const Tensor& validation_features, double quantile) {
  if (!(quantile > 0.0 && quantile <= 1.0))
    throw std::invalid_argument("OodDetector::calibrate_threshold: quantile must be in (0, 1], got " +
                                format_double(quantile));
  std::vector<float> scores = score(validation_features);
  if (scores.empty()) throw std::invalid_argument("OodDetector::calibrate_threshold: no validation features");
  std::sort(scores.begin(), scores.end());
  // Linear interpolation between the order statistics around position q (n - 1).
  const double position = quantile * static_cast<double>(scores.size() - 1);
  const size_t lo = static_cast<size_t>(std::floor(position));
  const size_t hi = std::min(lo + 1, scores.size() - 1);
  const double frac = position - static_cast<double>(lo);
  threshold_ = (1.0 - frac) * scores[lo] + frac * scores[hi];
  quantile_ = quantile;
  return threshold_;
}

std::map<std::string, Tensor> OodDetector::to_tensors() const {
  if (num_classes_ == 0) throw std::logic_error("OodDetector::to_tensors: detector is not fitted");
  return {{"ood.means", to_tensor(means_, num_classes_, feature_dim_)},
          {"ood.whitening", to_tensor(whitening_, feature_dim_, feature_dim_)}};
}

std::map<std::string, std::string> OodDetector::metadata() const {
  return {{"ood.method", kMethod},
          {"ood.shrinkage", format_double(shrinkage_)},
          {"ood.threshold", format_double(threshold_)},
          {"ood.quantile", format_double(quantile_)}};
}

OodDetector OodDetector::from_tensors(const std::map<std::string, Tensor>& tensors,
                                      const std::map<std::string, std::string>& metadata) {
  auto find = [&](const std::string& name) -> const Tensor& {
    auto it = tensors.find(name);
    if (it == tensors.end()) throw std::invalid_argument("OodDetector::from_tensors: missing tensor '" + name + "'");
    return it->second;
  };
  auto method = metadata.find("ood.method");
  if (method == metadata.end() || method->second != kMethod)
    throw std::invalid_argument(std::string("OodDetector::from_tensors: metadata 'ood.method' must be '") + kMethod +
                                "', got '" + (method == metadata.end() ? "<missing>" : method->second) + "'");
  const Tensor& means = find("ood.means");
  const Tensor& whitening = find("ood.whitening");
  if (means.shape().rank() != 2 || whitening.shape() != Shape{means.dim(1), means.dim(1)})
    throw std::invalid_argument("OodDetector::from_tensors: ood.means " + means.shape().str() +
                                " and ood.whitening " + whitening.shape().str() + " must be (K, D) and (D, D)");
  OodDetector det;
  det.num_classes_ = static_cast<int>(means.dim(0));
  det.feature_dim_ = static_cast<int>(means.dim(1));
  det.means_ = to_vector(to_double_matrix("OodDetector::from_tensors", means, -1));
  det.whitening_ = to_vector(to_double_matrix("OodDetector::from_tensors", whitening, -1));
  det.shrinkage_ = parse_double(metadata, "ood.shrinkage");
  det.threshold_ = parse_double(metadata, "ood.threshold");
  det.quantile_ = parse_double(metadata, "ood.quantile");
  det.precompute_whitened_means();
  return det;
}

}  // namespace mriscan
