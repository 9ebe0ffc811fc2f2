// Classification metrics from predicted probabilities: accuracy with a confidence interval, confusion matrix,
// per-class precision/recall/F1, one-vs-rest ROC-AUC, log loss and expected calibration error.
//
// What it is: plain, exact formulas over `probs` (N, K) and integer labels, computed in double, plus a JSON
// form and a terminal table. What it is not: a plotting module (eval/plot.h), a calibration method
// (infer/calibration.h) or anything that runs the model; the caller brings the probabilities.
//
// Conventions (sklearn's, so numbers can be cross-checked):
//   * the prediction is the argmax of each row (first maximum on ties);
//   * confusion[t * K + p] counts samples of true class t predicted as p (rows = true, columns = predicted);
//   * precision of a class that was never predicted is 0, recall of a class with no samples is 0, and F1 is 0
//     when precision + recall = 0 (sklearn's zero_division=0);
//   * ROC-AUC of a class is undefined (NaN, null in JSON) when the class has no positives or no negatives;
//     the macro AUC averages the defined ones.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "engine/tensor.h"

namespace mriscan {

struct ClassScores {
  double precision = 0.0;
  double recall = 0.0;
  double f1 = 0.0;
  int64_t support = 0;  // number of samples whose true label is this class
  double roc_auc = 0.0;  // one-vs-rest; NaN when undefined
};

struct AveragedScores {
  double precision = 0.0;
  double recall = 0.0;
  double f1 = 0.0;
};

struct Metrics {
  int num_classes = 0;
  int64_t num_samples = 0;
  double accuracy = 0.0;
  double accuracy_ci_low = 0.0;   // 95% Wilson score interval for the accuracy
  double accuracy_ci_high = 0.0;
  std::vector<int64_t> confusion;  // (K, K) row-major, rows = true class, columns = predicted class
  std::vector<ClassScores> per_class;  // (K,)
  AveragedScores macro;     // unweighted mean over classes
  AveragedScores weighted;  // mean weighted by support
  double macro_roc_auc = 0.0;  // mean of the defined per-class AUCs
  double log_loss = 0.0;       // mean -log(max(p_true, 1e-12)), natural log
  double ece = 0.0;            // expected calibration error, 15 equal-width bins on the max probability
};

// Everything above in one pass over the data. probs: (N, K), rows need not sum to exactly 1. labels: (N,),
// each in [0, K). Throws std::invalid_argument naming the offending input on shape or label errors.
Metrics compute_metrics(const Tensor& probs, std::span<const int> labels);

// --- The individual formulas, exposed so tests (and curious readers) can check each one. ---

// argmax of each row of probs (N, K) -> (N,).
std::vector<int> argmax_rows(std::span<const float> probs, int num_classes);

// Wilson score interval for a binomial proportion successes / trials at normal quantile z (1.96 for 95%).
// Unlike the textbook p +- z sqrt(p(1-p)/n), it never leaves [0, 1] and keeps a sensible width at p near 0
// or 1, which matters for accuracies close to 100% on a few hundred test images.
std::pair<double, double> wilson_interval(int64_t successes, int64_t trials, double z = 1.959963984540054);

// Exact area under the ROC curve of `scores` (N,) for the binary labels `is_positive` (N,), through the
// Mann-Whitney rank statistic with midranks for ties (a tied positive/negative pair counts 1/2).
// Returns NaN when there are no positives or no negatives.
double roc_auc(std::span<const float> scores, std::span<const uint8_t> is_positive);

// Mean negative log-likelihood of the true class, probabilities clipped below at 1e-12 so a confident
// mistake costs at most -log(1e-12) ~ 27.6 instead of infinity.
double log_loss(std::span<const float> probs, std::span<const int> labels, int num_classes);

// Expected calibration error: bin samples by confidence c = max_k p_k into `num_bins` equal-width bins
// [b/B, (b+1)/B) (c = 1 goes into the last bin), then sum over bins |accuracy_b - mean_confidence_b| * n_b / N.
double expected_calibration_error(std::span<const float> probs, std::span<const int> labels, int num_classes,
                                  int num_bins = 15);

// --- Presentation. ---

// {"num_samples", "accuracy", "accuracy_ci95": [lo, hi], "confusion_matrix": [[...]], "classes": {name: {...}},
//  "macro_avg", "weighted_avg", "macro_roc_auc", "log_loss", "ece", "class_names"}. NaN becomes null.
nlohmann::json to_json(const Metrics& metrics, const std::vector<std::string>& class_names);

// A fixed-width report for terminals: per-class table, averages, scalar metrics and the confusion matrix.
std::string format_table(const Metrics& metrics, const std::vector<std::string>& class_names);

}  // namespace mriscan
