// Reference softmax cross-entropy over a batch of logit rows, with optional label smoothing, averaged over the
// batch (PyTorch's F.cross_entropy with reduction="mean"). Plain loops, templated on the scalar type so the
// gradient tests can run them in double.
//
// For row b with logits z (K), label y_b and smoothing s:
//   p_k      = exp(z_k - max z) / sum_j exp(z_j - max z)          softmax, shifted by the row max (no overflow)
//   t_k      = (1 - s) * [k == y_b] + s / K                          smoothed one-hot target (sums to 1)
//   loss_b   = -sum_k t_k * log p_k,   log p_k = (z_k - max z) - log sum_j exp(z_j - max z)
//   loss     = (1 / B) sum_b loss_b
// Backward: since sum_k t_k = 1, d loss_b / d z_k = p_k - t_k, so
//   dlogits[b,k] += dloss * (p_k - t_k) / B
// Contract: forward overwrites probs (B, K) and returns the mean loss; backward accumulates into dlogits (B, K).
// Labels must lie in [0, K): the layer (layers/softmax_cross_entropy.cpp) checks them with a clear error, the
// kernel does not. What it is not: fast; it has no fast twin (it is tiny: B x K with K = 4 here), so both kernel
// tables point here.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>

#include "engine/kernels/params.h"

namespace mriscan {

// Smoothed target probability of class k for a row whose label is `label`.
template <typename T>
T smoothed_target(const SoftmaxCrossEntropyParams& p, int k, int label) {
  const T s = static_cast<T>(p.label_smoothing);
  return (k == label ? T(1) - s : T(0)) + s / static_cast<T>(p.classes);
}

// logits (B, K), labels (B) -> probs (B, K); returns the mean loss over the B rows.
template <typename T>
T softmax_xent_forward_ref(const SoftmaxCrossEntropyParams& p, const T* logits, const int* labels, T* probs) {
  const int K = p.classes;
  T total = T(0);
  for (int b = 0; b < p.batch; ++b) {
    const T* z = logits + static_cast<int64_t>(b) * K;  // (K)
    T* prob = probs + static_cast<int64_t>(b) * K;      // (K)
    const T z_max = *std::max_element(z, z + K);
    T sum_exp = T(0);
    for (int k = 0; k < K; ++k) {
      prob[k] = std::exp(z[k] - z_max);
      sum_exp += prob[k];
    }
    const T log_sum_exp = std::log(sum_exp);  // of the shifted logits
    T row_loss = T(0);
    for (int k = 0; k < K; ++k) {
      prob[k] /= sum_exp;
      const T log_prob = (z[k] - z_max) - log_sum_exp;  // exact even where prob[k] underflows to 0
      row_loss -= smoothed_target<T>(p, k, labels[b]) * log_prob;
    }
    total += row_loss;
  }
  return total / static_cast<T>(p.batch);
}

// dlogits (B, K) += dloss * (probs - target) / B, with probs from the forward.
template <typename T>
void softmax_xent_backward_ref(const SoftmaxCrossEntropyParams& p, T dloss, const T* probs, const int* labels,
                               T* dlogits) {
  const int K = p.classes;
  const T per_row = dloss / static_cast<T>(p.batch);  // the mean's 1/B
  for (int b = 0; b < p.batch; ++b)
    for (int k = 0; k < K; ++k) {
      const int64_t i = static_cast<int64_t>(b) * K + k;
      dlogits[i] += per_row * (probs[i] - smoothed_target<T>(p, k, labels[b]));
    }
}

}  // namespace mriscan
