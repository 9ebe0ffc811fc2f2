// Conv2d: dense KxK convolution with optional bias (MobileNetV2's stem, features.0.0), engine layouts.
//
//   forward:  y[n,oh,ow,co] = bias[co] + sum_{kh,kw,ci} x[n, oh*s+kh-p, ow*s+kw-p, ci] * w[kh,kw,ci,co]
//             OH = floor((H + 2p - KH) / s) + 1, likewise OW (conv_output_size in params.h)
//   dx:       dx[n, oh*s+kh-p, ow*s+kw-p, ci] += sum_co dy[n,oh,ow,co] * w[kh,kw,ci,co]
//   dw:       dw[kh,kw,ci,co] += sum_{n,oh,ow} x[n, oh*s+kh-p, ow*s+kw-p, ci] * dy[n,oh,ow,co]
//   dbias:    dbias[co] += sum_{n,oh,ow} dy[n,oh,ow,co]
// Parameters: "weight" (KH, KW, C_in, C_out) (torch keeps (C_out, C_in, KH, KW); models/weights_io converts),
// "bias" (C_out) when enabled. Initialised as torchvision does (layers/init.h).
// The tape closure calls `backward`, which computes only the gradients somebody needs: dx if x requires grad,
// dw / dbias if that parameter does (freezing = setting requires_grad = false on the Var).
// What it is not: grouped or dilated convolution; the layer must outlive the tape it recorded on.
#pragma once

#include <random>
#include <string>
#include <vector>

#include "engine/kernels/params.h"
#include "layers/layer.h"

namespace mriscan {

class Conv2d : public Layer {
 public:
  Conv2d(int in_channels, int out_channels, int kernel, int stride, int pad, bool bias, std::mt19937& rng);

  // x (N, H, W, C_in) -> y (N, OH, OW, C_out)
  Var forward(Tape& tape, const Var& x) override;
  void collect_parameters(const std::string& prefix, std::vector<NamedParameter>& out) override;

  const Var& weight() const { return weight_; }  // (KH, KW, C_in, C_out)
  const Var& bias() const { return bias_; }      // (C_out), or null without bias
  int kernel() const { return kernel_; }
  int stride() const { return stride_; }
  int pad() const { return pad_; }

 private:
  // The gradients of one recorded forward: reads y->grad, accumulates into x, weight and bias.
  void backward(const Var& x, const Var& y);
  // Kernel parameters for an input of this shape; throws with both shapes when x does not fit the layer.
  Conv2dParams params_for(const Shape& x_shape) const;

  int in_channels_, out_channels_, kernel_, stride_, pad_;
  Var weight_;  // (KH, KW, C_in, C_out)
  Var bias_;    // (C_out) or null
};

}  // namespace mriscan
