// GlobalAvgPool: shape checks, the forward that records a tape node, and its backward (formulas in the header).
#include "layers/global_avg_pool.h"

#include <stdexcept>

#include "engine/kernels/dispatch.h"

namespace mriscan {

PoolParams GlobalAvgPool::params_for(const Shape& s) {
  if (s.rank() != 4 || s.numel() == 0)
    throw std::invalid_argument("GlobalAvgPool: expected a non-empty input (N, H, W, C), got " + s.str());
  return {.batch = static_cast<int>(s[0]), .h = static_cast<int>(s[1]), .w = static_cast<int>(s[2]),
          .channels = static_cast<int>(s[3])};
}

Var GlobalAvgPool::forward(Tape& tape, const Var& x) {
  const PoolParams p = params_for(x->value.shape());
  Var y = make_var(Tensor::uninitialized(Shape{p.batch, p.channels}));  // (N, C)
  kernels().global_avg_pool_forward(p, x->value.data(), y->value.data());
  tape.record("global_avg_pool", {x}, y, [this, x, y] { backward(x, y); });
  return y;
}

void GlobalAvgPool::backward(const Var& x, const Var& y) {
  if (!x->requires_grad) return;
  // dx (N, H, W, C) += dy (N, C) / (H*W), spread evenly over the positions.
  kernels().global_avg_pool_backward(params_for(x->value.shape()), y->grad.data(), x->grad_buffer().data());
}

}  // namespace mriscan
