// ReLU6: y = min(max(x, 0), 6) elementwise, MobileNetV2's activation (bounded so low-precision inference keeps
// its range; Sandler et al. 2018, Sec. 3.2). Any input shape.
//
//   forward:  y  = min(max(x, 0), 6)
//   backward: dx += dy where 0 < x < 6, nothing elsewhere (the clamps are flat; at exactly 0 and 6 the
//             derivative is taken as 0, as PyTorch does)
// No parameters. The tape closure calls `backward`, which runs only if x requires a gradient (otherwise the node
// is not even recorded). What it is not: in place (the input stays intact, since backward reads it).
#pragma once

#include "layers/layer.h"

namespace mriscan {

class ReLU6 : public Layer {
 public:
  // x (any shape) -> y, same shape.
  Var forward(Tape& tape, const Var& x) override;

 private:
  void backward(const Var& x, const Var& y);
};

}  // namespace mriscan
