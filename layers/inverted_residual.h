// MobileNetV2's inverted-residual block (Sandler et al. 2018, Fig. 3b / Table 1), with torchvision's names.
//
//   expand   : 1x1 conv C_in -> t*C_in, BN, ReLU6        conv.0.0 / conv.0.1        (absent when t == 1)
//   depthwise: 3x3 depthwise, stride s, pad 1, BN, ReLU6 conv.1.0 / conv.1.1        (conv.0.* when t == 1)
//   project  : 1x1 conv t*C_in -> C_out, BN (linear)     conv.2 / conv.3            (conv.1 / conv.2 when t == 1)
//   residual : y = x + block(x) when s == 1 and C_in == C_out
// The block is a composition: each sublayer records its own tape node, and the residual add's backward sends
// dy both into the block and straight to x; the tape's `+=` accumulation sums the two paths.
// Also here: ConvBn, the "conv + BN (+ ReLU6)" unit used by the block, the stem and the last conv.
#pragma once

#include <memory>
#include <random>
#include <string>
#include <vector>

#include "layers/batch_norm.h"
#include "layers/layer.h"
#include "layers/relu6.h"

namespace mriscan {

// conv (any Layer producing C_out channels) -> BatchNorm2d -> optional ReLU6. Names: "<prefix>0.*", "<prefix>1.*".
// In training mode BN and ReLU6 run fused (BatchNorm2d::forward_train_activated): one node, one pass.
class ConvBn : public Layer {
 public:
  ConvBn(std::unique_ptr<Layer> conv, int out_channels, bool relu6);
  Var forward(Tape& tape, const Var& x) override;
  void collect_parameters(const std::string& prefix, std::vector<NamedParameter>& out) override;
  void collect_buffers(const std::string& prefix, std::vector<NamedBuffer>& out) override;
  void set_training(bool training) override;
  void set_collective(Collective* world) override;

  // The parts, read by models/folded_mobilenet_v2.cpp to fold BN into the conv.
  const Layer& conv() const { return *conv_; }
  const BatchNorm2d& bn() const { return bn_; }
  bool has_relu6() const { return relu6_; }

 private:
  std::unique_ptr<Layer> conv_;
  BatchNorm2d bn_;
  bool relu6_;
  ReLU6 activation_;
};

class InvertedResidual : public Layer {
 public:
  InvertedResidual(int in_channels, int out_channels, int stride, int expand_ratio, std::mt19937& rng);
  Var forward(Tape& tape, const Var& x) override;  // x (N, H, W, C_in) -> (N, H/s, W/s, C_out)
  void collect_parameters(const std::string& prefix, std::vector<NamedParameter>& out) override;
  void collect_buffers(const std::string& prefix, std::vector<NamedBuffer>& out) override;
  void set_training(bool training) override;
  void set_collective(Collective* world) override;
  bool uses_residual() const { return use_residual_; }
  // The parts, read by models/folded_mobilenet_v2.cpp to fold BN into the convs.
  const std::vector<std::unique_ptr<ConvBn>>& conv_bn_relu_units() const { return conv_bn_relu_; }  // [expand,] dw
  const Layer& project() const { return *project_; }
  const BatchNorm2d& project_bn() const { return *project_bn_; }

 private:
  // Torchvision's `conv` Sequential, flattened: ConvBn units, then the projection conv and its BN, whose indices
  // depend on whether the expansion exists.
  std::vector<std::unique_ptr<ConvBn>> conv_bn_relu_;  // [expand,] depthwise
  std::unique_ptr<Layer> project_;                     // 1x1 conv, linear
  std::unique_ptr<BatchNorm2d> project_bn_;
  bool use_residual_;
};

}  // namespace mriscan
