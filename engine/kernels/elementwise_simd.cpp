// Fast elementwise kernels: ReLU6 forward/backward, add, axpy, scale, and the row bias with its gradient.
// Same math and contract as elementwise_ref.h. All are memory bound: one vectorised pass over the data, split
// into contiguous blocks across threads (parallel_for_blocks) once the array is large enough to be worth it.
// In-place use (y == a, y == x) is fine: every element is loaded before its lane is stored.
// What it is not: fused with neighbouring ops (the tape calls ops one at a time).
#include <omp.h>

#include <vector>

#include "engine/kernels/epilogue_simd.h"
#include "engine/kernels/fast_kernels.h"
#include "engine/parallel.h"
#include "engine/simd.h"

namespace mriscan::MRISCAN_ISA {
namespace {

// Elements per parallel block: 256 KiB of floats, a multiple of the vector width, large enough that the
// thread start-up is noise and small enough to balance two threads on a 64x64x32 activation.
constexpr int64_t kGrain = int64_t(1) << 16;

}  // namespace

void relu6_forward_simd(int64_t n, const float* x, float* y) {
  parallel_for_blocks(n, kGrain, [&](int64_t begin, int64_t end) {
    for_each_chunk(end - begin, [&](int64_t i, int count) {
      const int64_t at = begin + i;
      store_n(y + at, activate(Activation::kReLU6, load_n(x + at, count)), count);
    });
  });
}

void relu6_backward_simd(int64_t n, const float* x, const float* dy, float* dx) {
  parallel_for_blocks(n, kGrain, [&](int64_t begin, int64_t end) {
    for_each_chunk(end - begin, [&](int64_t i, int count) {
      const int64_t at = begin + i;
      // The gradient flows only where ReLU6 is the identity, 0 < x < 6.
      const FloatBatch passed = activation_grad(Activation::kReLU6, load_n(x + at, count), load_n(dy + at, count));
      store_n(dx + at, load_n(dx + at, count) + passed, count);
    });
  });
}

void add_forward_simd(int64_t n, const float* a, const float* b, float* y) {
  parallel_for_blocks(n, kGrain, [&](int64_t begin, int64_t end) {
    for_each_chunk(end - begin, [&](int64_t i, int count) {
      const int64_t at = begin + i;
      store_n(y + at, load_n(a + at, count) + load_n(b + at, count), count);
    });
  });
}

void axpy_simd(int64_t n, float alpha, const float* x, float* y) {
  const FloatBatch alpha_v(alpha);
  parallel_for_blocks(n, kGrain, [&](int64_t begin, int64_t end) {
    for_each_chunk(end - begin, [&](int64_t i, int count) {
      const int64_t at = begin + i;
      store_n(y + at, xsimd::fma(alpha_v, load_n(x + at, count), load_n(y + at, count)), count);
    });
  });
}

void scale_simd(int64_t n, float alpha, float* y) {
  const FloatBatch alpha_v(alpha);
  parallel_for_blocks(n, kGrain, [&](int64_t begin, int64_t end) {
    for_each_chunk(end - begin, [&](int64_t i, int count) {
      const int64_t at = begin + i;
      store_n(y + at, load_n(y + at, count) * alpha_v, count);
    });
  });
}

// y (rows, cols) += bias (cols). Threads own blocks of whole rows.
void bias_add_rows_simd(int64_t rows, int cols, const float* bias, float* y) {
  const int64_t rows_per_block = cols > 0 && cols < kGrain ? kGrain / cols : 1;
  parallel_for_blocks(rows, rows_per_block, [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) bias_activate_row(y + r * cols, cols, bias, Activation::kNone);  // (cols)
  });
}

// dbias (cols) += column sums of dy (rows, cols).
void bias_backward_rows_simd(int64_t rows, int cols, const float* dy, float* dbias) {
  const int threads = rows * cols >= kGrain ? num_threads() : 1;
  std::vector<float> partials(static_cast<size_t>(threads) * cols, 0.0f);  // (threads, cols)
  // The sum runs over rows, so threads split the rows and each sums into its own partial (cols) row; the
  // partials are added into dbias afterwards (no two threads write the same memory).
#pragma omp parallel num_threads(threads) if (threads > 1)
  {
    float* partial = partials.data() + static_cast<int64_t>(omp_get_thread_num()) * cols;  // (cols)
#pragma omp for schedule(static)
    for (int64_t r = 0; r < rows; ++r) {
      const float* dy_row = dy + r * cols;  // (cols)
      for_each_chunk(cols, [&](int64_t c, int count) {
        store_n(partial + c, load_n(partial + c, count) + load_n(dy_row + c, count), count);
      });
    }
  }
  for (int t = 0; t < threads; ++t)
    for (int c = 0; c < cols; ++c) dbias[c] += partials[static_cast<size_t>(t) * cols + c];
}

}  // namespace mriscan::MRISCAN_ISA
