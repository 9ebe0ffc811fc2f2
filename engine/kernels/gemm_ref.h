// Reference row-major GEMM: the obvious triple loop, templated on the scalar type so the gradient tests can run
// it in double. Pointwise convolution and the linear layer are built on it (and on the fast variant, gemm_fast.cpp).
//
//   C(m, n) = sum_k op(A)(m, k) * op(B)(k, n)   [+ C(m, n) if accumulate]
//   op(A) = A, stored (M, K), or A^T with A stored (K, M) when trans_a; likewise op(B) from (K, N) or (N, K).
// The three uses in the layers (x (M, Ci), w (Ci, Co), y (M, Co)):
//   forward  y  = x . w            (no transposes)
//   dx      += dy . w^T            (trans_b, accumulate)
//   dw      += x^T . dy            (trans_a, accumulate)
// With an epilogue (gemm_bias_act, the fused pointwise-conv / linear forward for inference):
//   C(m, n) = act(sum_k op(A)(m, k) * op(B)(k, n) [+ C(m, n) if accumulate] + bias(n))    bias null: no bias
// With bf16 precision (matmul_precision.h), gemm_bf16_ref: the same with op(A) and op(B) rounded to bfloat16 first.
// What it is not: blocked, vectorised or threaded.
#pragma once

#include <cstdint>
#include <vector>

#include "engine/kernels/bf16.h"

#include "engine/kernels/elementwise_ref.h"  // activate_ref
#include "engine/kernels/params.h"

namespace mriscan {

template <typename T>
void gemm_ref(const GemmParams& p, const T* a, const T* b, T* c) {
  for (int64_t i = 0; i < p.m; ++i)
    for (int64_t j = 0; j < p.n; ++j) {
      // Sum in a local so `accumulate` adds exactly one term to C, whatever the order of the k loop.
      T sum = T(0);
      for (int64_t k = 0; k < p.k; ++k) {
        const T a_ik = p.trans_a ? a[k * p.m + i] : a[i * p.k + k];  // A (K, M) or (M, K)
        const T b_kj = p.trans_b ? b[j * p.k + k] : b[k * p.n + j];  // B (N, K) or (K, N)
        sum += a_ik * b_kj;
      }
      c[i * p.n + j] = p.accumulate ? c[i * p.n + j] + sum : sum;  // C (M, N)
    }
}

// The product above, then the epilogue on every element: the unfused composition, written as one.
template <typename T>
void gemm_bias_act_ref(const GemmParams& p, const T* a, const T* b, const T* bias, Activation activation, T* c) {
  gemm_ref(p, a, b, c);
  for (int64_t i = 0; i < p.m; ++i)
    for (int64_t j = 0; j < p.n; ++j)
      c[i * p.n + j] = activate_ref(activation, bias ? c[i * p.n + j] + bias[j] : c[i * p.n + j]);  // C (M, N)
}

// The bf16 product: both operands rounded to bfloat16 (bf16.h), then gemm_bias_act_ref summing in T. A product of
// two bf16 values is exact in float32 (8 + 8 significant bits), so this differs from the fast kernel only in the
// order of the sums. bias null and kNone: the plain product.
template <typename T>
void gemm_bf16_ref(const GemmParams& p, const T* a, const T* b, const T* bias, Activation activation, T* c) {
  std::vector<T> a_rounded(a, a + int64_t(p.m) * p.k), b_rounded(b, b + int64_t(p.k) * p.n);  // as A, B
  for (T& value : a_rounded) value = T(round_to_bf16(float(value)));
  for (T& value : b_rounded) value = T(round_to_bf16(float(value)));
  gemm_bias_act_ref(p, a_rounded.data(), b_rounded.data(), bias, activation, c);
}

}  // namespace mriscan
