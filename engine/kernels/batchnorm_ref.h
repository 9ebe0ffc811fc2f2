// Reference batch norm over (M, C) rows (M = N*H*W, or N for a (N, C) input), plain loops templated on the scalar
// type so the gradient tests can run them in double.
//
// Training mode, per channel c over the M rows r (Ioffe & Szegedy 2015, Alg. 1):
//   mean[c]    = (1/M) sum_r x[r,c]
//   var[c]     = (1/M) sum_r (x[r,c] - mean[c])^2          BIASED variance (what the normalisation uses)
//   inv_std[c] = 1 / sqrt(var[c] + eps)
//   xhat[r,c]  = (x[r,c] - mean[c]) * inv_std[c]
//   y[r,c]     = gamma[c] * xhat[r,c] + beta[c]
// Backward, through the batch statistics (mean and var depend on every x of the channel):
//   dbeta[c]   += sum_r dy[r,c]
//   dgamma[c]  += sum_r dy[r,c] * xhat[r,c]
//   dx[r,c]    += gamma[c] * inv_std[c] * (dy[r,c] - sum_r dy / M - xhat[r,c] * sum_r (dy * xhat) / M)
// The last line is the chain rule through xhat, mean and var collapsed: d xhat / dx contributes the dy term, the
// mean removes the average of dy, and the variance removes the component of dy along xhat.
// Fused activation (p.activation = kReLU6, training mode only): the forward writes z = relu6(y) and the backward
// receives dz and runs the formulas above on dy = dz * [0 < y < 6]: the composition BN then ReLU6, with y never
// stored. The backward recomputes y = gamma * xhat + beta from x with the forward's own expression, so the mask is
// bit for bit the forward's, and z is not read at all (one stream fewer in both backward passes).
// Eval mode is a fixed per-channel affine map y = x * scale + shift (scale = gamma * inv_std of the running
// statistics, shift = beta - running_mean * scale), computed by the layer and applied by channel_affine_forward.
// Its backward treats mean and inv_std as constants, so the batch terms vanish:
//   dx[r,c]   += dy[r,c] * gamma[c] * inv_std[c],   dgamma[c] += sum_r dy[r,c] * xhat[r,c],   dbeta[c] += sum_r dy
//
// Numerics: mean and variance are two passes (mean first, then squared deviations from it), which does not
// cancel the way E[x^2] - E[x]^2 does when |mean| >> std; sums run in double whatever T is, so the float
// reference stays accurate over the ~400k rows of a 224x224 batch.
// Contract: forward overwrites y, mean, inv_std; backward accumulates (`+=`) into dx, dgamma, dbeta, any of which
// may be null (not needed). What it is not: the running-statistics update (layers/batch_norm.cpp does that from
// mean and inv_std), fast, or threaded.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include "engine/kernels/elementwise_ref.h"  // activate_ref, activation_grad_ref
#include "engine/kernels/params.h"

namespace mriscan {

// The training-mode statistics alone, in double: mean (C) and m2 (C) = sum_r (x[r,c] - mean[c])^2 (so the biased
// variance is m2 / M), overwritten. Synchronised batch norm combines them over processes exactly
// (layers/batch_norm_sync.cpp), which float mean and inv_std would not allow.
template <typename T>
void batchnorm_statistics_ref(const BatchNormParams& p, const T* x, double* mean, double* m2) {
  const int64_t M = p.rows;
  const int C = p.channels;
  // Pass 1: per-channel mean.
  std::vector<double> sum(C, 0.0);  // (C)
  for (int64_t r = 0; r < M; ++r)
    for (int c = 0; c < C; ++c) sum[c] += static_cast<double>(x[r * C + c]);
  std::vector<double> mu(C);  // (C)
  for (int c = 0; c < C; ++c) mu[c] = sum[c] / static_cast<double>(M);
  // Pass 2: biased variance from squared deviations about that mean.
  std::vector<double> sum_sq(C, 0.0);  // (C)
  for (int64_t r = 0; r < M; ++r)
    for (int c = 0; c < C; ++c) {
      const double d = static_cast<double>(x[r * C + c]) - mu[c];
      sum_sq[c] += d * d;
    }
  for (int c = 0; c < C; ++c) {
    mean[c] = mu[c];
    m2[c] = sum_sq[c];
  }
}

// y = act(gamma * ((x - mean) * inv_std) + beta) over (M, C), overwritten; subtracting first keeps the precision
// that x * scale + shift loses when |mean| >> std.
template <typename T>
void batchnorm_normalize_ref(const BatchNormParams& p, const T* x, const T* gamma, const T* beta, const T* mean,
                             const T* inv_std, T* y) {
  const int64_t M = p.rows;
  const int C = p.channels;
  for (int64_t r = 0; r < M; ++r)
    for (int c = 0; c < C; ++c)
      y[r * C + c] = activate_ref(p.activation, gamma[c] * ((x[r * C + c] - mean[c]) * inv_std[c]) + beta[c]);
}

template <typename T>
void batchnorm_train_forward_ref(const BatchNormParams& p, const T* x, const T* gamma, const T* beta, T* y, T* mean,
                                 T* inv_std) {
  const int64_t M = p.rows;
  const int C = p.channels;
  std::vector<double> mu(C), m2(C);  // (C), (C)
  batchnorm_statistics_ref(p, x, mu.data(), m2.data());
  for (int c = 0; c < C; ++c) {
    mean[c] = static_cast<T>(mu[c]);
    inv_std[c] = static_cast<T>(1.0 / std::sqrt(m2[c] / static_cast<double>(M) + static_cast<double>(p.eps)));
  }
  batchnorm_normalize_ref(p, x, gamma, beta, mean, inv_std, y);  // y = act(gamma * xhat + beta)
}

// The gradient of BN's output y at [r, c] given dy, the gradient of the kernel's output: dy itself, or with
// p.activation dy masked where the activation is flat, judged on y recomputed exactly as batchnorm_normalize_ref
// computes it (gamma and beta are read only with an activation, and may be null without one).
template <typename T>
T bn_output_grad_ref(const BatchNormParams& p, const T* dy, const T* x, const T* gamma, const T* beta, const T* mean,
                     const T* inv_std, int64_t r, int c) {
  const int64_t i = r * p.channels + c;
  if (p.activation == Activation::kNone) return dy[i];
  return activation_grad_ref(p.activation, gamma[c] * ((x[i] - mean[c]) * inv_std[c]) + beta[c], dy[i]);
}

// The two per-channel reductions every BN gradient needs, sum(dy) and sum(dy * xhat) (C each, in double), added
// into dbeta and dgamma (either may be null) and returned for the training-mode dx. Here and below, `dy` is the
// gradient of the kernel's output (z with an activation, y without).
struct BatchNormSums {
  std::vector<double> sum_dy, sum_dy_xhat;  // (C), (C)
};
template <typename T>
BatchNormSums batchnorm_gamma_beta_backward_ref(const BatchNormParams& p, const T* dy, const T* x, const T* gamma,
                                                const T* beta, const T* mean, const T* inv_std, T* dgamma,
                                                T* dbeta) {
  const int64_t M = p.rows;
  const int C = p.channels;
  BatchNormSums sums{std::vector<double>(C, 0.0), std::vector<double>(C, 0.0)};
  for (int64_t r = 0; r < M; ++r)
    for (int c = 0; c < C; ++c) {
      const double xhat = (static_cast<double>(x[r * C + c]) - mean[c]) * inv_std[c];
      const double g = bn_output_grad_ref(p, dy, x, gamma, beta, mean, inv_std, r, c);
      sums.sum_dy[c] += g;
      sums.sum_dy_xhat[c] += g * xhat;
    }
  for (int c = 0; c < C; ++c) {
    if (dgamma) dgamma[c] += static_cast<T>(sums.sum_dy_xhat[c]);
    if (dbeta) dbeta[c] += static_cast<T>(sums.sum_dy[c]);
  }
  return sums;
}

// The same two sums as plain outputs, sum_dy (C) and sum_dy_xhat (C) overwritten, for synchronised batch norm
// (which adds them over processes before the input gradient).
template <typename T>
void batchnorm_backward_sums_ref(const BatchNormParams& p, const T* dy, const T* x, const T* gamma, const T* beta,
                                 const T* mean, const T* inv_std, double* sum_dy, double* sum_dy_xhat) {
  const BatchNormSums sums =
      batchnorm_gamma_beta_backward_ref<T>(p, dy, x, gamma, beta, mean, inv_std, nullptr, nullptr);
  std::copy(sums.sum_dy.begin(), sums.sum_dy.end(), sum_dy);
  std::copy(sums.sum_dy_xhat.begin(), sums.sum_dy_xhat.end(), sum_dy_xhat);
}

// dx += gamma * inv_std * (dy - sum_dy / total_rows - xhat * sum_dy_xhat / total_rows) (dx = ... when
// !p.accumulate_dx), given the sums: over
// this process's p.rows rows (total_rows = p.rows), or over every process's rows (synchronised batch norm).
template <typename T>
void batchnorm_backward_input_ref(const BatchNormParams& p, const T* dy, const T* x, const T* gamma, const T* beta,
                                  const T* mean, const T* inv_std, const double* sum_dy, const double* sum_dy_xhat,
                                  double total_rows, T* dx) {
  const int64_t M = p.rows;
  const int C = p.channels;
  for (int64_t r = 0; r < M; ++r)
    for (int c = 0; c < C; ++c) {
      const double xhat = (static_cast<double>(x[r * C + c]) - mean[c]) * inv_std[c];
      const double g = bn_output_grad_ref(p, dy, x, gamma, beta, mean, inv_std, r, c);
      const double centred = g - sum_dy[c] / total_rows - xhat * sum_dy_xhat[c] / total_rows;
      const T term = static_cast<T>(static_cast<double>(gamma[c]) * inv_std[c] * centred);
      dx[r * C + c] = p.accumulate_dx ? dx[r * C + c] + term : term;
    }
}

template <typename T>
void batchnorm_train_backward_ref(const BatchNormParams& p, const T* dy, const T* x, const T* gamma, const T* beta,
                                  const T* mean, const T* inv_std, T* dx, T* dgamma, T* dbeta) {
  const BatchNormSums sums = batchnorm_gamma_beta_backward_ref(p, dy, x, gamma, beta, mean, inv_std, dgamma, dbeta);
  if (!dx) return;
  // dx = gamma * inv_std * (dy - mean(dy) - xhat * mean(dy * xhat))
  batchnorm_backward_input_ref(p, dy, x, gamma, beta, mean, inv_std, sums.sum_dy.data(), sums.sum_dy_xhat.data(),
                               static_cast<double>(p.rows), dx);
}

// Eval-mode backward: same arguments as the training one, with mean / inv_std from the running statistics.
// No fast twin (both kernel tables point here): it runs only when BN is in eval mode under a gradient, which is
// rare and cheap.
template <typename T>
void batchnorm_eval_backward_ref(const BatchNormParams& p, const T* dy, const T* x, const T* mean, const T* inv_std,
                                 const T* gamma, T* dx, T* dgamma, T* dbeta) {
  const int64_t M = p.rows;
  const int C = p.channels;
  if (dx)
    for (int64_t r = 0; r < M; ++r)
      for (int c = 0; c < C; ++c) dx[r * C + c] += dy[r * C + c] * gamma[c] * inv_std[c];
  if (dgamma || dbeta) batchnorm_gamma_beta_backward_ref<T>(p, dy, x, nullptr, nullptr, mean, inv_std, dgamma, dbeta);
}

// y(rows, C) = x(rows, C) * scale(C) + shift(C): eval-mode batch norm folded into one multiply-add per value.
template <typename T>
void channel_affine_forward_ref(int64_t rows, int channels, const T* x, const T* scale, const T* shift, T* y) {
  for (int64_t r = 0; r < rows; ++r)
    for (int c = 0; c < channels; ++c) y[r * channels + c] = x[r * channels + c] * scale[c] + shift[c];
}

}  // namespace mriscan
