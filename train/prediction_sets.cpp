// fit_prediction_sets: conformal scores on validation, the stored record, the measured sets (see the header).
#include "train/prediction_sets.h"

#include <algorithm>

#include "eval/set_report.h"
#include "infer/calibration.h"
#include "infer/conformal.h"

namespace mriscan {

namespace {

// What a drift monitor compares live traffic against, and the sets' sizes per level, on the answered validation
// scans `answered` out of `all` (see the header for each field).
nlohmann::json validation_profile(const ConformalSets& sets, const InferenceOutput& answered, size_t all,
                                  const PredictionSetInputs& inputs) {
  const Tensor probabilities = apply_temperature(answered.logits, inputs.temperature);  // (A, K)
  const size_t n = answered.labels.size(), k = static_cast<size_t>(inputs.num_classes);
  std::vector<double> class_mix(k, 0.0);  // counts, then shares
  double confidence = 0.0;
  for (size_t i = 0; i < n; ++i) {
    class_mix[answered.labels[i]] += 1.0;
    const float* row = probabilities.data() + i * k;
    confidence += *std::max_element(row, row + k);
  }
  for (double& share : class_mix) share /= static_cast<double>(std::max<size_t>(n, 1));
  nlohmann::json profile = {{"scans", n}, {"class_mix", class_mix}, {"mean_confidence", n ? confidence / n : 0.0}};
  if (inputs.ood) profile["withheld_share"] = all ? static_cast<double>(all - n) / all : 0.0;
  for (double alpha : kReportedSetAlphas) {
    const SetSummary s = summarize_sets(probabilities, answered.labels, sets.threshold(alpha));
    profile["mean_set_size"][alpha_key(alpha)] = s.mean_size;
    profile["singleton_share"][alpha_key(alpha)] = s.singleton_share;
    profile["empty_share"][alpha_key(alpha)] = s.empty_share;
  }
  return profile;
}

}  // namespace

PredictionSetFit fit_prediction_sets(const PredictionSetInputs& inputs) {
  const InferenceOutput answered = answered_rows(inputs.validation, inputs.ood);
  if (answered.labels.empty()) return {};  // nothing to calibrate on (a tiny run): no sets rather than no model
  const ConformalSets sets =
      ConformalSets::fit(apply_temperature(answered.logits, inputs.temperature), answered.labels);
  PredictionSetFit fit;
  fit.record = sets.record();
  fit.record["temperature"] = inputs.temperature;
  fit.record["validation"] = validation_profile(sets, answered, inputs.validation.labels.size(), inputs);
  // On validation the coverage is in-sample (at least 1 - alpha by construction); Testing measures it.
  fit.metrics["validation"] = set_report(sets, inputs.validation, inputs.temperature, inputs.ood);
  if (inputs.test) fit.metrics["test"] = set_report(sets, *inputs.test, inputs.temperature, inputs.ood);
  if (inputs.test_dedup)
    fit.metrics["test_dedup"] = set_report(sets, *inputs.test_dedup, inputs.temperature, inputs.ood);
  return fit;
}

}  // namespace mriscan
