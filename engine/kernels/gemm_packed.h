// The register-blocked GEMM behind gemm_fast / gemm_bias_act_fast when A is not transposed (gemm_packed.cpp says
// how it works). What it is not: a KernelTable entry of its own; gemm_fast.cpp decides when to call it.
#pragma once

#include "engine/kernels/params.h"

namespace mriscan::MRISCAN_ISA {

// C (M, N) = act(A (M, K) . op(B) (K, N) [+ C] [+ bias (N)]); p.trans_a must be false and M, N, K > 0.
// activation kNone with a null bias is the plain product.
void gemm_packed_b(const GemmParams& p, const float* a, const float* b, const float* bias, Activation activation,
                   float* c);

}  // namespace mriscan::MRISCAN_ISA
