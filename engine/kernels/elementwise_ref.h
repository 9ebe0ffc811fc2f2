// Reference elementwise kernels: ReLU6, the residual add, axpy / scale (the optimisers' and the tape's helpers)
// and the per-column row bias. Plain loops, templated on the scalar type so the gradient tests can run them in
// double.
//
//   relu6:      y = min(max(x, 0), 6)             dx += dy  where 0 < x < 6, else nothing
//   activate:   y = act(x), the forward kernels' epilogue (Activation in params.h: identity or the ReLU6 above)
//   add:        y = a + b                          (its backward is dy to both inputs: the layer uses axpy)
//   axpy:       y += alpha * x
//   scale:      y *= alpha
//   bias rows:  y(rows, cols) += bias(cols)        dbias(cols) += sum over rows of dy(rows, cols)
// ReLU6's derivative at exactly 0 and 6 is taken as 0, as PyTorch's hardtanh backward does (it passes the
// gradient only strictly inside the window).
// Contract: forward kernels overwrite y (axpy, scale and bias_add_rows update y in place by definition);
// backward kernels accumulate (`+=`). What it is not: vectorised or threaded (elementwise_simd.cpp is).
#pragma once

#include <algorithm>
#include <cstdint>

#include "engine/kernels/params.h"

namespace mriscan {

// One value through an epilogue activation.
template <typename T>
T activate_ref(Activation activation, T x) {
  return activation == Activation::kReLU6 ? std::min(std::max(x, T(0)), T(6)) : x;
}

// The gradient of an activation's input given that input v (or its output: ReLU6's window 0 < v < 6 is the same
// on both sides) and the output's gradient dz: dz where the activation has slope 1, else 0.
// Fused batch norm + ReLU6 uses it.
template <typename T>
T activation_grad_ref(Activation activation, T v, T dz) {
  if (activation == Activation::kNone) return dz;
  return v > T(0) && v < T(6) ? dz : T(0);
}

template <typename T>
void relu6_forward_ref(int64_t n, const T* x, T* y) {
  for (int64_t i = 0; i < n; ++i) y[i] = activate_ref(Activation::kReLU6, x[i]);
}

template <typename T>
void relu6_backward_ref(int64_t n, const T* x, const T* dy, T* dx) {
  for (int64_t i = 0; i < n; ++i)
    if (x[i] > T(0) && x[i] < T(6)) dx[i] += dy[i];  // identity inside the window, flat (zero slope) outside
}

template <typename T>
void add_forward_ref(int64_t n, const T* a, const T* b, T* y) {
  for (int64_t i = 0; i < n; ++i) y[i] = a[i] + b[i];
}

template <typename T>
void axpy_ref(int64_t n, T alpha, const T* x, T* y) {
  for (int64_t i = 0; i < n; ++i) y[i] += alpha * x[i];
}

template <typename T>
void scale_ref(int64_t n, T alpha, T* y) {
  for (int64_t i = 0; i < n; ++i) y[i] *= alpha;
}

// y(rows, cols) += bias(cols), broadcast over the rows.
template <typename T>
void bias_add_rows_ref(int64_t rows, int cols, const T* bias, T* y) {
  for (int64_t r = 0; r < rows; ++r)
    for (int j = 0; j < cols; ++j) y[r * cols + j] += bias[j];
}

// dbias(cols) += column sums of dy(rows, cols): the bias was added to every row, so each row's dy flows back to it.
template <typename T>
void bias_backward_rows_ref(int64_t rows, int cols, const T* dy, T* dbias) {
  for (int64_t r = 0; r < rows; ++r)
    for (int j = 0; j < cols; ++j) dbias[j] += dy[r * cols + j];
}

}  // namespace mriscan
