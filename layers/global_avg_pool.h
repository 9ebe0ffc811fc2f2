// GlobalAvgPool: the mean of each channel over all spatial positions, (N, H, W, C) -> (N, C); MobileNetV2's
// pooling between the last conv and the classifier (torchvision's adaptive_avg_pool2d(x, 1) + flatten).
//
//   forward:  y[n,c]       = (1 / (H*W)) sum_{h,w} x[n,h,w,c]
//   backward: dx[n,h,w,c] += dy[n,c] / (H*W)
// No parameters. The tape closure calls `backward`, which runs only if x requires a gradient. What it is not: a
// windowed pool; it keeps no state between calls.
#pragma once

#include "engine/kernels/params.h"
#include "layers/layer.h"

namespace mriscan {

class GlobalAvgPool : public Layer {
 public:
  // x (N, H, W, C) -> y (N, C).
  Var forward(Tape& tape, const Var& x) override;

 private:
  static PoolParams params_for(const Shape& s);  // validates the shape
  void backward(const Var& x, const Var& y);
};

}  // namespace mriscan
