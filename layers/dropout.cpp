// Dropout: the mask draw, the forward that records a tape node, and its backward (formulas in the header).
#include "layers/dropout.h"

#include <cmath>
#include <stdexcept>
#include <string>

#include "engine/kernels/dispatch.h"

namespace mriscan {

Dropout::Dropout(float p, uint32_t seed) : p_(p), rng_(seed) {
  if (!(p >= 0.0f && p < 1.0f))
    throw std::invalid_argument("Dropout: drop probability p must be in [0, 1), got " + std::to_string(p));
}

std::vector<uint8_t> Dropout::draw_mask(int64_t n) {
  // mt19937 yields uniform 32-bit words; a word below (1 - p) * 2^32 keeps its element, so P(keep) = 1 - p up to
  // 2^-32 rounding.
  const uint64_t keep_below = static_cast<uint64_t>(std::llround((1.0 - static_cast<double>(p_)) * 4294967296.0));
  std::vector<uint8_t> keep(static_cast<size_t>(n));  // (n)
  for (uint8_t& k : keep) k = static_cast<uint64_t>(rng_()) < keep_below ? 1 : 0;
  return keep;
}

Var Dropout::forward(Tape& tape, const Var& x) {
  if (!training() || p_ == 0.0f) return x;  // identity: nothing to record
  const int64_t n = x->value.numel();
  std::vector<uint8_t> keep = draw_mask(n);  // (n), same layout as x
  Var y = make_var(Tensor::uninitialized(x->value.shape()));  // same shape as x
  kernels().dropout_forward(n, p_, keep.data(), x->value.data(), y->value.data());
  tape.record("dropout", {x}, y, [this, x, y, keep = std::move(keep)] { backward(x, y, keep); });
  return y;
}

void Dropout::backward(const Var& x, const Var& y, const std::vector<uint8_t>& keep) {
  if (x->requires_grad)
    kernels().dropout_backward(x->value.numel(), p_, keep.data(), y->grad.data(), x->grad_buffer().data());
}

}  // namespace mriscan
