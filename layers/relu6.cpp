// ReLU6: the forward that records a tape node and its backward (formulas in the header).
#include "layers/relu6.h"

#include "engine/kernels/dispatch.h"

namespace mriscan {

Var ReLU6::forward(Tape& tape, const Var& x) {
  Var y = make_var(Tensor::uninitialized(x->value.shape()));  // same shape as x
  kernels().relu6_forward(x->value.numel(), x->value.data(), y->value.data());
  tape.record("relu6", {x}, y, [this, x, y] { backward(x, y); });
  return y;
}

void ReLU6::backward(const Var& x, const Var& y) {
  // The mask 0 < x < 6 is read from the saved input, so nothing else needs saving.
  if (x->requires_grad)
    kernels().relu6_backward(x->value.numel(), x->value.data(), y->grad.data(), x->grad_buffer().data());
}

}  // namespace mriscan
