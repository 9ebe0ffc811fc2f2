// Split conformal prediction sets (docs/conformal.md derives the guarantee): for a level alpha, the set of classes
// C(x) = {k : 1 - p_k(x) <= qhat(alpha)} contains the true class with probability at least 1 - alpha, for any
// model, whenever the calibration scans and the new scan are exchangeable (drawn alike, in any order).
//
// The score is LAC's ("least ambiguous set-valued classifier", Sadinle, Lei and Wasserman 2019): s(x, y) = 1 - p_y,
// on the temperature-scaled probabilities the Classifier already produces. Among all set rules with the coverage,
// it gives the smallest sets on average; APS (cumulative sorted probabilities, Romano et al. 2020) adapts the size
// to each scan's difficulty but gives larger sets, which a 4-class model right 99% of the time does not need.
// The threshold qhat(alpha) is the ceil((n + 1)(1 - alpha))-th smallest of the n calibration scores; when that rank
// exceeds n no finite threshold has the guarantee, and the set is every class (qhat = +infinity).
//
// What it is: the score, the quantile, the set rule, the stored calibration scores, and the measured coverage of
// sets on labelled data. What it is not: where the scores are fitted (train/prediction_sets.h), or a class-
// conditional guarantee (the coverage is marginal: averaged over the classes in their validation mix).
#pragma once

#include <limits>
#include <nlohmann/json.hpp>
#include <span>
#include <string>
#include <vector>

#include "engine/tensor.h"

namespace mriscan {

// The level of the set an answer leads with (`mriscan serve --alpha`), and the levels every answer and report carry.
constexpr double kDefaultSetAlpha = 0.05;
inline const std::vector<double> kReportedSetAlphas = {0.05, 0.01};

// "0.05", "0.01", "0.1": the key of a level in JSON (shortest form that reads back as the same double).
std::string alpha_key(double alpha);

// Throws std::invalid_argument unless 0 < alpha < 1.
void check_alpha(double alpha);

// ceil((n + 1)(1 - alpha)): the rank (1-based) of the calibration score that is the threshold; > n means none is.
int64_t conformal_rank(int64_t n, double alpha);

// qhat: the conformal_rank-th smallest of `sorted_scores` (ascending), or +infinity when the rank exceeds n.
double conformal_threshold(std::span<const float> sorted_scores, double alpha);

// LAC's nonconformity score of class `label` for one row of probabilities: 1 - p_label.
float lac_score(std::span<const float> probabilities, int label);

// {k : 1 - p_k <= threshold}, ascending class indices; may be empty (no class is plausible enough at this level).
std::vector<int> lac_set(std::span<const float> probabilities, double threshold);

// The calibration scores of a model, as its file stores them (metadata "conformal": {"score": "lac", "n",
// "scores": sorted ascending, ...}); a threshold for any alpha is computed from them.
class ConformalSets {
 public:
  ConformalSets() = default;
  // probabilities (N, K) of calibration scans with their labels (N): the scores 1 - p_y, sorted.
  static ConformalSets fit(const Tensor& probabilities, std::span<const int> labels);
  // From the record written by record(); throws std::invalid_argument on an unknown score or a damaged record.
  static ConformalSets from_record(const nlohmann::json& record);

  bool empty() const { return scores_.empty(); }
  int64_t n() const { return static_cast<int64_t>(scores_.size()); }
  double threshold(double alpha) const { return conformal_threshold(scores_, alpha); }
  // {"score": "lac", "n", "scores", "qhat": {alpha_key: threshold or null (every class)}} for `alphas`.
  nlohmann::json record(const std::vector<double>& alphas = kReportedSetAlphas) const;

 private:
  std::vector<float> scores_;  // (n) ascending
};

// Sets of one level measured on labelled scans: how often they hold the true class, and how large they are.
struct SetSummary {
  int64_t n = 0;
  int64_t covered = 0;           // scans whose set holds the true class
  double coverage = 0.0;         // covered / n
  double mean_size = 0.0;        // mean number of classes in a set
  double singleton_share = 0.0;  // share of sets with exactly one class
  double empty_share = 0.0;      // share of empty sets
};

// probabilities (N, K), labels (N) in [0, K).
SetSummary summarize_sets(const Tensor& probabilities, std::span<const int> labels, double threshold);

}  // namespace mriscan
