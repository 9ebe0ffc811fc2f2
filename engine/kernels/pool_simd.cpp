// Fast global average pool: x (N, H, W, C) -> y (N, C) and its backward, vectorised over channels.
// Same math and contract as pool_ref.h: forward overwrites y, backward accumulates dx += dy / (H*W).
// What it is not: windowed pooling (MobileNetV2 only pools globally, once, before the classifier).
#include "engine/kernels/fast_kernels.h"
#include "engine/parallel.h"
#include "engine/simd.h"

namespace mriscan::MRISCAN_ISA {

void global_avg_pool_forward_simd(const PoolParams& p, const float* x, float* y) {
  const int64_t C = p.channels, pixels = int64_t(p.h) * p.w;
  const FloatBatch inv_pixels(1.0f / static_cast<float>(pixels));
  // Each thread owns whole images n (disjoint rows of y). Channel chunk outer, pixels inner: the running sum
  // of a chunk stays in a register; the image (7x7x1280 floats in MobileNetV2) stays in cache across chunks.
#pragma omp parallel for schedule(static) num_threads(num_threads()) if (p.batch > 1)
  for (int n = 0; n < p.batch; ++n) {
    const float* x_image = x + n * pixels * C;  // (H*W, C)
    for_each_chunk(C, [&](int64_t c, int count) {
      FloatBatch sum(0.0f);
      for (int64_t i = 0; i < pixels; ++i) sum += load_n(x_image + i * C + c, count);
      store_n(y + n * C + c, sum * inv_pixels, count);
    });
  }
}

void global_avg_pool_backward_simd(const PoolParams& p, const float* dy, float* dx) {
  const int64_t C = p.channels, pixels = int64_t(p.h) * p.w;
  const FloatBatch inv_pixels(1.0f / static_cast<float>(pixels));
  const int64_t rows = p.batch * pixels;
  // Each thread owns contiguous (n, h, w) rows of dx; every row receives its image's dy / (H*W).
#pragma omp parallel for schedule(static) num_threads(num_threads()) if (rows * C >= (int64_t(1) << 16))
  for (int64_t r = 0; r < rows; ++r) {
    const float* dy_image = dy + (r / pixels) * C;  // (C)
    float* dx_row = dx + r * C;                      // (C)
    for_each_chunk(C, [&](int64_t c, int count) {
      store_n(dx_row + c, xsimd::fma(load_n(dy_image + c, count), inv_pixels, load_n(dx_row + c, count)), count);
    });
  }
}

}  // namespace mriscan::MRISCAN_ISA
