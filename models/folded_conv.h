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
// Under bf16 precision a depthwise conv hands its output to the pointwise conv after it as bf16 (Bf16Activation).
// What it is not: a Layer: no tape, no gradients, no training-mode (batch statistics) batch norm.
#pragma once

#include <cstdint>
#include <memory>

#include "engine/kernels/params.h"
#include "engine/tensor.h"
#include "layers/batch_norm.h"
#include "layers/layer.h"

namespace mriscan {

// An activation (N, H, W, C) stored as bf16 (the bits engine/kernels/bf16.h gives): what a depthwise conv hands
// to the pointwise conv after it when the products run in bf16, which would round it to exactly these values.
struct Bf16Activation {
  Shape shape;                       // (N, H, W, C)
  std::shared_ptr<float[]> storage;  // numel bf16 values in (numel + 1) / 2 floats' bytes (the tensor allocator's)
  uint16_t* data() { return reinterpret_cast<uint16_t*>(storage.get()); }
  const uint16_t* data() const { return reinterpret_cast<const uint16_t*>(storage.get()); }
};

class FoldedConv {
 public:
  // conv: a Conv2d, DepthwiseConv2d or PointwiseConv2d, with or without bias; bn: the batch norm on its output.
  // Throws std::invalid_argument for any other layer or when bn's channel count is not the conv's C_out.
  FoldedConv(const Layer& conv, const BatchNorm2d& bn, Activation activation);

  // x (N, H, W, C_in) -> y (N, OH, OW, C_out), a new tensor; throws std::invalid_argument naming the shapes when x
  // does not fit.
  Tensor forward(const Tensor& x) const;
  Shape output_shape(const Shape& x) const;  // (N, OH, OW, C_out) for an input x (N, H, W, C_in); checks x
  // The bf16 hand-off (engine/kernels/dispatch.h): true when this is a depthwise conv, `next` the pointwise conv
  // reading its output with an even channel count, and the products run in bf16 (matmul_precision.h). Then
  // next.forward(forward_bf16(x)) is next.forward(forward(x)) to the bit, with half the bytes between them.
  bool hands_off_bf16_to(const FoldedConv& next) const;
  Bf16Activation forward_bf16(const Tensor& x) const;  // depthwise only
  Tensor forward(const Bf16Activation& x) const;       // pointwise only

  int in_channels() const { return in_channels_; }
  int out_channels() const { return out_channels_; }
  const Tensor& weight() const { return weight_; }  // w', the conv's engine layout
  const Tensor& bias() const { return bias_; }      // b' (C_out)

 private:
  enum class Kind { kDense, kDepthwise, kPointwise };
  void check_input(const Shape& s) const;                  // throws std::invalid_argument naming the shapes
  DepthwiseParams depthwise_params(const Shape& s) const;  // a depthwise conv's kernel params for input s; checks s

  Kind kind_ = Kind::kPointwise;
  int in_channels_ = 0, out_channels_ = 0;
  int kernel_ = 1, stride_ = 1, pad_ = 0;  // a 1x1 conv: kernel 1, stride 1, no padding
  Activation activation_;
  Tensor weight_;  // (KH, KW, C_in, C_out) dense, (K, K, C) depthwise, (C_in, C_out) pointwise
  Tensor bias_;    // (C_out)
};

}  // namespace mriscan
