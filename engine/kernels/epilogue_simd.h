// The fast forward kernels' shared epilogue: an Activation (params.h) applied to a vector still in registers, and
// bias + activation applied to one output row still in cache. Same math as activate_ref (elementwise_ref.h):
//   kNone: y = v        kReLU6: y = min(max(v, 0), 6)
// Used by conv2d_simd.cpp and depthwise_simd.cpp (per vector, before the store), gemm_fast.cpp (per row of an
// output tile), elementwise_simd.cpp (ReLU6, row bias) and batchnorm_simd.cpp (the fused BN + ReLU6, whose backward
// uses activation_grad: the twin of activation_grad_ref). What it is not: a kernel with a table entry of its own.
#pragma once

#include <cstdint>

#include "engine/kernels/params.h"
#include "engine/simd.h"

namespace mriscan::MRISCAN_ISA {

inline FloatBatch activate(Activation activation, const FloatBatch& v) {
  if (activation == Activation::kReLU6) return xsimd::min(xsimd::max(v, FloatBatch(0.0f)), FloatBatch(6.0f));
  return v;
}

// The gradient of the activation's input from that input v (or its output: ReLU6's window 0 < v < 6 is the same
// on both sides) and the output's gradient dz: dz where 0 < v < 6 (kReLU6), dz everywhere (kNone; v is then not
// read, so callers may pass any batch). dz goes through in_register (simd.h): a plain load and a blend, not a
// masked load.
inline FloatBatch activation_grad(Activation activation, const FloatBatch& v, const FloatBatch& dz) {
  if (activation == Activation::kReLU6)
    return xsimd::select((v > FloatBatch(0.0f)) && (v < FloatBatch(6.0f)), in_register(dz), FloatBatch(0.0f));
  return dz;
}

// y (cols) = act(y + bias (cols)), in place; a null bias adds nothing.
inline void bias_activate_row(float* y, int64_t cols, const float* bias, Activation activation) {
  for_each_chunk(cols, [&](int64_t c, int count) {
    FloatBatch v = load_n(y + c, count);
    if (bias) v += load_n(bias + c, count);
    store_n(y + c, activate(activation, v), count);
  });
}

}  // namespace mriscan::MRISCAN_ISA
