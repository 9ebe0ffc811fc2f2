// DepthwiseConv2d: one KxK filter per channel (torch Conv2d with groups == channels), "same" padding K/2, engine
// layouts. MobileNetV2 uses it with K = 3 and stride 1 or 2 inside every inverted-residual block.
//
//   forward:  y[n,oh,ow,c] = bias[c] + sum_{kh,kw} x[n, oh*s+kh-p, ow*s+kw-p, c] * w[kh,kw,c]
//             OH = floor((H + 2p - K) / s) + 1, likewise OW (conv_output_size in params.h)
//   dx:       dx[n, oh*s+kh-p, ow*s+kw-p, c] += dy[n,oh,ow,c] * w[kh,kw,c]
//   dw:       dw[kh,kw,c] += sum_{n,oh,ow} x[n, oh*s+kh-p, ow*s+kw-p, c] * dy[n,oh,ow,c]
//   dbias:    dbias[c] += sum_{n,oh,ow} dy[n,oh,ow,c]
// Parameters: "weight" (K, K, C) (torch keeps (C, 1, K, K); models/weights_io converts), "bias" (C) when enabled.
// Initialised as torchvision does (layers/init.h). The tape closure calls `backward`, which computes dx only if x
// requires grad and dw / dbias only if that parameter does.
// What it is not: a channel-multiplier (C_out = m * C_in) depthwise conv; the layer must outlive the tape.
#pragma once

#include <random>
#include <string>
#include <vector>

#include "engine/kernels/params.h"
#include "layers/layer.h"

namespace mriscan {

class DepthwiseConv2d : public Layer {
 public:
  // pad = kernel / 2, so stride 1 keeps H and W (for odd K) and stride 2 gives ceil(H / 2).
  DepthwiseConv2d(int channels, int stride, bool bias, std::mt19937& rng, int kernel = 3);

  // x (N, H, W, C) -> y (N, OH, OW, C)
  Var forward(Tape& tape, const Var& x) override;
  void collect_parameters(const std::string& prefix, std::vector<NamedParameter>& out) override;

  const Var& weight() const { return weight_; }  // (K, K, C)
  const Var& bias() const { return bias_; }      // (C), or null without bias
  int kernel() const { return kernel_; }
  int stride() const { return stride_; }
  int pad() const { return pad_; }

 private:
  // The gradients of one recorded forward: reads y->grad, accumulates into x, weight and bias.
  void backward(const Var& x, const Var& y);
  // Kernel parameters for an input of this shape; throws with both shapes when x does not fit the layer.
  DepthwiseParams params_for(const Shape& x_shape) const;

  int channels_, stride_, kernel_, pad_;
  Var weight_;  // (K, K, C)
  Var bias_;    // (C) or null
};

}  // namespace mriscan
