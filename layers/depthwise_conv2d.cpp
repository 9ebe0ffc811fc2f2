// DepthwiseConv2d: shape checks, the forward that records a tape node, and its backward (formulas in the header).
#include "layers/depthwise_conv2d.h"

#include <stdexcept>

#include "engine/kernels/dispatch.h"
#include "layers/init.h"

namespace mriscan {

DepthwiseConv2d::DepthwiseConv2d(int channels, int stride, bool bias, std::mt19937& rng, int kernel)
    : channels_(channels), stride_(stride), kernel_(kernel), pad_(kernel / 2) {
  if (channels < 1 || stride < 1 || kernel < 1)
    throw std::invalid_argument("DepthwiseConv2d: bad configuration (channels " + std::to_string(channels) +
                                ", stride " + std::to_string(stride) + ", kernel " + std::to_string(kernel) + ")");
  Tensor w(Shape{kernel, kernel, channels});
  // torch's weight is (C, 1, K, K): fan_out = C * K * K, as for a dense conv with C outputs.
  fill_kaiming_normal_fan_out(w, static_cast<int64_t>(channels) * kernel * kernel, rng);
  weight_ = make_var(w, /*requires_grad=*/true);
  if (bias) bias_ = make_var(Tensor(Shape{channels}), /*requires_grad=*/true);
}

DepthwiseParams DepthwiseConv2d::params_for(const Shape& s) const {
  if (s.rank() != 4 || s[3] != channels_)
    throw std::invalid_argument("DepthwiseConv2d: expected input (N, H, W, " + std::to_string(channels_) +
                                "), got " + s.str() + " (weight " + weight_->value.shape().str() + ")");
  DepthwiseParams p;
  p.batch = static_cast<int>(s[0]);
  p.in_h = static_cast<int>(s[1]);
  p.in_w = static_cast<int>(s[2]);
  p.channels = channels_;
  p.kernel = kernel_;
  p.stride = stride_;
  p.pad = pad_;
  p.out_h = conv_output_size(p.in_h, kernel_, stride_, pad_);
  p.out_w = conv_output_size(p.in_w, kernel_, stride_, pad_);
  if (p.in_h + 2 * pad_ < kernel_ || p.in_w + 2 * pad_ < kernel_)
    throw std::invalid_argument("DepthwiseConv2d: input " + s.str() + " is smaller than the " +
                                std::to_string(kernel_) + "x" + std::to_string(kernel_) + " kernel");
  return p;
}

Var DepthwiseConv2d::forward(Tape& tape, const Var& x) {
  const DepthwiseParams p = params_for(x->value.shape());
  // The kernels overwrite their output, so it needs no zero fill.
  Var y = make_var(Tensor::uninitialized(Shape{p.batch, p.out_h, p.out_w, p.channels}));  // (N, OH, OW, C)
  kernels().depthwise_forward(p, x->value.data(), weight_->value.data(), bias_ ? bias_->value.data() : nullptr,
                              y->value.data());
  std::vector<Var> inputs = {x, weight_};
  if (bias_) inputs.push_back(bias_);
  tape.record("depthwise_conv2d", std::move(inputs), y, [this, x, y] { backward(x, y); });
  return y;
}

void DepthwiseConv2d::backward(const Var& x, const Var& y) {
  DepthwiseParams p = params_for(x->value.shape());
  const float* dy = y->grad.data();  // (N, OH, OW, C)
  // dx: dy sent back through each channel's taps (the reference scatters, the fast kernel gathers per input
  // row: docs/depthwise_gradients.md); stored when it is the first gradient to reach x.
  if (x->requires_grad) {
    const Variable::GradTarget dx = x->grad_target();  // (N, H, W, C)
    p.accumulate_dx = !dx.first;
    kernels().depthwise_backward_input(p, dy, weight_->value.data(), dx.data);
  }
  // dw and dbias come out of one pass over dy; a frozen weight with a trainable bias needs only dy's column sums.
  const bool need_dbias = bias_ && bias_->requires_grad;
  float* dbias = need_dbias ? bias_->grad_buffer().data() : nullptr;  // (C) or null
  if (weight_->requires_grad)
    kernels().depthwise_backward_weight(p, x->value.data(), dy, weight_->grad_buffer().data(), dbias);
  else if (need_dbias)
    kernels().bias_backward_rows(static_cast<int64_t>(p.batch) * p.out_h * p.out_w, p.channels, dy, dbias);
}

void DepthwiseConv2d::collect_parameters(const std::string& prefix, std::vector<NamedParameter>& out) {
  out.push_back({prefix + "weight", weight_});
  if (bias_) out.push_back({prefix + "bias", bias_});
}

}  // namespace mriscan
