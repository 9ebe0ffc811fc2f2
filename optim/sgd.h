// SGD with momentum, optional Nesterov momentum and L2 weight decay, with PyTorch's torch.optim.SGD semantics
// (dampening fixed at 0):
//
//   g  = grad + weight_decay * param                 (L2 penalty folded into the gradient)
//   b  = g                          on the first step (buffer allocated lazily)
//   b  = momentum * b + g           afterwards
//   d  = g + momentum * b  if nesterov, else  d = b
//   param -= lr * d
//
// Note PyTorch's form puts lr outside the buffer (unlike Sutskever et al.), so changing lr mid-run rescales
// the whole step at once. With momentum == 0 no buffer is kept and the update is plain gradient descent.
// What it is not: a learning-rate schedule (see reduce_lr_on_plateau.h).
#pragma once

#include "optim/optimizer.h"

namespace mriscan {

struct SgdOptions {
  float learning_rate = 0.01f;
  float momentum = 0.0f;
  float weight_decay = 0.0f;
  bool nesterov = false;
};

class Sgd : public Optimizer {
 public:
  Sgd(std::vector<NamedParameter> params, const SgdOptions& options);
  const SgdOptions& options() const { return options_; }

 protected:
  void update(size_t index, Tensor& param, const Tensor& grad) override;
  std::vector<StateSlot> state_slots() const override;

 private:
  SgdOptions options_;
};

}  // namespace mriscan
