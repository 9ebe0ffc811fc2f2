// WeightAverage (weight_average.h): the running average and the swap in and out of the model.
#include "optim/weight_average.h"

#include <algorithm>
#include <stdexcept>

namespace mriscan {

WeightAverage::WeightAverage(const std::vector<NamedParameter>& params, const std::vector<NamedBuffer>& buffers,
                             double decay)
    : decay_(decay) {
  if (!(decay > 0.0 && decay < 1.0)) throw std::invalid_argument("weight average: decay must be in (0, 1)");
  for (const NamedParameter& p : params) entries_.push_back({p.name, p.var->value, p.var->value.clone()});
  for (const NamedBuffer& b : buffers) entries_.push_back({b.name, b.tensor, b.tensor.clone()});
}

void WeightAverage::update() {
  ++updates_;
  const float decay = static_cast<float>(std::min(decay_, (1.0 + updates_) / (10.0 + updates_)));
  for (Entry& e : entries_) {
    const float* value = e.value.data();  // (numel)
    float* average = e.average.data();    // (numel)
    // avg += (1 - decay) (value - avg): the same average, written so that a value that never changes (a frozen
    // layer) keeps its average exactly equal to it.
    for (int64_t i = 0; i < e.value.numel(); ++i) average[i] += (1.0f - decay) * (value[i] - average[i]);
  }
}

void WeightAverage::swap() {
  for (Entry& e : entries_) std::swap_ranges(e.value.data(), e.value.data() + e.value.numel(), e.average.data());
}

std::vector<NamedBuffer> WeightAverage::state_buffers() const {
  std::vector<NamedBuffer> out;
  for (const Entry& e : entries_) out.push_back({"ema." + e.name, e.average});
  return out;
}

}  // namespace mriscan
