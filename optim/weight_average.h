// WeightAverage: an exponential moving average of a model's parameters and buffers (batch-norm running
// statistics included), updated after every optimizer step, as timm's ModelEmaV2 and the averaged weights of
// EfficientNet / MobileNetV3 training:
//   decay_t = min(decay, (1 + t) / (10 + t))        t = updates so far; the warm-up lets the average follow the
//   avg     = decay_t * avg + (1 - decay_t) * value  early, fast-moving weights instead of the initial ones
// The trainer validates and saves the average instead of the raw weights (swap() in, evaluate, swap() back), so the
// checkpoint chosen on validation is an averaged model. Its values travel with the resume state as extra buffers
// named "ema.<name>", so --resume continues the average exactly.
// What it is not: an optimizer (it never reads gradients) or stochastic weight averaging (equal weights per epoch).
#pragma once

#include <cstdint>
#include <vector>

#include "layers/layer.h"

namespace mriscan {

class WeightAverage {
 public:
  // Averages every parameter and buffer given; their tensors must outlive this object.
  WeightAverage(const std::vector<NamedParameter>& params, const std::vector<NamedBuffer>& buffers, double decay);

  void update();  // after an optimizer step
  // Exchanges the model's values with the averages (call twice to restore). Cheap: a swap of copies per tensor.
  void swap();

  // The averages as "ema.<name>" buffers, and the update count, for the resume state.
  std::vector<NamedBuffer> state_buffers() const;
  int64_t updates() const { return updates_; }
  void set_updates(int64_t updates) { updates_ = updates; }

 private:
  struct Entry {
    std::string name;
    Tensor value;    // shares the model's storage
    Tensor average;  // same shape, owned
  };
  std::vector<Entry> entries_;
  double decay_;
  int64_t updates_ = 0;
};

}  // namespace mriscan
