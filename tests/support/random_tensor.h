// A tensor of seeded uniform random floats, for the layer tests.
// What it is not: the kernel tests' raw buffers (kernel_compare.h's random_floats).
#pragma once

#include <cstdint>
#include <random>

#include "engine/tensor.h"

namespace mriscan::testing {

// Values uniform in [low, high), the same for the same seed.
inline Tensor random_tensor(const Shape& shape, uint32_t seed, float low = -1.0f, float high = 1.0f) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> dist(low, high);
  Tensor t(shape);
  for (int64_t i = 0; i < t.numel(); ++i) t[i] = dist(rng);
  return t;
}

}  // namespace mriscan::testing
