// Softmax cross-entropy loss over a batch of logits with integer labels and optional label smoothing, averaged
// over the batch (PyTorch's F.cross_entropy(logits, labels, label_smoothing=s), reduction "mean").
//
//   p        = softmax(z) per row;   t = (1 - s) * one_hot(label) + s / K
//   loss     = (1 / B) sum_b -sum_k t[b,k] * log p[b,k]      (log p from the shifted log-sum-exp: no overflow)
//   backward: dlogits += dloss * (p - t) / B
// The math lives in engine/kernels/softmax_xent_ref.h. Returns a scalar Var (shape ()), recorded on the tape as
// "softmax_cross_entropy"; `probs_out`, when given, receives the softmax probabilities (B, K).
// Errors (std::invalid_argument, with the offending value): logits not (B, K), labels.size() != B, a label
// outside [0, K), smoothing outside [0, 1]. What it is not: a Layer (no state), or a loss with class weights.
#pragma once

#include <vector>

#include "engine/tape.h"

namespace mriscan {

// logits (B, K), labels (B) in [0, K) -> mean loss, shape ().
Var softmax_cross_entropy(Tape& tape, const Var& logits, const std::vector<int>& labels, float label_smoothing = 0.0f,
                          Tensor* probs_out = nullptr);

}  // namespace mriscan
