// Residual add: the forward that records a tape node, and its backward (formulas in the header).
#include "layers/add.h"

#include <stdexcept>

#include "engine/kernels/dispatch.h"

namespace mriscan {
namespace {

// da += dy and db += dy, skipping an input that needs no gradient. axpy with alpha = 1 is the accumulate.
void add_backward(const Var& a, const Var& b, const Var& y) {
  const int64_t n = y->value.numel();
  const float* dy = y->grad.data();  // same shape as a, b, y
  if (a->requires_grad) kernels().axpy(n, 1.0f, dy, a->grad_buffer().data());
  if (b->requires_grad) kernels().axpy(n, 1.0f, dy, b->grad_buffer().data());
}

}  // namespace

Var add(Tape& tape, const Var& a, const Var& b) {
  if (a->value.shape() != b->value.shape())
    throw std::invalid_argument("add: shapes must match, got a " + a->value.shape().str() + " and b " +
                                b->value.shape().str());
  Var y = make_var(Tensor::uninitialized(a->value.shape()));  // same shape as a and b; overwritten
  kernels().add_forward(y->value.numel(), a->value.data(), b->value.data(), y->value.data());
  tape.record("add", {a, b}, y, [a, b, y] { add_backward(a, b, y); });
  return y;
}

}  // namespace mriscan
