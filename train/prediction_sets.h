// The prediction-set step of a run's end (train/final_model.h), also run by `mriscan calibrate-sets` for a model
// file trained before it existed: split conformal scores (infer/conformal.h) fitted on the validation split, after
// the temperature, never on Testing; then the sets measured on Testing and on Testing without its copies of
// Training, with nothing chosen from them.
//
// The record stored in the model file (metadata "conformal"), read by the Classifier and by drift monitors:
//   {"score": "lac", "n", "qhat": {"0.05", "0.01"}, "scores": [n, ascending], "temperature",
//    "validation": {"scans", "class_mix": [K], "mean_confidence", "withheld_share",
//                   "mean_set_size": {"0.05", "0.01"}, "singleton_share": {...}, "empty_share": {...}}}
// The scores and every "validation" figure but withheld_share are over the validation scans the out-of-distribution
// check answers (the population whose answers carry sets); withheld_share is the share it flags, absent for a model
// without the check. class_mix is the true classes' shares in class order; mean_confidence the mean top-class
// probability.
// What it is not: the method (infer/conformal.h) or the report of measured sets (eval/set_report.h).
#pragma once

#include <nlohmann/json.hpp>

#include "infer/inference.h"
#include "infer/ood_check.h"

namespace mriscan {

struct PredictionSetInputs {
  const InferenceOutput& validation;            // the run's validation split, as split by training
  const InferenceOutput* test = nullptr;        // Testing, when evaluated
  const InferenceOutput* test_dedup = nullptr;  // Testing without copies of Training, when known
  const OodCheck* ood = nullptr;                // null: every scan is answered
  float temperature = 1.0f;                     // as the model file stores it: what the Classifier applies
  int num_classes = 0;
};

struct PredictionSetFit {
  nlohmann::json record;   // the model file's "conformal" metadata
  nlohmann::json metrics;  // the run's metrics["prediction_sets"]: {"validation", "test", "test_dedup"} set reports
};

// Both null when the out-of-distribution check answers no validation scan (a tiny run): the model then has no sets.
PredictionSetFit fit_prediction_sets(const PredictionSetInputs& inputs);

}  // namespace mriscan
