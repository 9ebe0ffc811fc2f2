// PointwiseConv2d: shape checks, the GEMM forward that records a tape node, and its backward (formulas in the
// header).
#include "layers/pointwise_conv2d.h"

#include <stdexcept>

#include "engine/kernels/dispatch.h"
#include "layers/init.h"

namespace mriscan {

PointwiseConv2d::PointwiseConv2d(int in_channels, int out_channels, bool bias, std::mt19937& rng)
    : in_channels_(in_channels), out_channels_(out_channels) {
  if (in_channels < 1 || out_channels < 1)
    throw std::invalid_argument("PointwiseConv2d: bad configuration (in " + std::to_string(in_channels) + ", out " +
                                std::to_string(out_channels) + ")");
  Tensor w(Shape{in_channels, out_channels});
  fill_kaiming_normal_fan_out(w, out_channels, rng);  // fan_out = C_out * 1 * 1
  weight_ = make_var(w, /*requires_grad=*/true);
  if (bias) bias_ = make_var(Tensor(Shape{out_channels}), /*requires_grad=*/true);
}

void PointwiseConv2d::check_input(const Shape& s) const {
  if (s.rank() != 4 || s[3] != in_channels_)
    throw std::invalid_argument("PointwiseConv2d: expected input (N, H, W, " + std::to_string(in_channels_) +
                                "), got " + s.str() + " (weight " + weight_->value.shape().str() + ")");
}

Var PointwiseConv2d::forward(Tape& tape, const Var& x) {
  const Shape& s = x->value.shape();
  check_input(s);
  const int rows = static_cast<int>(s[0] * s[1] * s[2]);  // M = N*H*W
  // (N, H, W, C_out) = (M, C_out), overwritten by the GEMM
  Var y = make_var(Tensor::uninitialized(Shape{s[0], s[1], s[2], out_channels_}));
  // y(M, C_out) = x(M, C_in) . w(C_in, C_out)
  kernels().gemm({.m = rows, .n = out_channels_, .k = in_channels_}, x->value.data(), weight_->value.data(),
                 y->value.data());
  if (bias_) kernels().bias_add_rows(rows, out_channels_, bias_->value.data(), y->value.data());
  std::vector<Var> inputs = {x, weight_};
  if (bias_) inputs.push_back(bias_);
  tape.record("pointwise_conv2d", std::move(inputs), y, [this, x, y] { backward(x, y); });
  return y;
}

void PointwiseConv2d::backward(const Var& x, const Var& y) {
  const Shape& s = x->value.shape();
  const int rows = static_cast<int>(s[0] * s[1] * s[2]);  // M = N*H*W
  const float* dy = y->grad.data();                        // (M, C_out)
  // dx(M, C_in) += dy(M, C_out) . w^T, with w stored (C_in, C_out); stored, not added, where it is the first
  // gradient to reach x.
  if (x->requires_grad) {
    const Variable::GradTarget dx = x->grad_target();  // (M, C_in)
    kernels().gemm({.m = rows, .n = in_channels_, .k = out_channels_, .trans_b = true, .accumulate = !dx.first}, dy,
                   weight_->value.data(), dx.data);
  }
  // dw(C_in, C_out) += x^T . dy, with x stored (M, C_in).
  if (weight_->requires_grad)
    kernels().gemm({.m = in_channels_, .n = out_channels_, .k = rows, .trans_a = true, .accumulate = true},
                   x->value.data(), dy, weight_->grad_buffer().data());
  // dbias(C_out) += column sums of dy.
  if (bias_ && bias_->requires_grad) kernels().bias_backward_rows(rows, out_channels_, dy, bias_->grad_buffer().data());
}

void PointwiseConv2d::collect_parameters(const std::string& prefix, std::vector<NamedParameter>& out) {
  out.push_back({prefix + "weight", weight_});
  if (bias_) out.push_back({prefix + "bias", bias_});
}

}  // namespace mriscan
