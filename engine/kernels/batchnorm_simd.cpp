// Fast batch norm (training mode, forward and backward) and the eval-mode channel affine, over (M, C) rows with
// M = N*H*W. Same math and contract as batchnorm_ref.h: forward overwrites y/mean/inv_std, backward accumulates
// (dx is stored when !p.accumulate_dx).
//
// Each kernel is two passes over memory: one to reduce per-channel sums, one to write the output.
// Reductions vectorise over channels; threads split the rows and sum into private partials reduced at the
// end. Precision: a float sum over M = 400k rows would lose digits, so each thread sums blocks of
// kBlockRows rows in float and adds the block sums into double totals. The variance uses the shifted-data
// formula var = E[(x-s)^2] - E[x-s]^2 with s = the first row of x (close to the mean for any real activation),
// so it does not cancel catastrophically the way E[x^2] - E[x]^2 does when |mean| >> std.
// Fused activation (p.activation, batchnorm_ref.h): the normalisation pass writes z = act(y) while y is in
// registers, and both backward passes mask dz where the activation is flat (activation_grad), judged on y
// recomputed from x with the forward's own fma: bit for bit the forward's decision, one multiply-add per value
// instead of a read of z. BN + ReLU6 costs the passes of BN alone, no pre-activation buffer, and the backward
// streams dz and x only.
// What it is not: the running-statistics update (the layer does that from mean / inv_std).
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <type_traits>
#include <vector>

#include "engine/kernels/epilogue_simd.h"
#include "engine/kernels/fast_kernels.h"
#include "engine/kernels/kernel_set_tuning.h"
#include "engine/parallel.h"
#include "engine/simd.h"

namespace mriscan::MRISCAN_ISA {
namespace {

constexpr int64_t kBlockRows = 256;           // rows summed in float before moving into the double totals
constexpr int64_t kGrain = int64_t(1) << 16;  // elements below which one thread does everything

// Channel vectors whose two sums stay in registers at once (kernel_set_tuning.h).
constexpr int kGroupVectors = tuning::kBatchNormGroupVectors;

// Two per-channel sums over all rows: sum1 (C) and sum2 (C), in double, overwritten. row_fn(r, c, count, s1, s2)
// adds row r's contribution for channels [c, c + count) into the batches s1, s2.
// Per block of kBlockRows rows, channels go in groups of kGroupVectors vectors: the group's sums stay in registers
// over the block's rows (each row reads kGroupVectors * V consecutive floats per buffer), then go into the double
// totals once. (Keeping the sums in a memory row instead costs two loads and two stores per vector of data.)
template <typename RowFn>
void column_sums(int64_t rows, int C, RowFn&& row_fn, double* sum1, double* sum2) {
  constexpr int V = kVectorWidth;
  const int threads = rows * C >= kGrain ? num_threads() : 1;
  std::vector<double> totals(static_cast<size_t>(threads) * 2 * C, 0.0);  // (threads, 2, C)
  // The sums run over rows, so each thread takes a contiguous range of rows and sums into its own partials;
  // the partials are added together after the parallel region (no shared writes, deterministic order).
#pragma omp parallel num_threads(threads) if (threads > 1)
  {
    const int64_t team = omp_get_num_threads(), t = omp_get_thread_num();
    const int64_t begin = rows * t / team, end = rows * (t + 1) / team;
    double* total = totals.data() + t * 2 * C;  // (2, C)
    for (int64_t block_begin = begin; block_begin < end; block_begin += kBlockRows) {
      const int64_t block_end = std::min(end, block_begin + kBlockRows);
      for (int64_t group = 0; group < C; group += kGroupVectors * V) {
        const int64_t group_channels = std::min<int64_t>(kGroupVectors * V, C - group);
        const int full_vectors = static_cast<int>(group_channels / V), tail = static_cast<int>(group_channels % V);
        FloatBatch s1[kGroupVectors + 1], s2[kGroupVectors + 1];  // the full vectors, then the tail
#pragma GCC unroll 9
        for (int v = 0; v <= kGroupVectors; ++v) s1[v] = s2[v] = FloatBatch(0.0f);
        for (int64_t r = block_begin; r < block_end; ++r) {
#pragma GCC unroll 8
          for (int v = 0; v < kGroupVectors; ++v) {
            if (v >= full_vectors) break;
            row_fn(r, group + v * V, V, s1[v], s2[v]);
          }
          if (tail) row_fn(r, group + full_vectors * V, tail, s1[kGroupVectors], s2[kGroupVectors]);
        }
        alignas(64) float lanes[2][V];  // one vector's two sums
        for (int v = 0; v < full_vectors + (tail ? 1 : 0); ++v) {
          const int slot = v < full_vectors ? v : kGroupVectors, count = v < full_vectors ? V : tail;
          s1[slot].store_aligned(lanes[0]);
          s2[slot].store_aligned(lanes[1]);
          for (int i = 0; i < count; ++i) {
            total[group + v * V + i] += lanes[0][i];
            total[C + group + v * V + i] += lanes[1][i];
          }
        }
      }
    }
  }
  for (int c = 0; c < C; ++c) {
    sum1[c] = 0.0;
    sum2[c] = 0.0;
    for (int t = 0; t < threads; ++t) {
      sum1[c] += totals[static_cast<size_t>(t) * 2 * C + c];
      sum2[c] += totals[static_cast<size_t>(t) * 2 * C + C + c];
    }
  }
}

// Calls fn with the activation as a compile-time constant (std::integral_constant), so inner loops have no branch.
template <typename Fn>
void with_activation(Activation activation, Fn&& fn) {
  if (activation == Activation::kReLU6)
    fn(std::integral_constant<Activation, Activation::kReLU6>{});
  else
    fn(std::integral_constant<Activation, Activation::kNone>{});
}

// (C): gamma * inv_std, the normalisation's per-channel scale. The forward and the backward's mask use this one
// computation, so the backward's recomputed y is the forward's to the bit.
std::vector<float> normalize_scale(int C, const float* gamma, const float* inv_std) {
  std::vector<float> scale(C);
  for (int c = 0; c < C; ++c) scale[c] = gamma[c] * inv_std[c];
  return scale;
}

// y = (x - mean) * scale + beta at channels [c, c + count), given centered = x - mean: the normalisation's value,
// as batchnorm_normalize_simd computes it.
FloatBatch normalized(const FloatBatch& centered, const float* scale, const float* beta, int64_t c, int count) {
  return xsimd::fma(centered, load_n(scale + c, count), load_n(beta + c, count));
}

// The gradient of BN's output y: dy, or with an activation dy masked where it is flat, judged on y recomputed
// from centered = x - mean (scale and beta are read only then).
template <Activation kAct>
FloatBatch bn_output_grad(const FloatBatch& dy, const FloatBatch& centered, const float* scale, const float* beta,
                          int64_t c, int count) {
  if constexpr (kAct == Activation::kNone)
    return dy;
  else
    return activation_grad(kAct, normalized(centered, scale, beta, c, count), dy);
}

// Runs fn(r) over all rows, threads owning contiguous blocks of whole rows.
template <typename Fn>
void for_each_row(int64_t rows, int C, Fn&& fn) {
  const int64_t rows_per_block = C > 0 && C < kGrain ? kGrain / C : 1;
  parallel_for_blocks(rows, rows_per_block, [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) fn(r);
  });
}

}  // namespace

void batchnorm_statistics_simd(const BatchNormParams& p, const float* x, double* mean, double* m2) {
  const int C = p.channels;
  const int64_t M = p.rows;
  const float* shift = x;                   // (C): the first row, the shift s of the variance formula
  std::vector<double> sum_d(C), sum_d2(C);  // sums of d = x - s and of d^2, (C) each
  column_sums(
      M, C,
      [&](int64_t r, int64_t c, int count, FloatBatch& s1, FloatBatch& s2) {
        const FloatBatch d = load_n(x + r * C + c, count) - load_n(shift + c, count);
        s1 += d;
        s2 = xsimd::fma(d, d, s2);
      },
      sum_d.data(), sum_d2.data());
  for (int c = 0; c < C; ++c) {
    const double mean_d = sum_d[c] / M;
    mean[c] = shift[c] + mean_d;
    m2[c] = std::max(0.0, sum_d2[c] - M * mean_d * mean_d);  // sum (x - mean)^2 = sum d^2 - M mean_d^2
  }
}

void batchnorm_train_forward_simd(const BatchNormParams& p, const float* x, const float* gamma, const float* beta,
                                  float* y, float* mean, float* inv_std) {
  const int C = p.channels;
  const int64_t M = p.rows;
  std::vector<double> mu(C), m2(C);  // (C), (C)
  batchnorm_statistics_simd(p, x, mu.data(), m2.data());
  for (int c = 0; c < C; ++c) {
    mean[c] = static_cast<float>(mu[c]);
    inv_std[c] = static_cast<float>(1.0 / std::sqrt(m2[c] / M + p.eps));  // biased variance m2 / M
  }
  batchnorm_normalize_simd(p, x, gamma, beta, mean, inv_std, y);
}

void batchnorm_normalize_simd(const BatchNormParams& p, const float* x, const float* gamma, const float* beta,
                              const float* mean, const float* inv_std, float* y) {
  const int C = p.channels;
  const int64_t M = p.rows;
  const std::vector<float> scale = normalize_scale(C, gamma, inv_std);  // (C)
  // y = act((x - mean) * (gamma * inv_std) + beta); subtracting first keeps precision when |mean| >> std.
  with_activation(p.activation, [&](auto activation) {
    for_each_row(M, C, [&](int64_t r) {
      for_each_chunk(C, [&](int64_t c, int count) {
        const FloatBatch centered = load_n(x + r * C + c, count) - load_n(mean + c, count);
        store_n(y + r * C + c, activate(activation, normalized(centered, scale.data(), beta, c, count)), count);
      });
    });
  });
}

void batchnorm_backward_sums_simd(const BatchNormParams& p, const float* dy, const float* x, const float* gamma,
                                  const float* beta, const float* mean, const float* inv_std, double* sum_dy,
                                  double* sum_dy_xhat) {
  const int C = p.channels;
  const std::vector<float> scale =
      p.activation == Activation::kNone ? std::vector<float>() : normalize_scale(C, gamma, inv_std);  // (C) or none
  // sum(dy) and sum(dy * (x - mean)) per channel; sum(dy * xhat) = inv_std * the second.
  with_activation(p.activation, [&](auto activation) {
    column_sums(
        p.rows, C,
        [&](int64_t r, int64_t c, int count, FloatBatch& s1, FloatBatch& s2) {
          const FloatBatch centered = load_n(x + r * C + c, count) - load_n(mean + c, count);
          const FloatBatch dyv = bn_output_grad<decltype(activation)::value>(load_n(dy + r * C + c, count), centered,
                                                                             scale.data(), beta, c, count);
          s1 += dyv;
          s2 = xsimd::fma(dyv, centered, s2);
        },
        sum_dy, sum_dy_xhat);
  });
  for (int c = 0; c < C; ++c) sum_dy_xhat[c] *= inv_std[c];
}

void batchnorm_backward_input_simd(const BatchNormParams& p, const float* dy, const float* x, const float* gamma,
                                   const float* beta, const float* mean, const float* inv_std, const double* sum_dy,
                                   const double* sum_dy_xhat, double total_rows, float* dx) {
  const int C = p.channels;
  const int64_t M = p.rows;
  // dx += k * (dy - mean(dy) - xhat * mean(dy * xhat)) with k = gamma * inv_std, rewritten per channel as
  // dx += k * dy + b * (x - mean) + a, where b = -k * inv_std * mean(dy * xhat) and a = -k * mean(dy); the means
  // are over total_rows.
  std::vector<float> k(C), b(C), a(C);  // (C) each
  for (int c = 0; c < C; ++c) {
    const double kc = double(gamma[c]) * inv_std[c];
    const double mean_dy_xhat = sum_dy_xhat[c] / total_rows;
    k[c] = static_cast<float>(kc);
    b[c] = static_cast<float>(-kc * inv_std[c] * mean_dy_xhat);
    a[c] = static_cast<float>(-kc * sum_dy[c] / total_rows);
  }
  // k doubles as the mask's scale: float(double(gamma) * inv_std) is normalize_scale's float product to the bit
  // (the product of two floats is exact in double, so it is rounded once either way).
  with_activation(p.activation, [&](auto activation) {
    for_each_row(M, C, [&](int64_t r) {
      for_each_chunk(C, [&](int64_t c, int count) {
        const int64_t at = r * C + c;
        const FloatBatch centered = load_n(x + at, count) - load_n(mean + c, count);
        const FloatBatch dyv = bn_output_grad<decltype(activation)::value>(load_n(dy + at, count), centered,
                                                                           k.data(), beta, c, count);
        FloatBatch acc = load_n(a.data() + c, count);
        if (p.accumulate_dx) acc += load_n(dx + at, count);
        acc = xsimd::fma(load_n(k.data() + c, count), dyv, acc);
        acc = xsimd::fma(load_n(b.data() + c, count), centered, acc);
        store_n(dx + at, acc, count);
      });
    });
  });
}

void batchnorm_train_backward_simd(const BatchNormParams& p, const float* dy, const float* x, const float* gamma,
                                   const float* beta, const float* mean, const float* inv_std, float* dx,
                                   float* dgamma, float* dbeta) {
  const int C = p.channels;
  std::vector<double> sum_dy(C), sum_dy_xhat(C);  // (C) each
  batchnorm_backward_sums_simd(p, dy, x, gamma, beta, mean, inv_std, sum_dy.data(), sum_dy_xhat.data());
  for (int c = 0; c < C; ++c) {
    if (dgamma) dgamma[c] += static_cast<float>(sum_dy_xhat[c]);
    if (dbeta) dbeta[c] += static_cast<float>(sum_dy[c]);
  }
  if (dx)
    batchnorm_backward_input_simd(p, dy, x, gamma, beta, mean, inv_std, sum_dy.data(), sum_dy_xhat.data(),
                                  static_cast<double>(p.rows), dx);
}

void channel_affine_forward_simd(int64_t rows, int channels, const float* x, const float* scale, const float* shift,
                                 float* y) {
  for_each_row(rows, channels, [&](int64_t r) {
    for_each_chunk(channels, [&](int64_t c, int count) {
      const int64_t at = r * channels + c;
      store_n(y + at, xsimd::fma(load_n(x + at, count), load_n(scale + c, count), load_n(shift + c, count)), count);
    });
  });
}

}  // namespace mriscan::MRISCAN_ISA
