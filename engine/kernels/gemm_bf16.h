// The bf16 GEMMs behind gemm_fast / gemm_bias_act_fast under MatmulPrecision::kBFloat16 (matmul_precision.h):
// gemm_bf16.cpp says how they work. Only the kernel set compiled for AVX512-BF16 has them; the others compute the
// same product with the reference (and their tables say bf16_matmul = false, so matmul_precision.h never chooses
// them for bf16 on their own).
#pragma once

#include "engine/kernels/params.h"

namespace mriscan::MRISCAN_ISA {

// C (M, N) = act(bf16(A) (M, K) . bf16(op(B)) (K, N) [+ C] [+ bias (N)]), sums in float32; p.trans_a must be false
// and M, N, K > 0. Same result as gemm_bf16_ref (gemm_ref.h) up to the order of the sums.
void gemm_bf16_packed_b(const GemmParams& p, const float* a, const float* b, const float* bias, Activation activation,
                        float* c);

// The same for a transposed A stored (K, M), K long (the weight gradient): gemm_reduce's threads and partials with
// a bf16 inner product; p.trans_a must be true.
void gemm_bf16_reduce(const GemmParams& p, const float* a, const float* b, const float* bias, Activation activation,
                      float* c);

}  // namespace mriscan::MRISCAN_ISA
