// Linear: a fully connected layer on feature rows (MobileNetV2's classifier.1), engine layout.
//
//   forward:  y(N, out) = x(N, in) . w(in, out) + bias                   (bias broadcast over rows)
//   dx:       dx(N, in)     += dy(N, out) . w^T                          (gemm with trans_b)
//   dw:       dw(in, out)   += x^T . dy(N, out)                          (gemm with trans_a)
//   dbias:    dbias(out)    += sum over the N rows of dy
// Parameters: "weight" (in, out) (torch keeps (out, in); models/weights_io converts), "bias" (out) when enabled.
// Initialised as torchvision's MobileNetV2 does: weight ~ N(0, 0.01), bias = 0 (layers/init.h). The tape closure
// calls `backward`, which computes dx only if x requires grad and dw / dbias only if that parameter does.
// Same GEMMs as PointwiseConv2d with M = N; kept as its own layer because its input is (N, F), not an image.
// What it is not: a batched matmul over leading dimensions; the layer must outlive the tape it recorded on.
#pragma once

#include <random>
#include <string>
#include <vector>

#include "layers/layer.h"

namespace mriscan {

class Linear : public Layer {
 public:
  Linear(int in_features, int out_features, std::mt19937& rng, bool bias = true);

  // x (N, in) -> y (N, out)
  Var forward(Tape& tape, const Var& x) override;
  void collect_parameters(const std::string& prefix, std::vector<NamedParameter>& out) override;

  int in_features() const { return in_features_; }
  int out_features() const { return out_features_; }
  const Var& weight() const { return weight_; }  // (in, out)
  const Var& bias() const { return bias_; }      // (out), or null without bias

 private:
  // The gradients of one recorded forward: reads y->grad, accumulates into x, weight and bias.
  void backward(const Var& x, const Var& y);

  int in_features_, out_features_;
  Var weight_;  // (in, out)
  Var bias_;    // (out) or null
};

}  // namespace mriscan
