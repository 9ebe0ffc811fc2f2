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
// What it is not: blocked, vectorised or threaded.
#pragma once

#include <cstdint>

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

}  // namespace mriscan
