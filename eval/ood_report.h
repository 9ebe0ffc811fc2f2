// The out-of-distribution check measured: how many genuine scans it flags (validation, and Testing when given),
// how many generated non-MRI pictures of each kind (data/synthetic_negatives.h) it flags and for which reasons,
// and the distribution of the model's confidence for flagged and unflagged inputs (the calibration question:
// what would the model have claimed for the inputs it now refuses?).
// JSON (rates are fractions in [0, 1], confidences the temperature-scaled top probability):
//   {"target_rate", "feature_threshold", "input_ranges": {name: [lower, upper]},
//    "scans": {"validation": {"images", "flagged", "rate"}, "test": {...}},
//    "negatives": {"photograph": {"images", "flagged", "rate", "reasons": {"colourfulness": n, ...}}, ...},
//    "confidence": {"scans_unflagged" | "scans_flagged" | "negatives_unflagged" | "negatives_flagged":
//                   {"count", "mean", "p05", "p50", "p95"}}}
// What it is not: the check itself (infer/ood_check.h) or a tuning step: nothing here changes a threshold.
#pragma once

#include <map>
#include <nlohmann/json.hpp>
#include <string>

#include "infer/inference.h"
#include "infer/ood_check.h"
#include "models/mobilenet_v2.h"

namespace mriscan {

// `scans`: named outputs of run_inference on genuine scans ("validation", "test"). The negatives are generated
// here, `negatives_per_kind` of each kind with seeds 0 .. n-1, and run through `model`.
nlohmann::json ood_report(MobileNetV2& model, const OodCheck& check, double temperature, int image_size,
                          const std::map<std::string, const InferenceOutput*>& scans, int negatives_per_kind = 40);

// A fixed-width text table of a report: one row per split and per kind of negative.
std::string format_ood_table(const nlohmann::json& report);

}  // namespace mriscan
