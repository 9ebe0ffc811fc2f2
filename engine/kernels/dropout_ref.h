// Reference inverted dropout with a precomputed keep mask. Plain loops, templated on the scalar type so the
// gradient tests can run them in double.
//
//   forward:  y[i]  = keep[i] ? x[i] / (1 - p) : 0
//   backward: dx[i] += keep[i] ? dy[i] / (1 - p) : 0          (the same fixed linear map, so the same mask)
// "Inverted": the kept values are scaled up by 1/(1-p) during training so that E[y] = x and evaluation needs no
// rescaling (dropout is then the identity). The mask (one byte per element, 1 = keep) is drawn by the layer
// (layers/dropout.cpp) from its seeded generator, which keeps the kernel deterministic and testable.
// Contract: forward overwrites y; backward accumulates into dx; 0 <= p < 1 (checked by the layer).
// What it is not: a random number generator. It has no fast twin (dropout runs once, on the (N, 1280) features):
// both kernel tables point here.
#pragma once

#include <cstdint>

namespace mriscan {

template <typename T>
void dropout_forward_ref(int64_t n, T p, const uint8_t* keep, const T* x, T* y) {
  const T scale = T(1) / (T(1) - p);
  for (int64_t i = 0; i < n; ++i) y[i] = keep[i] ? x[i] * scale : T(0);
}

template <typename T>
void dropout_backward_ref(int64_t n, T p, const uint8_t* keep, const T* dy, T* dx) {
  const T scale = T(1) / (T(1) - p);
  for (int64_t i = 0; i < n; ++i)
    if (keep[i]) dx[i] += dy[i] * scale;
}

}  // namespace mriscan
