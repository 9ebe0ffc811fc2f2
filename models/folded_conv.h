// FoldedConv: one convolution with the eval-mode batch norm after it folded into its weights and bias, and its
// activation fused into the kernel's epilogue. The building block of models/folded_mobilenet_v2.h.
//
//   BN(conv(x; w) + b) = gamma * (conv(x; w) + b - mean) / sqrt(var + eps) + beta       (running statistics)
//   scale[co] = gamma[co] / sqrt(var[co] + eps)
//   w'[.., co] = w[.., co] * scale[co]          (the output channel is the last axis of every engine conv layout)
//   b'[co]     = beta[co] + (b[co] - mean[co]) * scale[co]                 (b = 0 when the conv has no bias)
//   y = act(conv(x; w') + b')   in one kernel call: conv2d_forward / depthwise_forward with p.activation, or
//                               gemm_bias_act for the 1x1 conv (engine/kernels/dispatch.h)
// scale and b' are computed in double, then rounded once to float.
//
// What it is: an immutable copy of the folded weights, taken from a Conv2d, DepthwiseConv2d or PointwiseConv2d
// and the BatchNorm2d that follows it; later changes to those layers do not reach it.
// What it is not: a Layer: no tape, no gradients, no training-mode (batch statistics) batch norm.
#pragma once

#include "engine/kernels/params.h"
#include "engine/tensor.h"
#include "layers/batch_norm.h"
#include "layers/layer.h"

namespace mriscan {

class FoldedConv {
 public:
  // conv: a Conv2d, DepthwiseConv2d or PointwiseConv2d, with or without bias; bn: the batch norm on its output.
  // Throws std::invalid_argument for any other layer or when bn's channel count is not the conv's C_out.
  FoldedConv(const Layer& conv, const BatchNorm2d& bn, Activation activation);

  // x (N, H, W, C_in) -> y (N, OH, OW, C_out), a new tensor; throws std::invalid_argument naming the shapes when x
  // does not fit.
  Tensor forward(const Tensor& x) const;

  int in_channels() const { return in_channels_; }
  int out_channels() const { return out_channels_; }
  const Tensor& weight() const { return weight_; }  // w', the conv's engine layout
  const Tensor& bias() const { return bias_; }      // b' (C_out)

 private:
  enum class Kind { kDense, kDepthwise, kPointwise };

  Kind kind_ = Kind::kPointwise;
  int in_channels_ = 0, out_channels_ = 0;
  int kernel_ = 1, stride_ = 1, pad_ = 0;  // a 1x1 conv: kernel 1, stride 1, no padding
  Activation activation_;
  Tensor weight_;  // (KH, KW, C_in, C_out) dense, (K, K, C) depthwise, (C_in, C_out) pointwise
  Tensor bias_;    // (C_out)
};

}  // namespace mriscan
