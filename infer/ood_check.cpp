// OodCheck: fitting the two detectors together, the verdicts, and (de)serialisation (see the header).
#include "infer/ood_check.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <stdexcept>

namespace mriscan {

namespace {

// Rows `rows` of a (N, D) tensor, as a (rows.size(), D) tensor.
Tensor select_rows(const Tensor& features, const std::vector<int64_t>& rows) {
  const int64_t d = features.dim(1);
  Tensor out(Shape{static_cast<int64_t>(rows.size()), d});  // (R, D)
  for (size_t r = 0; r < rows.size(); ++r)
    std::copy(features.data() + rows[r] * d, features.data() + (rows[r] + 1) * d, out.data() + r * d);
  return out;
}

}  // namespace

OodCheck OodCheck::fit(const OodFitData& data, int num_classes, double target_rate) {
  const int64_t m = data.val_features.defined() ? data.val_features.dim(0) : 0;
  if (m == 0 || static_cast<int64_t>(data.val_statistics.size()) != m ||
      data.train_statistics.size() != data.train_labels.size())
    throw std::invalid_argument(
        "OodCheck::fit: need validation features with one statistics row each, and "
        "training statistics for every training row");
  if (!(target_rate > 0.0 && target_rate < 0.5))
    throw std::invalid_argument("OodCheck::fit: target_rate must be in (0, 0.5)");
  OodCheck check;
  check.target_rate_ = target_rate;
  check.features_ = OodDetector::fit(data.train_features, data.train_labels, num_classes);
  // The validation scans the input ranges let through; the feature threshold flags just enough of those.
  std::vector<int64_t> passing;
  auto let_through = [&] {  // fills `passing`, returns how many the input ranges flag
    passing.clear();
    for (int64_t i = 0; i < m; ++i)
      if (!check.inputs_ || check.inputs_->violations(data.val_statistics[i]).empty()) passing.push_back(i);
    return static_cast<double>(m - static_cast<int64_t>(passing.size()));
  };
  // The input ranges may take at most half the target: six one-sided 0.1% tails of the training scans flag up to
  // 0.6% of them and, on a validation sample, more (1.3% of a real run's validation scans on 2026-12-04, the whole
  // target and past it). So the tails are widened, down to the training extremes, until they stay within half.
  if (data.train_statistics.size() >= kMinScansForInputRanges)
    for (double tail : kInputTails) {
      check.inputs_ = ImageStatisticsRanges::fit(data.train_statistics, tail);
      if (let_through() <= 0.5 * target_rate * static_cast<double>(m)) break;
    }
  let_through();
  const double allowed = std::max(0.0, target_rate * static_cast<double>(m) - static_cast<double>(m - passing.size()));
  if (passing.empty()) throw std::invalid_argument("OodCheck::fit: the input ranges reject every validation scan");
  const double quantile = std::clamp(1.0 - allowed / static_cast<double>(passing.size()), 0.5, 1.0);
  check.features_.calibrate_threshold(select_rows(data.val_features, passing), quantile);
  return check;
}

std::vector<OodVerdict> OodCheck::check(const Tensor& features, const std::vector<ImageStatistics>& statistics) const {
  const std::vector<float> scores = features_.score(features);
  if (statistics.size() != scores.size())
    throw std::invalid_argument("OodCheck::check: " + std::to_string(scores.size()) + " feature rows but " +
                                std::to_string(statistics.size()) + " statistics");
  std::vector<OodVerdict> verdicts(scores.size());
  for (size_t i = 0; i < scores.size(); ++i) {
    OodVerdict& v = verdicts[i];
    v.feature_score = scores[i];
    v.feature_threshold = static_cast<float>(features_.threshold());
    if (inputs_) v.reasons = inputs_->violations(statistics[i]);
    if (features_.is_out_of_distribution(scores[i])) {
      char line[128];
      std::snprintf(line, sizeof line, "features unlike every class (distance %.0f above %.0f)", scores[i],
                    v.feature_threshold);
      v.reasons.emplace_back(line);
    }
    v.out_of_distribution = !v.reasons.empty();
  }
  return verdicts;
}

std::map<std::string, std::string> OodCheck::metadata() const {
  std::map<std::string, std::string> metadata = features_.metadata();
  if (inputs_) metadata.merge(inputs_->metadata());
  char rate[32];
  std::snprintf(rate, sizeof rate, "%.17g", target_rate_);
  metadata["ood.target_rate"] = rate;
  return metadata;
}

OodCheck OodCheck::from_tensors(const std::map<std::string, Tensor>& tensors,
                                const std::map<std::string, std::string>& metadata) {
  OodCheck check;
  check.features_ = OodDetector::from_tensors(tensors, metadata);
  if (ImageStatisticsRanges::present_in(metadata)) check.inputs_ = ImageStatisticsRanges::from_metadata(metadata);
  auto rate = metadata.find("ood.target_rate");
  check.target_rate_ = rate == metadata.end() ? 1.0 - check.features_.quantile() : std::atof(rate->second.c_str());
  return check;
}

}  // namespace mriscan
