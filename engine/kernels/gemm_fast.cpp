// The fast GEMM table entries, gemm_fast and gemm_bias_act_fast: same contract as gemm_ref.h, C (M, N) = op(A) .
// op(B) [+ C], then the optional epilogue act(c + bias). Pointwise convolution and the linear layer go through it.
// Two kernels share one register-blocked micro-tile (gemm_micro_tile.h) and differ in which side is long:
//   not trans_a  (forward y = x . w, input gradient dx += dy . w^T): M is long     -> gemm_packed.cpp
//   trans_a      (weight gradient dw += x^T . dy):                  K is long     -> gemm_reduce.cpp
// and, under bf16 precision (matmul_precision.h), both with bf16 inputs                -> gemm_bf16.cpp
// What it is not: a general BLAS (no strides, no alpha/beta) or a kernel itself; this file handles the empty
// cases and routes.
#include <algorithm>

#include "engine/kernels/epilogue_simd.h"
#include "engine/kernels/fast_kernels.h"
#include "engine/kernels/gemm_bf16.h"
#include "engine/kernels/gemm_packed.h"
#include "engine/kernels/gemm_reduce.h"
#include "engine/kernels/matmul_precision.h"

namespace mriscan::MRISCAN_ISA {
namespace {

void product(const GemmParams& p, const float* a, const float* b, const float* bias, Activation activation, float* c) {
  if (p.m == 0 || p.n == 0) return;
  if (p.k == 0) {  // an empty sum: C = 0, or C unchanged when accumulating; then the epilogue
    if (!p.accumulate) std::fill(c, c + int64_t(p.m) * p.n, 0.0f);
    for (int64_t r = 0; r < p.m; ++r) bias_activate_row(c + r * p.n, p.n, bias, activation);
    return;
  }
  if (matmul_precision() == MatmulPrecision::kBFloat16)
    (p.trans_a ? gemm_bf16_reduce : gemm_bf16_packed_b)(p, a, b, bias, activation, c);
  else if (p.trans_a)
    gemm_reduce(p, a, b, bias, activation, c);
  else
    gemm_packed_b(p, a, b, bias, activation, c);
}

}  // namespace

void gemm_fast(const GemmParams& p, const float* a, const float* b, float* c) {
  product(p, a, b, nullptr, Activation::kNone, c);
}

void gemm_bias_act_fast(const GemmParams& p, const float* a, const float* b, const float* bias, Activation activation,
                        float* c) {
  product(p, a, b, bias, activation, c);
}

}  // namespace mriscan::MRISCAN_ISA
