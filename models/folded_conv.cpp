// FoldedConv: the fold of BN into the conv's weights and bias, and the one fused kernel call per forward (formulas
// in the header).
#include "models/folded_conv.h"

#include <cmath>
#include <stdexcept>
#include <string>
#include <vector>

#include "engine/kernels/dispatch.h"
#include "engine/kernels/matmul_precision.h"
#include "layers/conv2d.h"
#include "layers/depthwise_conv2d.h"
#include "layers/pointwise_conv2d.h"

namespace mriscan {

FoldedConv::FoldedConv(const Layer& conv, const BatchNorm2d& bn, Activation activation) : activation_(activation) {
  const Var* weight = nullptr;  // the conv's engine-layout weight; its last axis is C_out
  const Var* bias = nullptr;    // (C_out), may hold a null Var
  if (const auto* dense = dynamic_cast<const Conv2d*>(&conv)) {
    kind_ = Kind::kDense;
    weight = &dense->weight(), bias = &dense->bias();  // (KH, KW, C_in, C_out)
    in_channels_ = static_cast<int>(dense->weight()->value.dim(2));
    kernel_ = dense->kernel(), stride_ = dense->stride(), pad_ = dense->pad();
  } else if (const auto* depthwise = dynamic_cast<const DepthwiseConv2d*>(&conv)) {
    kind_ = Kind::kDepthwise;
    weight = &depthwise->weight(), bias = &depthwise->bias();  // (K, K, C)
    in_channels_ = static_cast<int>(depthwise->weight()->value.dim(2));
    kernel_ = depthwise->kernel(), stride_ = depthwise->stride(), pad_ = depthwise->pad();
  } else if (const auto* pointwise = dynamic_cast<const PointwiseConv2d*>(&conv)) {
    kind_ = Kind::kPointwise;
    weight = &pointwise->weight(), bias = &pointwise->bias();  // (C_in, C_out)
    in_channels_ = static_cast<int>(pointwise->weight()->value.dim(0));
  } else {
    throw std::invalid_argument("FoldedConv: expected a Conv2d, DepthwiseConv2d or PointwiseConv2d");
  }
  const Tensor& w = (*weight)->value;
  out_channels_ = static_cast<int>(w.dim(-1));
  if (bn.channels() != out_channels_)
    throw std::invalid_argument("FoldedConv: batch norm over " + std::to_string(bn.channels()) +
                                " channels after a conv with weight " + w.shape().str());

  // scale[co] = gamma / sqrt(var + eps);  b'[co] = beta + (b - mean) * scale
  const int C = out_channels_;
  std::vector<double> scale(C);  // (C_out)
  bias_ = Tensor(Shape{C});
  for (int co = 0; co < C; ++co) {
    scale[co] = bn.weight()->value[co] / std::sqrt(static_cast<double>(bn.running_var()[co]) + bn.eps());
    const double conv_bias = *bias ? (*bias)->value[co] : 0.0;
    bias_[co] = static_cast<float>(bn.bias()->value[co] + (conv_bias - bn.running_mean()[co]) * scale[co]);
  }
  // w'[.., co] = w[.., co] * scale[co]: element i of the weight belongs to output channel i % C_out.
  weight_ = Tensor(w.shape());
  for (int64_t i = 0; i < w.numel(); ++i) weight_[i] = static_cast<float>(w[i] * scale[i % C]);
}

void FoldedConv::check_input(const Shape& s) const {
  if (s.rank() != 4 || s[3] != in_channels_ || s[1] + 2 * pad_ < kernel_ || s[2] + 2 * pad_ < kernel_)
    throw std::invalid_argument("FoldedConv: expected input (N, H, W, " + std::to_string(in_channels_) +
                                ") covering the " + std::to_string(kernel_) + "x" + std::to_string(kernel_) +
                                " kernel, got " + s.str() + " (weight " + weight_.shape().str() + ")");
}

DepthwiseParams FoldedConv::depthwise_params(const Shape& s) const {
  const Shape out = output_shape(s);  // checks s
  return {.batch = static_cast<int>(s[0]), .in_h = static_cast<int>(s[1]), .in_w = static_cast<int>(s[2]),
          .channels = in_channels_, .out_h = static_cast<int>(out[1]), .out_w = static_cast<int>(out[2]),
          .kernel = kernel_, .stride = stride_, .pad = pad_, .activation = activation_};
}

bool FoldedConv::hands_off_bf16_to(const FoldedConv& next) const {
  return kind_ == Kind::kDepthwise && next.kind_ == Kind::kPointwise && next.in_channels_ == out_channels_ &&
         out_channels_ % 2 == 0 && matmul_precision() == MatmulPrecision::kBFloat16;
}

Bf16Activation FoldedConv::forward_bf16(const Tensor& x) const {
  if (kind_ != Kind::kDepthwise) throw std::logic_error("FoldedConv::forward_bf16: not a depthwise conv");
  const DepthwiseParams p = depthwise_params(x.shape());  // checks x
  const Shape shape{p.batch, p.out_h, p.out_w, out_channels_};
  Bf16Activation y{.shape = shape, .storage = allocate_aligned((shape.numel() + 1) / 2)};  // overwritten
  kernels().depthwise_forward_bf16(p, x.data(), weight_.data(), bias_.data(), y.data());
  return y;
}

Tensor FoldedConv::forward(const Bf16Activation& x) const {
  if (kind_ != Kind::kPointwise || in_channels_ % 2 != 0)
    throw std::logic_error("FoldedConv::forward(Bf16Activation): not a pointwise conv with an even input width");
  check_input(x.shape);
  const Shape& s = x.shape;
  Tensor y = Tensor::uninitialized(Shape{s[0], s[1], s[2], out_channels_});  // (N, H, W, C_out), overwritten
  kernels().gemm_bias_act_bf16_a({.m = static_cast<int>(s[0] * s[1] * s[2]), .n = out_channels_, .k = in_channels_},
                                 x.data(), weight_.data(), bias_.data(), activation_, y.data());
  return y;
}

Shape FoldedConv::output_shape(const Shape& x) const {
  check_input(x);
  return Shape{x[0], conv_output_size(static_cast<int>(x[1]), kernel_, stride_, pad_),
               conv_output_size(static_cast<int>(x[2]), kernel_, stride_, pad_), out_channels_};
}

Tensor FoldedConv::forward(const Tensor& x) const {
  const Shape& s = x.shape();
  Tensor y = Tensor::uninitialized(output_shape(s));  // (N, OH, OW, C_out), overwritten
  const int batch = static_cast<int>(s[0]), in_h = static_cast<int>(s[1]), in_w = static_cast<int>(s[2]);
  const int out_h = static_cast<int>(y.dim(1)), out_w = static_cast<int>(y.dim(2));
  switch (kind_) {
    case Kind::kDense: {
      const Conv2dParams p = {.batch = batch, .in_h = in_h, .in_w = in_w, .in_c = in_channels_, .out_h = out_h,
                              .out_w = out_w, .out_c = out_channels_, .kernel_h = kernel_, .kernel_w = kernel_,
                              .stride = stride_, .pad = pad_, .activation = activation_};
      kernels().conv2d_forward(p, x.data(), weight_.data(), bias_.data(), y.data());
      break;
    }
    case Kind::kDepthwise:
      kernels().depthwise_forward(depthwise_params(s), x.data(), weight_.data(), bias_.data(), y.data());
      break;
    case Kind::kPointwise:
      // y(M, C_out) = act(x(M, C_in) . w'(C_in, C_out) + b'), M = N*H*W
      kernels().gemm_bias_act({.m = batch * in_h * in_w, .n = out_channels_, .k = in_channels_}, x.data(),
                              weight_.data(), bias_.data(), activation_, y.data());
      break;
  }
  return y;
}

}  // namespace mriscan
