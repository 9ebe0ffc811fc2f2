// Adam (Kingma & Ba, 2015) and AdamW (Loshchilov & Hutter, 2019) in one class, with PyTorch's
// torch.optim.Adam / AdamW semantics (no amsgrad). Per parameter, on its t-th update:
//
//   Adam  (decoupled_weight_decay = false):  g = grad + wd * param          (L2 penalty through the moments)
//   AdamW (decoupled_weight_decay = true):   param *= (1 - lr * wd);  g = grad   (decay bypasses the moments)
//   m = beta1 * m + (1 - beta1) * g                         first moment
//   v = beta2 * v + (1 - beta2) * g^2                       second moment
//   m_hat = m / (1 - beta1^t),  v_hat = v / (1 - beta2^t)   bias correction (moments start at zero)
//   param -= lr * m_hat / (sqrt(v_hat) + eps)
//
// The step counter t is per parameter (as in PyTorch), so a block unfrozen at epoch 10 gets the same bias
// correction its first update would have had at epoch 0. Moments are allocated on a parameter's first update.
// What it is not: a scheduler; lr changes come from outside (set_learning_rate).
#pragma once

#include "optim/optimizer.h"

namespace mriscan {

struct AdamOptions {
  float learning_rate = 1e-3f;
  float beta1 = 0.9f;
  float beta2 = 0.999f;
  float eps = 1e-8f;
  float weight_decay = 0.0f;
  bool decoupled_weight_decay = false;  // false: Adam (L2 in the gradient); true: AdamW
};

class Adam : public Optimizer {
 public:
  Adam(std::vector<NamedParameter> params, const AdamOptions& options);
  const AdamOptions& options() const { return options_; }

 protected:
  void update(size_t index, Tensor& param, const Tensor& grad) override;
  std::vector<StateSlot> state_slots() const override;

 private:
  AdamOptions options_;
};

}  // namespace mriscan
