// Tests for eval/metrics and eval/plot: hand-computed metric values and PNG plots that decode.

#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <random>
#include <vector>

#include <stb_image.h>

#include "eval/metrics.h"
#include "eval/plot.h"
#include "io/image_io.h"

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

// Both axes logarithmic (a roofline): a line in a fixed colour and a scatter series of dots in its own colour;
// points at x <= 0 are left out on a log x axis rather than breaking the range.
TEST_F(MetricsPlot, LogLogScatterWithLine) {
  const Color roof_color{0, 0, 0}, dot_color{214, 39, 40};
  LineChart chart{"roofline", "FLOP/byte", "GFLOP/s", {}, true, true};
  chart.series.push_back({"roof", {0.05, 4.0, 200.0}, {1.0, 80.0, 80.0}, false, roof_color});
  chart.series.push_back({"kernels", {0.1, 0.6, 12.0, 0.0}, {0.8, 5.0, 60.0, 3.0}, true, dot_color});
  const Image image = render_line_chart(chart, 700, 450);
  check_png(image, "loglog_scatter");
  int dot_pixels = 0;
  for (size_t i = 0; i < image.rgb.size(); i += 3)
    dot_pixels += image.rgb[i] == dot_color.r && image.rgb[i + 1] == dot_color.g && image.rgb[i + 2] == dot_color.b;
  EXPECT_GT(dot_pixels, 3 * 20);  // three dots (and the legend's) of a 10-pixel diameter
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

}  // namespace
}  // namespace mriscan
