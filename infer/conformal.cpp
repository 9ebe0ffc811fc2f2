// Split conformal prediction with LAC scores: quantile, set rule, stored scores, measured coverage (see the header).
#include "infer/conformal.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <stdexcept>

namespace mriscan {

namespace {

void check_rows(const char* what, const Tensor& probabilities, size_t labels) {
  if (!probabilities.defined() || probabilities.shape().rank() != 2 || probabilities.dim(1) < 1)
    throw std::invalid_argument(std::string(what) + ": probabilities must be a defined (N, K) tensor");
  if (static_cast<size_t>(probabilities.dim(0)) != labels)
    throw std::invalid_argument(std::string(what) + ": " + probabilities.shape().str() + " probabilities but " +
                                std::to_string(labels) + " labels");
}

std::span<const float> row(const Tensor& probabilities, int64_t i) {
  const int64_t k = probabilities.dim(1);
  return {probabilities.data() + i * k, static_cast<size_t>(k)};
}

}  // namespace

std::string alpha_key(double alpha) {
  char text[32];
  std::snprintf(text, sizeof text, "%.15g", alpha);  // 0.05 -> "0.05", not "0.050000000000000003"
  return text;
}

void check_alpha(double alpha) {
  if (!(alpha > 0.0 && alpha < 1.0))
    throw std::invalid_argument("alpha must be in (0, 1), got " + std::to_string(alpha));
}

int64_t conformal_rank(int64_t n, double alpha) {
  check_alpha(alpha);
  // (n + 1)(1 - alpha) is often an integer in exact arithmetic (n = 9, alpha = 0.1: 9) that binary floating point
  // puts a hair above it (9.000000000000002), which ceil would turn into 10. A tolerance far below 1/(n + 1) keeps
  // the exact value's rank without moving any other.
  const double position = static_cast<double>(n + 1) * (1.0 - alpha);
  return static_cast<int64_t>(std::ceil(position - 1e-9 * static_cast<double>(n + 1)));
}

double conformal_threshold(std::span<const float> sorted_scores, double alpha) {
  const int64_t n = static_cast<int64_t>(sorted_scores.size());
  const int64_t rank = conformal_rank(n, alpha);
  if (n == 0 || rank > n) return std::numeric_limits<double>::infinity();  // too few scores for this alpha: every class
  return sorted_scores[static_cast<size_t>(std::max<int64_t>(rank, 1) - 1)];  // rank >= 1 but for alpha ~ 1
}

float lac_score(std::span<const float> probabilities, int label) {
  if (label < 0 || static_cast<size_t>(label) >= probabilities.size())
    throw std::invalid_argument("lac_score: label " + std::to_string(label) + " outside the probabilities");
  return 1.0f - probabilities[static_cast<size_t>(label)];
}

std::vector<int> lac_set(std::span<const float> probabilities, double threshold) {
  std::vector<int> set;
  for (size_t k = 0; k < probabilities.size(); ++k)
    // The same float expression as lac_score, so a calibration scan's own class scores exactly as it did.
    if (static_cast<double>(1.0f - probabilities[k]) <= threshold) set.push_back(static_cast<int>(k));
  return set;
}

ConformalSets ConformalSets::fit(const Tensor& probabilities, std::span<const int> labels) {
  check_rows("ConformalSets::fit", probabilities, labels.size());
  ConformalSets sets;
  for (int64_t i = 0; i < probabilities.dim(0); ++i)
    sets.scores_.push_back(lac_score(row(probabilities, i), labels[i]));
  std::sort(sets.scores_.begin(), sets.scores_.end());
  return sets;
}

ConformalSets ConformalSets::from_record(const nlohmann::json& record) {
  if (!record.is_object() || record.value("score", "") != "lac")
    throw std::invalid_argument("conformal record: the score must be \"lac\"");
  if (!record.contains("scores") || !record["scores"].is_array() || record["scores"].empty())
    throw std::invalid_argument("conformal record: no calibration scores");
  ConformalSets sets;
  for (const nlohmann::json& score : record["scores"]) {
    if (!score.is_number()) throw std::invalid_argument("conformal record: a score is not a number");
    sets.scores_.push_back(score.get<float>());
  }
  if (!std::is_sorted(sets.scores_.begin(), sets.scores_.end()))
    throw std::invalid_argument("conformal record: the scores are not sorted");
  return sets;
}

nlohmann::json ConformalSets::record(const std::vector<double>& alphas) const {
  nlohmann::json qhat = nlohmann::json::object();
  for (double alpha : alphas) {
    const double t = threshold(alpha);
    qhat[alpha_key(alpha)] = std::isfinite(t) ? nlohmann::json(t) : nlohmann::json(nullptr);
  }
  return {{"score", "lac"}, {"n", n()}, {"qhat", qhat}, {"scores", scores_}};
}

SetSummary summarize_sets(const Tensor& probabilities, std::span<const int> labels, double threshold) {
  check_rows("summarize_sets", probabilities, labels.size());
  SetSummary summary;
  summary.n = probabilities.dim(0);
  if (summary.n == 0) return summary;
  int64_t classes = 0, singletons = 0, empties = 0;
  for (int64_t i = 0; i < summary.n; ++i) {
    const std::vector<int> set = lac_set(row(probabilities, i), threshold);
    summary.covered += std::find(set.begin(), set.end(), labels[i]) != set.end();
    classes += static_cast<int64_t>(set.size());
    singletons += set.size() == 1;
    empties += set.empty();
  }
  const double n = static_cast<double>(summary.n);
  summary.coverage = static_cast<double>(summary.covered) / n;
  summary.mean_size = classes / n;
  summary.singleton_share = singletons / n;
  summary.empty_share = empties / n;
  return summary;
}

}  // namespace mriscan
