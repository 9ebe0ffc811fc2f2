// Linear: shape checks, the GEMM forward that records a tape node, and its backward (formulas in the header).
#include "layers/linear.h"

#include <stdexcept>

#include "engine/kernels/dispatch.h"
#include "layers/init.h"

namespace mriscan {

Linear::Linear(int in_features, int out_features, std::mt19937& rng, bool bias)
    : in_features_(in_features), out_features_(out_features) {
  if (in_features < 1 || out_features < 1)
    throw std::invalid_argument("Linear: bad configuration (in " + std::to_string(in_features) + ", out " +
                                std::to_string(out_features) + ")");
  Tensor w(Shape{in_features, out_features});
  fill_normal(w, 0.01f, rng);
  weight_ = make_var(w, /*requires_grad=*/true);
  if (bias) bias_ = make_var(Tensor(Shape{out_features}), /*requires_grad=*/true);
}

Var Linear::forward(Tape& tape, const Var& x) {
  const Shape& s = x->value.shape();
  if (s.rank() != 2 || s[1] != in_features_)
    throw std::invalid_argument("Linear: expected input (N, " + std::to_string(in_features_) + "), got " + s.str() +
                                " (weight " + weight_->value.shape().str() + ")");
  const int rows = static_cast<int>(s[0]);
  Var y = make_var(Tensor::uninitialized(Shape{s[0], out_features_}));  // (N, out)
  // y(N, out) = x(N, in) . w(in, out)
  kernels().gemm({.m = rows, .n = out_features_, .k = in_features_}, x->value.data(), weight_->value.data(),
                 y->value.data());
  if (bias_) kernels().bias_add_rows(rows, out_features_, bias_->value.data(), y->value.data());
  std::vector<Var> inputs = {x, weight_};
  if (bias_) inputs.push_back(bias_);
  tape.record("linear", std::move(inputs), y, [this, x, y] { backward(x, y); });
  return y;
}

void Linear::backward(const Var& x, const Var& y) {
  const int rows = static_cast<int>(x->value.dim(0));  // N
  const float* dy = y->grad.data();                     // (N, out)
  // dx(N, in) += dy(N, out) . w^T, with w stored (in, out).
  if (x->requires_grad)
    kernels().gemm({.m = rows, .n = in_features_, .k = out_features_, .trans_b = true, .accumulate = true}, dy,
                   weight_->value.data(), x->grad_buffer().data());
  // dw(in, out) += x^T . dy, with x stored (N, in).
  if (weight_->requires_grad)
    kernels().gemm({.m = in_features_, .n = out_features_, .k = rows, .trans_a = true, .accumulate = true},
                   x->value.data(), dy, weight_->grad_buffer().data());
  // dbias(out) += column sums of dy.
  if (bias_ && bias_->requires_grad) kernels().bias_backward_rows(rows, out_features_, dy, bias_->grad_buffer().data());
}

void Linear::collect_parameters(const std::string& prefix, std::vector<NamedParameter>& out) {
  out.push_back({prefix + "weight", weight_});
  if (bias_) out.push_back({prefix + "bias", bias_});
}

}  // namespace mriscan
