// PointwiseConv2d: 1x1 convolution, i.e. one GEMM over the M = N*H*W pixels of an (N, H, W, C) activation. In
// NHWC the activation already is an (M, C_in) row-major matrix, so no im2col or transpose is needed. MobileNetV2
// uses it for every expansion and projection.
//
//   forward:  y(M, C_out) = x(M, C_in) . w(C_in, C_out) + bias          (bias broadcast over rows)
//   dx:       dx(M, C_in)     += dy(M, C_out) . w^T                      (gemm with trans_b)
//   dw:       dw(C_in, C_out) += x^T . dy(M, C_out)                      (gemm with trans_a)
//   dbias:    dbias(C_out)    += sum over the M rows of dy
// Parameters: "weight" (C_in, C_out) (torch keeps (C_out, C_in, 1, 1); models/weights_io converts), "bias"
// (C_out) when enabled. Initialised as torchvision does (layers/init.h). The tape closure calls `backward`, which
// computes dx only if x requires grad and dw / dbias only if that parameter does.
// What it is not: a strided 1x1 conv; the layer must outlive the tape it recorded on.
#pragma once

#include <random>
#include <string>
#include <vector>

#include "layers/layer.h"

namespace mriscan {

class PointwiseConv2d : public Layer {
 public:
  PointwiseConv2d(int in_channels, int out_channels, bool bias, std::mt19937& rng);

  // x (N, H, W, C_in) -> y (N, H, W, C_out)
  Var forward(Tape& tape, const Var& x) override;
  void collect_parameters(const std::string& prefix, std::vector<NamedParameter>& out) override;

  const Var& weight() const { return weight_; }  // (C_in, C_out)
  const Var& bias() const { return bias_; }      // (C_out), or null without bias

 private:
  // The gradients of one recorded forward: reads y->grad, accumulates into x, weight and bias.
  void backward(const Var& x, const Var& y);
  // Throws with both shapes when x is not (N, H, W, C_in).
  void check_input(const Shape& x_shape) const;

  int in_channels_, out_channels_;
  Var weight_;  // (C_in, C_out)
  Var bias_;    // (C_out) or null
};

}  // namespace mriscan
