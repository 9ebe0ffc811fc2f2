// Split conformal prediction sets (infer/conformal.h): the rank, the quantile and the set rule on hand-computed
// values, the stored record, and the guarantee itself, measured on synthetic exchangeable data over many random
// calibration/test splits (docs/conformal.md derives what is checked).
#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "infer/conformal.h"

namespace mriscan {
namespace {

// --- Hand-computed values ---------------------------------------------------------------------------------------

TEST(ConformalRank, IsTheCeilingOfNPlusOneTimesOneMinusAlpha) {
  EXPECT_EQ(conformal_rank(9, 0.1), 9);     // 10 * 0.9 = 9 exactly (9.000000000000002 in floating point)
  EXPECT_EQ(conformal_rank(9, 0.2), 8);     // 10 * 0.8 = 8
  EXPECT_EQ(conformal_rank(9, 0.05), 10);   // 9.5 -> 10 > n: no score is high enough
  EXPECT_EQ(conformal_rank(19, 0.05), 19);  // 20 * 0.95 = 19
  EXPECT_EQ(conformal_rank(99, 0.05), 95);  // 100 * 0.95 = 95
  EXPECT_EQ(conformal_rank(100, 0.05), 96);  // 95.95 -> 96
  EXPECT_EQ(conformal_rank(856, 0.01), 849);  // 857 * 0.99 = 848.43 -> 849
}

TEST(ConformalThreshold, IsTheRankthSmallestScoreOrInfinity) {
  const std::vector<float> scores = {0.1f, 0.2f, 0.3f, 0.4f, 0.5f, 0.6f, 0.7f, 0.8f, 0.9f};  // n = 9, sorted
  EXPECT_FLOAT_EQ(conformal_threshold(scores, 0.1), 0.9f);  // rank 9
  EXPECT_FLOAT_EQ(conformal_threshold(scores, 0.2), 0.8f);  // rank 8
  EXPECT_FLOAT_EQ(conformal_threshold(scores, 0.5), 0.5f);  // rank ceil(5) = 5
  EXPECT_FLOAT_EQ(conformal_threshold(scores, 0.45), 0.6f);  // rank ceil(5.5) = 6
  EXPECT_TRUE(std::isinf(conformal_threshold(scores, 0.05)));  // rank 10 > 9: every class
  EXPECT_TRUE(std::isinf(conformal_threshold({}, 0.5)));       // no calibration at all: every class
  EXPECT_THROW(conformal_threshold(scores, 0.0), std::invalid_argument);
  EXPECT_THROW(conformal_threshold(scores, 1.0), std::invalid_argument);
  EXPECT_THROW(conformal_threshold(scores, std::nan("")), std::invalid_argument);
}

TEST(LacSet, HoldsEveryClassWhoseScoreIsAtMostTheThreshold) {
  const std::vector<float> p = {0.6f, 0.3f, 0.08f, 0.02f};  // scores 1 - p: 0.4, 0.7, 0.92, 0.98
  EXPECT_FLOAT_EQ(lac_score(p, 1), 0.7f);
  EXPECT_EQ(lac_set(p, 0.75), (std::vector<int>{0, 1}));
  EXPECT_EQ(lac_set(p, 0.4), (std::vector<int>{0}));  // <=: a score equal to the threshold is in
  EXPECT_EQ(lac_set(p, 0.3), std::vector<int>{});     // empty: no class is plausible enough
  EXPECT_EQ(lac_set(p, std::numeric_limits<double>::infinity()), (std::vector<int>{0, 1, 2, 3}));
  EXPECT_THROW(lac_score(p, 4), std::invalid_argument);
}

TEST(ConformalSets, FitsSortedScoresAndReadsItsRecordBack) {
  // Three scans: p_y = 0.9, 0.5, 0.7 -> scores 0.1, 0.5, 0.3.
  const Tensor probabilities(Shape{3, 2}, {0.9f, 0.1f, 0.5f, 0.5f, 0.3f, 0.7f});
  const std::vector<int> labels = {0, 1, 1};
  const ConformalSets sets = ConformalSets::fit(probabilities, labels);
  EXPECT_EQ(sets.n(), 3);
  EXPECT_FLOAT_EQ(sets.threshold(0.5), 0.3f);  // rank ceil(4 * 0.5) = 2
  const nlohmann::json record = sets.record({0.5, 0.05});
  EXPECT_EQ(record["score"], "lac");
  EXPECT_EQ(record["n"], 3);
  EXPECT_TRUE(record["qhat"]["0.05"].is_null());  // rank 4 > 3: every class
  const ConformalSets back = ConformalSets::from_record(nlohmann::json::parse(record.dump()));
  EXPECT_EQ(back.threshold(0.5), sets.threshold(0.5));  // bit for bit through the JSON text
  EXPECT_THROW(ConformalSets::from_record({{"score", "aps"}, {"scores", {0.1}}}), std::invalid_argument);
  EXPECT_THROW(ConformalSets::from_record({{"score", "lac"}, {"scores", {0.3, 0.1}}}), std::invalid_argument);
  EXPECT_THROW(ConformalSets::from_record({{"score", "lac"}}), std::invalid_argument);
}

TEST(SummarizeSets, CountsCoverageSizeSingletonsAndEmptySets) {
  // Threshold 0.6 keeps classes with p >= 0.4. Rows: {0} true 0 covered; {0, 1} true 1 covered; {} true 0 not.
  const Tensor probabilities(Shape{3, 2}, {0.9f, 0.1f, 0.5f, 0.5f, 0.35f, 0.3f});
  const std::vector<int> labels = {0, 1, 0};
  const SetSummary s = summarize_sets(probabilities, labels, 0.6);
  EXPECT_EQ(s.n, 3);
  EXPECT_EQ(s.covered, 2);
  EXPECT_DOUBLE_EQ(s.coverage, 2.0 / 3.0);
  EXPECT_DOUBLE_EQ(s.mean_size, 1.0);  // (1 + 2 + 0) / 3
  EXPECT_DOUBLE_EQ(s.singleton_share, 1.0 / 3.0);
  EXPECT_DOUBLE_EQ(s.empty_share, 1.0 / 3.0);
}

TEST(AlphaKey, IsTheShortestDecimal) {
  EXPECT_EQ(alpha_key(0.05), "0.05");
  EXPECT_EQ(alpha_key(0.01), "0.01");
  EXPECT_EQ(alpha_key(0.1), "0.1");
}

// --- The guarantee on synthetic exchangeable data -----------------------------------------------------------------

// A fixed random "model" over K = 4 classes: each scan has logits z ~ N(0, 1.5^2) per class; its true class is drawn
// from softmax(z), and the model reports softmax(2.5 z), an overconfident model (the guarantee needs no calibrated
// one). Scans are i.i.d., hence exchangeable.
struct SyntheticScans {
  Tensor probabilities;  // (N, 4), what the model says
  std::vector<int> labels;
};

SyntheticScans draw_scans(std::mt19937_64& rng, int n) {
  constexpr int k = 4;
  std::normal_distribution<double> logit(0.0, 1.5);
  std::uniform_real_distribution<double> uniform(0.0, 1.0);
  SyntheticScans scans{Tensor(Shape{n, k}), {}};
  for (int i = 0; i < n; ++i) {
    double z[k], truth[k], model[k], truth_sum = 0.0, model_sum = 0.0;
    for (int c = 0; c < k; ++c) {
      z[c] = logit(rng);
      truth_sum += truth[c] = std::exp(z[c]);
      model_sum += model[c] = std::exp(2.5 * z[c]);
    }
    double u = uniform(rng) * truth_sum;
    int label = 0;
    while (label < k - 1 && (u -= truth[label]) > 0.0) ++label;
    scans.labels.push_back(label);
    for (int c = 0; c < k; ++c) scans.probabilities[i * k + c] = static_cast<float>(model[c] / model_sum);
  }
  return scans;
}

// The coverage of sets fitted on n calibration scans, measured on m fresh ones, averaged over `trials` random draws.
// Each trial is a new random calibration/test split of fresh exchangeable data.
double mean_coverage(int n, int m, double alpha, int trials, uint64_t seed) {
  std::mt19937_64 rng(seed);
  double total = 0.0;
  for (int t = 0; t < trials; ++t) {
    const SyntheticScans calibration = draw_scans(rng, n), test = draw_scans(rng, m);
    const ConformalSets sets = ConformalSets::fit(calibration.probabilities, calibration.labels);
    total += summarize_sets(test.probabilities, test.labels, sets.threshold(alpha)).coverage;
  }
  return total / trials;
}

// With continuous scores (no ties), P(Y in C) = l / (n + 1) exactly, l = ceil((n + 1)(1 - alpha)), which lies in
// [1 - alpha, 1 - alpha + 1/(n + 1)). Monte-Carlo tolerance: a trial's coverage varies through its calibration
// (given the calibration, the coverage is Beta(l, n + 1 - l): variance l (n + 1 - l) / ((n + 1)^2 (n + 2))) and
// through its m test scans (at most c (1 - c) / m more), so the mean of T trials has standard deviation
// sqrt((beta variance + c (1 - c) / m) / T); 4 of them (the bound is missed by chance with probability ~6e-5) are
// well under 1/(n + 1), so a rank off by one (which moves the coverage by 1/(n + 1)) fails the test.
// `rank` is l written out by hand (not conformal_rank's answer), so the exact coverage l / (n + 1) checked here does
// not come from the function under test.
void expect_guarantee(int n, double alpha, int rank, uint64_t seed) {
  const int m = 200, trials = 2000;
  ASSERT_EQ(conformal_rank(n, alpha), rank);
  const double l = static_cast<double>(rank);
  const double exact = l / (n + 1);
  const double beta_variance = l * (n + 1 - l) / ((n + 1.0) * (n + 1.0) * (n + 2.0));
  const double tolerance = 4.0 * std::sqrt((beta_variance + exact * (1.0 - exact) / m) / trials);
  ASSERT_LT(tolerance, 0.5 / (n + 1));
  const double coverage = mean_coverage(n, m, alpha, trials, seed);
  EXPECT_GE(coverage, 1.0 - alpha - tolerance) << "n " << n << ", alpha " << alpha;
  EXPECT_LE(coverage, 1.0 - alpha + 1.0 / (n + 1) + tolerance) << "n " << n << ", alpha " << alpha;
  EXPECT_NEAR(coverage, exact, tolerance) << "n " << n << ", alpha " << alpha;
}

TEST(ConformalGuarantee, CoverageLiesWithinTheFiniteSampleBoundsAtFivePercent) {
  expect_guarantee(100, 0.05, 96, 1);
}

TEST(ConformalGuarantee, CoverageLiesWithinTheFiniteSampleBoundsAtTenPercent) {
  expect_guarantee(100, 0.1, 91, 2);
}

TEST(ConformalGuarantee, CoverageLiesWithinTheFiniteSampleBoundsAtOnePercent) {
  expect_guarantee(400, 0.01, 397, 3);
}

// Too few calibration scans for the level: rank n + 1, every class, coverage 1 (the guarantee cannot be had any
// other way).
TEST(ConformalGuarantee, TooFewCalibrationScansGiveEveryClass) {
  EXPECT_DOUBLE_EQ(mean_coverage(9, 50, 0.05, 5, 4), 1.0);
}

}  // namespace
}  // namespace mriscan
