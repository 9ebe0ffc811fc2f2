// Adam / AdamW update loop, one readable pass per tensor (as llm.c's gpt2_update); formulas in adam.h.
#include "optim/adam.h"

#include <cmath>
#include <stdexcept>

namespace mriscan {

Adam::Adam(std::vector<NamedParameter> params, const AdamOptions& options)
    : Optimizer(std::move(params), options.learning_rate), options_(options) {
  if (!(options.beta1 >= 0.0f && options.beta1 < 1.0f)) throw std::invalid_argument("Adam: beta1 must be in [0, 1)");
  if (!(options.beta2 >= 0.0f && options.beta2 < 1.0f)) throw std::invalid_argument("Adam: beta2 must be in [0, 1)");
  if (!(options.eps >= 0.0f)) throw std::invalid_argument("Adam: eps must be >= 0");
  if (!(options.weight_decay >= 0.0f)) throw std::invalid_argument("Adam: weight_decay must be >= 0");
}

std::vector<StateSlot> Adam::state_slots() const {
  // "step" is a float scalar so every state entry is an F32 tensor; exact up to 2^24 updates.
  return {{"exp_avg", false}, {"exp_avg_sq", false}, {"step", true}};
}

void Adam::update(size_t index, Tensor& param, const Tensor& grad) {
  const float lr = learning_rate_;
  const float beta1 = options_.beta1, beta2 = options_.beta2, eps = options_.eps;
  const float weight_decay = options_.weight_decay;
  const bool decoupled = options_.decoupled_weight_decay;

  float* p = param.data();                       // (numel) parameter, any shape
  const float* dw = grad.data();                 // (numel) its gradient
  float* m = slot(index, "exp_avg").data();      // (numel) first moment, zero before the first update
  float* v = slot(index, "exp_avg_sq").data();   // (numel) second moment
  float& step = slot(index, "step")[0];
  step += 1.0f;

  // Bias corrections in double: beta2^t is 1 - O(t * 1e-3) for small t, where float loses digits.
  const double bias_correction1 = 1.0 - std::pow(static_cast<double>(beta1), step);
  const double bias_correction2 = 1.0 - std::pow(static_cast<double>(beta2), step);
  // PyTorch's arrangement: step_size = lr / bc1, denom = sqrt(v) / sqrt(bc2) + eps (eps outside the correction).
  const float step_size = static_cast<float>(lr / bias_correction1);
  const float inv_sqrt_bc2 = static_cast<float>(1.0 / std::sqrt(bias_correction2));

  const int64_t n = param.numel();
  for (int64_t i = 0; i < n; ++i) {
    float g = dw[i];
    if (weight_decay != 0.0f) {
      if (decoupled) p[i] *= 1.0f - lr * weight_decay;  // AdamW: shrink the weight directly
      else g += weight_decay * p[i];                     // Adam: L2 gradient, then adaptively scaled
    }
    m[i] = beta1 * m[i] + (1.0f - beta1) * g;
    v[i] = beta2 * v[i] + (1.0f - beta2) * g * g;
    float denom = std::sqrt(v[i]) * inv_sqrt_bc2 + eps;
    p[i] -= step_size * m[i] / denom;
  }
}

}  // namespace mriscan
