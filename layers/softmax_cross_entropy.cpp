// Softmax cross-entropy: input checks, the forward that records a tape node, and its backward (formulas in the
// header and in engine/kernels/softmax_xent_ref.h).
#include "layers/softmax_cross_entropy.h"

#include <stdexcept>
#include <string>

#include "engine/kernels/dispatch.h"

namespace mriscan {
namespace {

SoftmaxCrossEntropyParams params_for(const Shape& s, const std::vector<int>& labels, float label_smoothing) {
  if (s.rank() != 2 || s[0] < 1 || s[1] < 1)
    throw std::invalid_argument("softmax_cross_entropy: expected logits (B, K) with B, K >= 1, got " + s.str());
  const SoftmaxCrossEntropyParams p{.batch = static_cast<int>(s[0]), .classes = static_cast<int>(s[1]),
                                    .label_smoothing = label_smoothing};
  if (static_cast<int64_t>(labels.size()) != p.batch)
    throw std::invalid_argument("softmax_cross_entropy: " + std::to_string(labels.size()) + " labels for logits " +
                                s.str());
  for (size_t i = 0; i < labels.size(); ++i)
    if (labels[i] < 0 || labels[i] >= p.classes)
      throw std::invalid_argument("softmax_cross_entropy: label " + std::to_string(labels[i]) + " at index " +
                                  std::to_string(i) + " is outside [0, " + std::to_string(p.classes) + ")");
  if (!(label_smoothing >= 0.0f && label_smoothing <= 1.0f))
    throw std::invalid_argument("softmax_cross_entropy: label_smoothing must be in [0, 1], got " +
                                std::to_string(label_smoothing));
  return p;
}

// dlogits (B, K) += dloss * (probs - target) / B.
void softmax_cross_entropy_backward(const SoftmaxCrossEntropyParams& p, const Var& logits, const Var& loss,
                                    const Tensor& probs, const std::vector<int>& labels) {
  if (!logits->requires_grad) return;
  kernels().softmax_xent_backward(p, loss->grad[0], probs.data(), labels.data(), logits->grad_buffer().data());
}

}  // namespace

Var softmax_cross_entropy(Tape& tape, const Var& logits, const std::vector<int>& labels, float label_smoothing,
                          Tensor* probs_out) {
  const SoftmaxCrossEntropyParams p = params_for(logits->value.shape(), labels, label_smoothing);
  Tensor probs = Tensor::uninitialized(logits->value.shape());  // (B, K), written by the kernel; saved for backward
  Var loss = make_var(Tensor(Shape{}));  // ()
  loss->value[0] = kernels().softmax_xent_forward(p, logits->value.data(), labels.data(), probs.data());
  if (probs_out) *probs_out = probs.clone();  // a copy: the caller may not change what backward reads
  tape.record("softmax_cross_entropy", {logits}, loss,
              [p, logits, loss, probs, labels] { softmax_cross_entropy_backward(p, logits, loss, probs, labels); });
  return loss;
}

}  // namespace mriscan
