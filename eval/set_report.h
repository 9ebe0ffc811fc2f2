// Prediction sets measured on labelled scans: per level alpha, the empirical coverage (share of scans whose set
// holds the true class, with a 95% Wilson interval), the interval split conformal promises for it, the mean set
// size and the shares of singleton and empty sets. Measured on the scans the classifier answers: those the
// out-of-distribution check lets through (a withheld answer shows no set), which is also the population the
// thresholds were fitted on (train/prediction_sets.h).
// JSON: {"images": N, "answered": A, "calibration_scans": n,
//        "levels": {"0.05": {"qhat", "coverage", "coverage_ci95": [lo, hi], "guarantee": [1 - alpha, upper],
//                            "mean_set_size", "singleton_share", "empty_share"}, ...}}
// where upper = 1 - alpha + 1/(n + 1), the most the rank argument allows (docs/conformal.md); qhat is null when the
// set is every class.
// What it is not: the method (infer/conformal.h) or a fit: nothing here changes a threshold.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "infer/conformal.h"
#include "infer/inference.h"
#include "infer/ood_check.h"

namespace mriscan {

// The rows of `out` the classifier answers: not flagged by `ood` (every row when `ood` is null).
InferenceOutput answered_rows(const InferenceOutput& out, const OodCheck* ood);

// `scans`: an inference output with labels; `temperature` as the model file stores it.
nlohmann::json set_report(const ConformalSets& sets, const InferenceOutput& scans, double temperature,
                          const OodCheck* ood, const std::vector<double>& alphas = kReportedSetAlphas);

// A fixed-width text table of a report: one row per level.
std::string format_set_table(const nlohmann::json& report);

}  // namespace mriscan
