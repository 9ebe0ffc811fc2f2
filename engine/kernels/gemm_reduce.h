// The GEMM behind gemm_fast / gemm_bias_act_fast when A is transposed: the weight gradients' long reduction
// (gemm_reduce.cpp says how it works). What it is not: a KernelTable entry of its own; gemm_fast.cpp routes to it.
#pragma once

#include "engine/kernels/params.h"

namespace mriscan {

// C (M, N) = act(A^T . op(B) [+ C] [+ bias (N)]) with A stored (K, M); p.trans_a must be true and M, N, K > 0.
void gemm_reduce(const GemmParams& p, const float* a, const float* b, const float* bias, Activation activation,
                 float* c);

}  // namespace mriscan
