// Reference global average pool: the mean of every channel over the spatial positions, (N, H, W, C) -> (N, C).
// Plain loops, templated on the scalar type so the gradient tests can run them in double.
//
//   forward:  y[n,c]      = (1 / (H*W)) sum_{h,w} x[n,h,w,c]
//   backward: dx[n,h,w,c] += dy[n,c] / (H*W)          (each position contributed 1/(H*W) of the mean)
// Contract: forward overwrites y; backward accumulates into dx. What it is not: windowed pooling (MobileNetV2
// only needs the global one before its classifier), vectorised or threaded (pool_simd.cpp is).
#pragma once

#include <cstdint>

#include "engine/kernels/params.h"

namespace mriscan {

template <typename T>
void global_avg_pool_forward_ref(const PoolParams& p, const T* x, T* y) {
  const int64_t positions = static_cast<int64_t>(p.h) * p.w;  // H*W rows of C values per image
  const int C = p.channels;
  for (int n = 0; n < p.batch; ++n) {
    const T* image = x + n * positions * C;  // (H*W, C)
    T* out = y + static_cast<int64_t>(n) * C;  // (C)
    for (int c = 0; c < C; ++c) out[c] = T(0);
    for (int64_t s = 0; s < positions; ++s)
      for (int c = 0; c < C; ++c) out[c] += image[s * C + c];
    for (int c = 0; c < C; ++c) out[c] /= static_cast<T>(positions);
  }
}

template <typename T>
void global_avg_pool_backward_ref(const PoolParams& p, const T* dy, T* dx) {
  const int64_t positions = static_cast<int64_t>(p.h) * p.w;
  const int C = p.channels;
  for (int n = 0; n < p.batch; ++n) {
    const T* grad = dy + static_cast<int64_t>(n) * C;  // (C)
    T* image = dx + n * positions * C;                 // (H*W, C)
    for (int64_t s = 0; s < positions; ++s)
      for (int c = 0; c < C; ++c) image[s * C + c] += grad[c] / static_cast<T>(positions);
  }
}

}  // namespace mriscan
