// Conv2d: shape checks, the forward that records a tape node, and its backward (formulas in the header).
#include "layers/conv2d.h"

#include <stdexcept>

#include "engine/kernels/dispatch.h"
#include "layers/init.h"

namespace mriscan {

Conv2d::Conv2d(int in_channels, int out_channels, int kernel, int stride, int pad, bool bias, std::mt19937& rng)
    : in_channels_(in_channels), out_channels_(out_channels), kernel_(kernel), stride_(stride), pad_(pad) {
  if (in_channels < 1 || out_channels < 1 || kernel < 1 || stride < 1 || pad < 0)
    throw std::invalid_argument("Conv2d: bad configuration (in " + std::to_string(in_channels) + ", out " +
                                std::to_string(out_channels) + ", kernel " + std::to_string(kernel) + ", stride " +
                                std::to_string(stride) + ", pad " + std::to_string(pad) + ")");
  Tensor w(Shape{kernel, kernel, in_channels, out_channels});
  fill_kaiming_normal_fan_out(w, static_cast<int64_t>(out_channels) * kernel * kernel, rng);
  weight_ = make_var(w, /*requires_grad=*/true);
  if (bias) bias_ = make_var(Tensor(Shape{out_channels}), /*requires_grad=*/true);
}

Conv2dParams Conv2d::params_for(const Shape& s) const {
  if (s.rank() != 4 || s[3] != in_channels_)
    throw std::invalid_argument("Conv2d: expected input (N, H, W, " + std::to_string(in_channels_) + "), got " +
                                s.str() + " (weight " + weight_->value.shape().str() + ")");
  Conv2dParams p;
  p.batch = static_cast<int>(s[0]);
  p.in_h = static_cast<int>(s[1]);
  p.in_w = static_cast<int>(s[2]);
  p.in_c = in_channels_;
  p.out_c = out_channels_;
  p.kernel_h = p.kernel_w = kernel_;
  p.stride = stride_;
  p.pad = pad_;
  p.out_h = conv_output_size(p.in_h, kernel_, stride_, pad_);
  p.out_w = conv_output_size(p.in_w, kernel_, stride_, pad_);
  if (p.in_h + 2 * pad_ < kernel_ || p.in_w + 2 * pad_ < kernel_)
    throw std::invalid_argument("Conv2d: input " + s.str() + " is smaller than the " + std::to_string(kernel_) + "x" +
                                std::to_string(kernel_) + " kernel with pad " + std::to_string(pad_));
  return p;
}

Var Conv2d::forward(Tape& tape, const Var& x) {
  const Conv2dParams p = params_for(x->value.shape());
  Var y = make_var(Tensor::uninitialized(Shape{p.batch, p.out_h, p.out_w, p.out_c}));  // (N, OH, OW, C_out)
  kernels().conv2d_forward(p, x->value.data(), weight_->value.data(), bias_ ? bias_->value.data() : nullptr,
                           y->value.data());
  std::vector<Var> inputs = {x, weight_};
  if (bias_) inputs.push_back(bias_);
  tape.record("conv2d", std::move(inputs), y, [this, x, y] { backward(x, y); });
  return y;
}

void Conv2d::backward(const Var& x, const Var& y) {
  const Conv2dParams p = params_for(x->value.shape());
  const float* dy = y->grad.data();  // (N, OH, OW, C_out)
  // dx: scatter dy back through the taps.
  if (x->requires_grad) kernels().conv2d_backward_input(p, dy, weight_->value.data(), x->grad_buffer().data());
  // dw and dbias come out of one pass over dy; a frozen weight with a trainable bias needs only dy's column sums.
  const bool need_dbias = bias_ && bias_->requires_grad;
  float* dbias = need_dbias ? bias_->grad_buffer().data() : nullptr;  // (C_out) or null
  if (weight_->requires_grad)
    kernels().conv2d_backward_weight(p, x->value.data(), dy, weight_->grad_buffer().data(), dbias);
  else if (need_dbias)
    kernels().bias_backward_rows(static_cast<int64_t>(p.batch) * p.out_h * p.out_w, p.out_c, dy, dbias);
}

void Conv2d::collect_parameters(const std::string& prefix, std::vector<NamedParameter>& out) {
  out.push_back({prefix + "weight", weight_});
  if (bias_) out.push_back({prefix + "bias", bias_});
}

}  // namespace mriscan
