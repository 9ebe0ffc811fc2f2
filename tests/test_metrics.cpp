// Tests for models/metrics, models/calibration, models/ood and models/plot: hand-computed metric values,
// temperature recovery on synthetic logits, Mahalanobis OOD on Gaussian clusters, and PNG plots that decode.

// GCC 12 reports a false -Wmaybe-uninitialized inside Eigen's AVX-512 double kernels (see models/ood.cpp).
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

#include <gtest/gtest.h>

#include <Eigen/Dense>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <random>
#include <vector>

#include <stb_image.h>

#include "models/calibration.h"
#include "models/image_io.h"
#include "models/metrics.h"
#include "models/ood.h"
#include "models/plot.h"

namespace mriscan {
namespace {

// ------------------------------------------------------------------------------------------------------------
// Classification metrics

// probs (N, K) that put 0.6 on `predicted[i]` and split the rest evenly, so argmax = predicted[i].
Tensor probs_predicting(const std::vector<int>& predicted, int k) {
  Tensor probs(Shape{static_cast<int64_t>(predicted.size()), k});
  for (size_t i = 0; i < predicted.size(); ++i)
    for (int c = 0; c < k; ++c) probs[i * k + c] = c == predicted[i] ? 0.6f : 0.4f / (k - 1);
  return probs;
}

TEST(MetricsClassification, ThreeClassConfusionPrecisionRecallF1) {
  // Confusion matrix (rows = true, columns = predicted), N = 10, 6 correct:
  //          p0 p1 p2 | support
  //   t0  [   3  0  1 ] 4
  //   t1  [   1  2  0 ] 3
  //   t2  [   0  2  1 ] 3
  //   predicted:  4  4  2
  // class 0: P = 3/4 = 0.75, R = 3/4 = 0.75, F1 = 0.75
  // class 1: P = 2/4 = 0.5,  R = 2/3,        F1 = 2 (1/2)(2/3) / (1/2 + 2/3) = 4/7 = 0.571429
  // class 2: P = 1/2 = 0.5,  R = 1/3,        F1 = 2 (1/2)(1/3) / (1/2 + 1/3) = 2/5 = 0.4
  // macro:    P = 1.75/3 = 0.583333, R = 1.75/3 = 0.583333, F1 = (0.75 + 4/7 + 0.4)/3 = 0.573810
  // weighted: P = (4*0.75 + 3*0.5 + 3*0.5)/10 = 0.6, R = (3 + 2 + 1)/10 = 0.6 (= accuracy, always),
  //           F1 = (4*0.75 + 3*4/7 + 3*0.4)/10 = 0.591429
  const std::vector<int> labels = {0, 0, 0, 0, 1, 1, 1, 2, 2, 2};
  const std::vector<int> predicted = {0, 0, 0, 2, 0, 1, 1, 1, 1, 2};
  const Metrics m = compute_metrics(probs_predicting(predicted, 3), labels);

  EXPECT_EQ(m.confusion, (std::vector<int64_t>{3, 0, 1, 1, 2, 0, 0, 2, 1}));
  EXPECT_DOUBLE_EQ(m.accuracy, 0.6);
  const double expected_p[] = {0.75, 0.5, 0.5}, expected_r[] = {0.75, 2.0 / 3, 1.0 / 3};
  const double expected_f1[] = {0.75, 4.0 / 7, 0.4};
  const int64_t expected_support[] = {4, 3, 3};
  for (int c = 0; c < 3; ++c) {
    EXPECT_NEAR(m.per_class[c].precision, expected_p[c], 1e-12) << "class " << c;
    EXPECT_NEAR(m.per_class[c].recall, expected_r[c], 1e-12) << "class " << c;
    EXPECT_NEAR(m.per_class[c].f1, expected_f1[c], 1e-12) << "class " << c;
    EXPECT_EQ(m.per_class[c].support, expected_support[c]) << "class " << c;
  }
  EXPECT_NEAR(m.macro.precision, 0.583333333, 1e-8);
  EXPECT_NEAR(m.macro.recall, 0.583333333, 1e-8);
  EXPECT_NEAR(m.macro.f1, 0.573809524, 1e-8);
  EXPECT_NEAR(m.weighted.precision, 0.6, 1e-12);
  EXPECT_NEAR(m.weighted.recall, 0.6, 1e-12);
  EXPECT_NEAR(m.weighted.f1, 0.591428571, 1e-8);

  const nlohmann::json j = to_json(m, {"a", "b", "c"});
  EXPECT_EQ(j["confusion_matrix"][2][1], 2);
  EXPECT_NEAR(j["classes"]["b"]["f1"].get<double>(), 4.0 / 7, 1e-12);
  const std::string table = format_table(m, {"a", "b", "c"});
  EXPECT_NE(table.find("weighted avg"), std::string::npos);
  EXPECT_NE(table.find("0.5714"), std::string::npos);
}

TEST(MetricsClassification, ClassNeverPredictedHasZeroPrecision) {
  // Nobody is predicted class 1: precision 0 (not NaN), recall 0, F1 0.
  const Metrics m = compute_metrics(probs_predicting({0, 0, 0}, 2), std::vector<int>{0, 1, 0});
  EXPECT_EQ(m.per_class[1].precision, 0.0);
  EXPECT_EQ(m.per_class[1].f1, 0.0);
  EXPECT_NEAR(m.per_class[0].precision, 2.0 / 3, 1e-12);
}

TEST(MetricsClassification, RocAucWithTiesByHand) {
  // positives score {0.5, 0.5}, negatives {0.5, 0.1}. Sorted: 0.1 -> rank 1; the three 0.5s share ranks 2, 3, 4
  // -> midrank 3. U = (3 + 3) - 2*3/2 = 3, AUC = U / (2 * 2) = 0.75. Pairwise: (0.5 vs 0.5) = 1/2 twice,
  // (0.5 vs 0.1) = 1 twice -> 3 / 4.
  const std::vector<float> scores = {0.5f, 0.5f, 0.5f, 0.1f};
  const std::vector<uint8_t> positive = {1, 1, 0, 0};
  EXPECT_DOUBLE_EQ(roc_auc(scores, positive), 0.75);
  // Perfect and reversed rankings, and the undefined case.
  EXPECT_DOUBLE_EQ(roc_auc(std::vector<float>{0.9f, 0.8f, 0.2f}, std::vector<uint8_t>{1, 1, 0}), 1.0);
  EXPECT_DOUBLE_EQ(roc_auc(std::vector<float>{0.1f, 0.8f, 0.9f}, std::vector<uint8_t>{1, 0, 0}), 0.0);
  EXPECT_TRUE(std::isnan(roc_auc(std::vector<float>{0.1f, 0.2f}, std::vector<uint8_t>{1, 1})));
}

TEST(MetricsClassification, RocAucMatchesPairCounting) {
  // The rank formula against the O(N^2) definition on random data with many ties (scores on a 0.1 grid).
  std::mt19937 rng(7);
  std::uniform_int_distribution<int> grid(0, 10), coin(0, 1);
  std::vector<float> scores(200);
  std::vector<uint8_t> positive(200);
  for (size_t i = 0; i < scores.size(); ++i) {
    positive[i] = static_cast<uint8_t>(coin(rng));
    scores[i] = 0.1f * static_cast<float>(grid(rng) + (positive[i] ? 2 : 0));
  }
  double pairs = 0.0, wins = 0.0;
  for (size_t i = 0; i < scores.size(); ++i)
    for (size_t j = 0; j < scores.size(); ++j)
      if (positive[i] && !positive[j]) {
        pairs += 1.0;
        wins += scores[i] > scores[j] ? 1.0 : scores[i] == scores[j] ? 0.5 : 0.0;
      }
  EXPECT_NEAR(roc_auc(scores, positive), wins / pairs, 1e-12);
}

TEST(MetricsClassification, ExpectedCalibrationErrorByHand) {
  // 15 bins of width 1/15. Confidence (max prob) and correctness:
  //   s0: [0.95, 0.05], y=0: conf 0.95 -> bin 14, correct
  //   s1: [0.10, 0.90], y=0: conf 0.90 -> bin 13 (0.9*15 = 13.5), wrong
  //   s2: [0.92, 0.08], y=0: conf 0.92 -> bin 13 (13.8), correct
  //   s3: [0.40, 0.60], y=1: conf 0.60 -> bin 9, correct
  // bin 14: |1 - 0.95| * 1; bin 13: |0.5 - 0.91| * 2; bin 9: |1 - 0.6| * 1
  // ECE = (0.05 + 0.82 + 0.40) / 4 = 0.3175
  const std::vector<float> probs = {0.95f, 0.05f, 0.10f, 0.90f, 0.92f, 0.08f, 0.40f, 0.60f};
  const std::vector<int> labels = {0, 0, 0, 1};
  EXPECT_NEAR(expected_calibration_error(probs, labels, 2), 0.3175, 1e-6);
  // Log loss of the true-class probabilities 0.95, 0.10, 0.92, 0.60:
  // -(ln 0.95 + ln 0.10 + ln 0.92 + ln 0.60) / 4 = (0.051293 + 2.302585 + 0.083382 + 0.510826) / 4 = 0.737022
  EXPECT_NEAR(log_loss(probs, labels, 2), 0.737022, 1e-6);
}

TEST(MetricsClassification, LogLossClipsZeroProbability) {
  // p_true = 0 is clipped to 1e-12: -ln(1e-12) = 27.631021; averaged with a perfect sample (-ln 1 = 0).
  const std::vector<float> probs = {0.0f, 1.0f, 1.0f, 0.0f};
  EXPECT_NEAR(log_loss(probs, std::vector<int>{0, 0}, 2), 27.631021 / 2, 1e-5);
}

TEST(MetricsClassification, WilsonIntervalKnownValue) {
  // 95 / 100 at z = 1.96: the standard table value (0.8882, 0.9785).
  const auto [lo, hi] = wilson_interval(95, 100);
  EXPECT_NEAR(lo, 0.8882, 1e-4);
  EXPECT_NEAR(hi, 0.9785, 1e-4);
  // 100 / 100 stays inside [0, 1] with a non-zero width (the Wald interval would collapse to [1, 1]).
  const auto [lo_all, hi_all] = wilson_interval(100, 100);
  EXPECT_LT(lo_all, 0.97);
  EXPECT_DOUBLE_EQ(hi_all, 1.0);
}

TEST(MetricsClassification, RejectsBadLabels) {
  EXPECT_THROW(compute_metrics(probs_predicting({0, 1}, 2), std::vector<int>{0, 2}), std::invalid_argument);
  EXPECT_THROW(compute_metrics(probs_predicting({0, 1}, 2), std::vector<int>{0}), std::invalid_argument);
}

// ------------------------------------------------------------------------------------------------------------
// Temperature scaling

TEST(MetricsCalibration, RecoversKnownTemperature) {
  // Labels drawn from softmax(true_logits); the model reports 3 * true_logits (over-confident by T = 3), so the
  // NLL-optimal temperature is close to 3 (exactly 3 in the infinite-sample limit).
  const int n = 20000, k = 4;
  std::mt19937 rng(123);
  std::normal_distribution<float> normal(0.0f, 1.5f);
  Tensor logits(Shape{n, k});  // (N, K)
  std::vector<int> labels(n);
  for (int i = 0; i < n; ++i) {
    std::vector<double> p(k);
    double sum = 0.0;
    for (int c = 0; c < k; ++c) {
      const float z = normal(rng);
      logits[i * k + c] = 3.0f * z;
      p[c] = std::exp(z);
      sum += p[c];
    }
    std::discrete_distribution<int> draw(p.begin(), p.end());
    labels[i] = draw(rng);
  }
  const TemperatureFit fit = fit_temperature(logits, labels);
  EXPECT_NEAR(fit.temperature, 3.0, 0.15);
  EXPECT_FALSE(fit.at_bound);
  EXPECT_LT(fit.nll_after, fit.nll_before);
  // The fitted T is a minimum: nudging it either way does not help.
  EXPECT_LE(fit.nll_after, temperature_nll(logits, labels, fit.temperature * 1.05));
  EXPECT_LE(fit.nll_after, temperature_nll(logits, labels, fit.temperature / 1.05));

  // Scaled probabilities are a distribution per row and keep the argmax.
  const Tensor probs = apply_temperature(logits, fit.temperature);
  const std::vector<int> before = argmax_rows(std::span<const float>(logits.data(), logits.numel()), k);
  const std::vector<int> after = argmax_rows(std::span<const float>(probs.data(), probs.numel()), k);
  EXPECT_EQ(before, after);
  for (int i = 0; i < 10; ++i) {
    double row_sum = 0.0;
    for (int c = 0; c < k; ++c) row_sum += probs[i * k + c];
    EXPECT_NEAR(row_sum, 1.0, 1e-5);
  }
}

TEST(MetricsCalibration, ApplyTemperatureIsStableForHugeLogits) {
  Tensor logits(Shape{1, 3}, {1000.0f, 0.0f, -1000.0f});
  const Tensor probs = apply_temperature(logits, 2.0);
  EXPECT_NEAR(probs[0], 1.0f, 1e-6);
  EXPECT_FALSE(std::isnan(probs[1]));
  EXPECT_THROW(apply_temperature(logits, 0.0), std::invalid_argument);
  EXPECT_THROW(apply_temperature(logits, -1.0), std::invalid_argument);
}

// ------------------------------------------------------------------------------------------------------------
// Mahalanobis OOD detector

struct Clusters {
  Tensor features;  // (N, D)
  std::vector<int> labels;
};

// K Gaussian clusters in D dimensions with means 8 * e_k and a shared anisotropic, correlated covariance A A^T.
Clusters sample_clusters(int n, int d, int k, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal;
  Clusters out{Tensor(Shape{n, d}), std::vector<int>(n)};
  for (int i = 0; i < n; ++i) {
    const int y = i % k;
    out.labels[i] = y;
    std::vector<float> g(d);
    for (float& v : g) v = normal(rng);
    for (int j = 0; j < d; ++j) {
      // A is lower bidiagonal with scales 0.5 .. 2.5: correlated neighbours, unequal variances.
      const float scale = 0.5f + 2.0f * static_cast<float>(j) / static_cast<float>(d - 1);
      float v = scale * g[j] + (j > 0 ? 0.7f * g[j - 1] : 0.0f);
      out.features[static_cast<int64_t>(i) * d + j] = v + (j == y ? 8.0f : 0.0f);
    }
  }
  return out;
}

TEST(MetricsOod, InDistributionLowFarPointsFlagged) {
  const int d = 8, k = 3;
  const Clusters train = sample_clusters(3000, d, k, 1);
  const Clusters val = sample_clusters(2000, d, k, 2);
  const Clusters test = sample_clusters(3000, d, k, 3);
  OodDetector det = OodDetector::fit(train.features, train.labels, k);
  EXPECT_GE(det.shrinkage(), 0.0);
  EXPECT_LT(det.shrinkage(), 0.05);  // N >> D: little shrinkage needed
  const double threshold = det.calibrate_threshold(val.features, 0.995);
  // For Gaussian data the score is ~ chi-square with D = 8 dof, whose 99.5% point is 21.95.
  EXPECT_NEAR(threshold, 21.95, 4.0);

  const std::vector<float> test_scores = det.score(test.features);
  int flagged = 0;
  for (float s : test_scores) flagged += det.is_out_of_distribution(s);
  EXPECT_LT(flagged, 0.02 * test_scores.size());  // expected 0.5%

  // Points far from every cluster (shifted by 40 along the all-ones direction) must all exceed the threshold.
  Tensor far = test.features.clone();
  for (int64_t i = 0; i < far.numel(); ++i) far[i] += (i % 2 ? 40.0f : -40.0f);
  for (float s : det.score(far)) EXPECT_TRUE(det.is_out_of_distribution(s)) << s;
}

TEST(MetricsOod, ScoreMatchesDirectMahalanobisWithoutShrinkage) {
  // With shrinkage 0, the score is min_k (x - mu_k)^T S^{-1} (x - mu_k) with S the pooled covariance:
  // recompute it directly with a dense inverse.
  const int d = 5, k = 2;
  const Clusters train = sample_clusters(400, d, k, 4);
  const OodDetector det = OodDetector::fit(train.features, train.labels, k, 0.0);
  Eigen::MatrixXd mu = Eigen::MatrixXd::Zero(k, d), s = Eigen::MatrixXd::Zero(d, d);
  std::vector<int> count(k, 0);
  for (int i = 0; i < 400; ++i) {
    for (int j = 0; j < d; ++j) mu(train.labels[i], j) += train.features[i * d + j];
    ++count[train.labels[i]];
  }
  for (int c = 0; c < k; ++c) mu.row(c) /= count[c];
  for (int i = 0; i < 400; ++i) {
    Eigen::VectorXd r(d);
    for (int j = 0; j < d; ++j) r(j) = train.features[i * d + j] - mu(train.labels[i], j);
    s += r * r.transpose() / 400.0;
  }
  const Eigen::MatrixXd precision = s.inverse();
  const std::vector<float> scores = det.score(train.features);
  for (int i = 0; i < 20; ++i) {
    double best = 1e300;
    for (int c = 0; c < k; ++c) {
      Eigen::VectorXd diff(d);
      for (int j = 0; j < d; ++j) diff(j) = train.features[i * d + j] - mu(c, j);
      best = std::min(best, diff.dot(precision * diff));
    }
    EXPECT_NEAR(scores[i], best, 1e-4 * (1.0 + best)) << "sample " << i;
  }
}

TEST(MetricsOod, LedoitWolfMatchesDefinitionAndHandlesFewSamples) {
  // The code uses the expanded form; check it against the definition beta = (1/n^2) sum_i ||r r^T - S||_F^2 / p,
  // delta = ||S - mu I||_F^2 / p, a = min(beta, delta) / delta, on centred data with fewer samples than dims.
  const int n = 20, p = 30;
  std::mt19937 rng(5);
  std::normal_distribution<double> normal;
  Eigen::MatrixXd r(n, p);
  for (int i = 0; i < n; ++i)
    for (int j = 0; j < p; ++j) r(i, j) = normal(rng) * (1.0 + j % 3);
  const Eigen::MatrixXd s = r.transpose() * r / n;
  const double mu = s.trace() / p;
  const double delta = (s - mu * Eigen::MatrixXd::Identity(p, p)).squaredNorm() / p;
  double beta = 0.0;
  for (int i = 0; i < n; ++i) beta += (r.row(i).transpose() * r.row(i) - s).squaredNorm();
  beta /= static_cast<double>(n) * n * p;
  // Row-major copy of r for the span interface.
  std::vector<double> r_rows(static_cast<size_t>(n) * p);
  for (int i = 0; i < n; ++i)
    for (int j = 0; j < p; ++j) r_rows[i * p + j] = r(i, j);
  const double shrinkage = ledoit_wolf_shrinkage(r_rows, p);
  EXPECT_NEAR(shrinkage, std::min(beta, delta) / delta, 1e-10);
  EXPECT_GT(shrinkage, 0.2);

  // N < D: the raw covariance is singular, the shrunk one is not, so fitting succeeds.
  Tensor features(Shape{n, p});
  std::vector<int> labels(n);
  for (int i = 0; i < n; ++i) {
    labels[i] = i % 2;
    for (int j = 0; j < p; ++j) features[i * p + j] = static_cast<float>(r(i, j));
  }
  const OodDetector det = OodDetector::fit(features, labels, 2);
  for (float score : det.score(features)) EXPECT_TRUE(std::isfinite(score));
  EXPECT_THROW(OodDetector::fit(features, labels, 2, 0.0), std::runtime_error);  // singular without shrinkage
}

TEST(MetricsOod, SerialisationRoundTrip) {
  const int d = 6, k = 3;
  const Clusters train = sample_clusters(600, d, k, 8);
  OodDetector det = OodDetector::fit(train.features, train.labels, k);
  det.calibrate_threshold(sample_clusters(300, d, k, 9).features, 0.99);

  const std::map<std::string, Tensor> tensors = det.to_tensors();
  const std::map<std::string, std::string> metadata = det.metadata();
  for (const auto& [name, tensor] : tensors) EXPECT_EQ(name.rfind("ood.", 0), 0u) << name;
  EXPECT_EQ(tensors.at("ood.means").shape(), (Shape{k, d}));
  EXPECT_EQ(tensors.at("ood.whitening").shape(), (Shape{d, d}));
  ASSERT_TRUE(OodDetector::present_in(tensors));

  const OodDetector loaded = OodDetector::from_tensors(tensors, metadata);
  EXPECT_EQ(loaded.threshold(), det.threshold());
  EXPECT_EQ(loaded.quantile(), 0.99);
  EXPECT_EQ(loaded.shrinkage(), det.shrinkage());
  const Clusters probe = sample_clusters(50, d, k, 10);
  const std::vector<float> a = det.score(probe.features), b = loaded.score(probe.features);
  for (size_t i = 0; i < a.size(); ++i) EXPECT_NEAR(a[i], b[i], 1e-4 * (1.0f + a[i]));

  // Missing pieces are reported by name.
  std::map<std::string, Tensor> broken = tensors;
  broken.erase("ood.whitening");
  try {
    OodDetector::from_tensors(broken, metadata);
    FAIL() << "expected an exception";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("ood.whitening"), std::string::npos);
  }
  EXPECT_THROW(loaded.score(Tensor(Shape{2, d + 1})), std::invalid_argument);
}


// ------------------------------------------------------------------------------------------------------------
// Plots: every chart is written as PNG, decoded again with stb_image, and checked for size and content.
// Set MRISCAN_PLOT_EXAMPLES_DIR to keep the files for looking at them.

class MetricsPlot : public ::testing::Test {
 protected:
  void SetUp() override {
    const char* keep = std::getenv("MRISCAN_PLOT_EXAMPLES_DIR");
    dir_ = keep ? std::filesystem::path(keep)
                : std::filesystem::temp_directory_path() /
                      ("mriscan_test_plots_" + std::to_string(::testing::UnitTest::GetInstance()->random_seed()) +
                       "_" + ::testing::UnitTest::GetInstance()->current_test_info()->name());
    keep_ = keep != nullptr;
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override {
    if (!keep_) std::filesystem::remove_all(dir_);
  }

  // Writes, decodes and checks the PNG: expected size, 3 channels, and clearly not one flat colour.
  void check_png(const Image& image, const std::string& name) {
    const std::string path = (dir_ / (name + ".png")).string();
    write_png(path, image);
    int w = 0, h = 0, channels = 0;
    unsigned char* pixels = stbi_load(path.c_str(), &w, &h, &channels, 3);
    ASSERT_NE(pixels, nullptr) << name << ": " << stbi_failure_reason();
    EXPECT_EQ(w, image.width) << name;
    EXPECT_EQ(h, image.height) << name;
    double sum = 0.0, sum2 = 0.0;
    const size_t n = static_cast<size_t>(w) * h * 3;
    for (size_t i = 0; i < n; ++i) {
      sum += pixels[i];
      sum2 += static_cast<double>(pixels[i]) * pixels[i];
    }
    stbi_image_free(pixels);
    const double variance = sum2 / n - (sum / n) * (sum / n);
    EXPECT_GT(variance, 50.0) << name << " looks blank";
  }

  std::filesystem::path dir_;
  bool keep_ = false;
};

TEST_F(MetricsPlot, TrainingHistoryLineChart) {
  TrainingCurves c;
  for (int e = 0; e < 15; ++e) {
    c.train_loss.push_back(1.2 * std::exp(-0.25 * e) + 0.05);
    c.val_loss.push_back(1.1 * std::exp(-0.2 * e) + 0.12 + 0.01 * (e % 3));
    c.train_accuracy.push_back(1.0 - 0.6 * std::exp(-0.3 * e));
    c.val_accuracy.push_back(0.97 - 0.55 * std::exp(-0.25 * e));
    c.learning_rate.push_back(1e-3 * std::pow(0.5, e / 4));
  }
  const Image image = render_training_history(c, 560, 420);
  EXPECT_EQ(image.width, 3 * 560);
  EXPECT_EQ(image.height, 420);
  check_png(image, "training_history");
  // A lone chart with a gap (NaN) in one series still renders.
  LineChart chart{"loss", "epoch", "loss", {{"a", {}, {1.0, NAN, 0.5, 0.4}}, {"b", {}, {0.9, 0.8}}}, false};
  check_png(render_line_chart(chart, 640, 400), "line_chart_gap");
  // One epoch and a constant learning rate (flat ranges on linear and log axes) still get a usable frame.
  const TrainingCurves one{{0.7}, {0.8}, {0.6}, {0.55}, {1e-3}};
  check_png(render_training_history(one, 400, 300), "training_history_one_epoch");
}

TEST_F(MetricsPlot, ConfusionMatrixHeatmap) {
  const std::vector<int64_t> confusion = {289, 9, 1, 1, 12, 270, 10, 14, 0, 2, 403, 0, 0, 6, 0, 294};
  const std::vector<std::string> names = {"glioma", "meningioma", "notumor", "pituitary"};
  const Image image = render_confusion_matrix(confusion, names);
  check_png(image, "confusion_matrix");
  // Cells are shaded by their row share: the colours of glioma's diagonal (289/300) and of a small
  // off-diagonal cell (9/300) must both appear, and the diagonal one is darker.
  auto contains = [&](Color c) {
    for (size_t i = 0; i < image.rgb.size(); i += 3)
      if (image.rgb[i] == c.r && image.rgb[i + 1] == c.g && image.rgb[i + 2] == c.b) return true;
    return false;
  };
  const Color diagonal = blues_color(289.0f / 300), off_diagonal = blues_color(9.0f / 300);
  EXPECT_TRUE(contains(diagonal));
  EXPECT_TRUE(contains(off_diagonal));
  EXPECT_LT(luminance(diagonal), luminance(off_diagonal));
  EXPECT_THROW(render_confusion_matrix(confusion, {"a", "b"}), std::invalid_argument);
}

TEST_F(MetricsPlot, PerClassBarChart) {
  BarChart chart{"Per-class scores (test)", "score", {"glioma", "meningioma", "notumor", "pituitary"},
                 {"precision", "recall", "F1"},
                 {{0.96, 0.94, 0.97, 0.95}, {0.95, 0.88, 1.00, 0.98}, {0.955, 0.91, 0.985, 0.965}}};
  check_png(render_bar_chart(chart), "per_class_bars");
  chart.values[0].pop_back();
  EXPECT_THROW(render_bar_chart(chart), std::invalid_argument);
}

TEST_F(MetricsPlot, ImageGridWithCaptions) {
  std::vector<GridCell> cells;
  for (int i = 0; i < 6; ++i) {
    Image im(100 + 20 * i, 120);  // different aspect ratios get letterboxed
    for (int y = 0; y < im.height; ++y)
      for (int x = 0; x < im.width; ++x) {
        uint8_t* p = im.pixel(x, y);
        p[0] = static_cast<uint8_t>(255 * x / im.width);
        p[1] = static_cast<uint8_t>(255 * y / im.height);
        p[2] = static_cast<uint8_t>(40 * i);
      }
    cells.push_back({im, "class " + std::to_string(i) + "\np = 0.9" + std::to_string(i), series_color(i)});
  }
  const Image image = render_image_grid(cells, 3, 128, "Samples");
  EXPECT_GT(image.width, 3 * 128);
  EXPECT_GT(image.height, 2 * 128);
  check_png(image, "image_grid");
}

TEST_F(MetricsPlot, HeatmapOverlayFollowsHeat) {
  Image base(64, 64);
  std::fill(base.rgb.begin(), base.rgb.end(), uint8_t{128});
  // Heat (8, 8): 0.15 on the left half, 0.9 on the right half; the overlay is upsampled to 64 x 64.
  std::vector<float> heat(64);
  for (int y = 0; y < 8; ++y)
    for (int x = 0; x < 8; ++x) heat[y * 8 + x] = x < 4 ? 0.15f : 0.9f;
  const Image out = overlay_heatmap(base, heat.data(), 8, 8, 0.5f);
  ASSERT_EQ(out.width, 64);
  ASSERT_EQ(out.height, 64);
  const uint8_t* cold = out.pixel(4, 32);
  const uint8_t* hot = out.pixel(60, 32);
  // turbo(0.15) is blue, turbo(0.9) red: blue dominates on the cold side, red on the hot side.
  EXPECT_GT(cold[2], cold[0]);
  EXPECT_GT(hot[0], hot[2]);
  EXPECT_GT(std::abs(cold[0] - hot[0]) + std::abs(cold[2] - hot[2]), 60);
  // alpha = 0 leaves the image untouched.
  EXPECT_EQ(overlay_heatmap(base, heat.data(), 8, 8, 0.0f).rgb, base.rgb);
  EXPECT_THROW(overlay_heatmap(base, nullptr, 8, 8, 0.5f), std::invalid_argument);
  check_png(out, "heat_overlay");
}

}  // namespace
}  // namespace mriscan
