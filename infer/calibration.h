// Temperature scaling (Guo et al. 2017, "On Calibration of Modern Neural Networks"): one scalar T > 0 that
// divides the logits before the softmax, fitted to minimise the negative log-likelihood on held-out data.
//
// What it is: the 1-D fit and the scaled softmax. Dividing every logit of a row by the same T > 0 keeps the
// argmax, so accuracy, the confusion matrix and (per-class) ROC-AUC rank order are unchanged; only the
// confidence moves. What it is not: vector/matrix scaling, or a change to the network itself.
#pragma once

#include <span>

#include "engine/tensor.h"

namespace mriscan {

struct TemperatureFit {
  double temperature = 1.0;
  double nll_before = 0.0;  // mean NLL at T = 1
  double nll_after = 0.0;   // mean NLL at the fitted T
  int iterations = 0;       // golden-section steps taken
  bool at_bound = false;    // true when the optimum hit the search bracket (the data wants T <= 0.01 or >= 100)
};

// Mean NLL of softmax(logits / T) against labels. logits: (N, K); labels: (N,) in [0, K). Computed in double
// with the max-subtracted log-sum-exp, so any finite logits work.
double temperature_nll(const Tensor& logits, std::span<const int> labels, double temperature);

// Finds T minimising temperature_nll by golden-section search on t = log T over [log 0.01, log 100].
// Why it is safe: with beta = 1/T, NLL(beta) = mean(-beta z_y + logsumexp(beta z)) is convex in beta (a
// log-sum-exp of linear functions minus a linear one), and t -> beta = exp(-t) is monotone, so NLL(t) has a
// single minimum (no spurious local ones), which is all golden-section search needs. Working in log T makes
// the bracket scale-free and keeps T > 0 by construction.
TemperatureFit fit_temperature(const Tensor& logits, std::span<const int> labels);

// softmax(logits / T) row by row: (N, K) -> probabilities (N, K).
Tensor apply_temperature(const Tensor& logits, double temperature);

}  // namespace mriscan
