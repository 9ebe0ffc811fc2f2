// SGD update loop; the formulas are in sgd.h.
#include "optim/sgd.h"

#include <stdexcept>

namespace mriscan {

Sgd::Sgd(std::vector<NamedParameter> params, const SgdOptions& options)
    : Optimizer(std::move(params), options.learning_rate), options_(options) {
  if (options.momentum < 0.0f) throw std::invalid_argument("Sgd: momentum must be >= 0");
  if (options.weight_decay < 0.0f) throw std::invalid_argument("Sgd: weight_decay must be >= 0");
  if (options.nesterov && options.momentum <= 0.0f) throw std::invalid_argument("Sgd: nesterov needs momentum > 0");
}

std::vector<StateSlot> Sgd::state_slots() const {
  if (options_.momentum == 0.0f) return {};
  return {{"momentum_buffer", false}};
}

void Sgd::update(size_t index, Tensor& param, const Tensor& grad) {
  const float lr = learning_rate_;
  const float momentum = options_.momentum;
  const float weight_decay = options_.weight_decay;
  float* p = param.data();        // (numel) parameter, any shape
  const float* dw = grad.data();  // (numel) its gradient
  const int64_t n = param.numel();

  if (momentum == 0.0f) {
    for (int64_t i = 0; i < n; ++i) p[i] -= lr * (dw[i] + weight_decay * p[i]);
    return;
  }

  // PyTorch starts the buffer at the first gradient (b = g). The buffer is allocated zero-filled on the first
  // update, and with dampening 0, momentum * 0 + g == g, so one formula covers both cases.
  float* buf = slot(index, "momentum_buffer").data();  // (numel) velocity
  for (int64_t i = 0; i < n; ++i) {
    float g = dw[i] + weight_decay * p[i];
    buf[i] = momentum * buf[i] + g;
    float d = options_.nesterov ? g + momentum * buf[i] : buf[i];
    p[i] -= lr * d;
  }
}

}  // namespace mriscan
