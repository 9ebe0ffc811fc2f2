// The GEMM behind gemm_fast / gemm_bias_act_fast when A is transposed: the weight gradients' long reduction
// (gemm_reduce.cpp says how it works). What it is not: a KernelTable entry of its own; gemm_fast.cpp routes to it.
#pragma once

#include <cstdint>

#include "engine/kernels/params.h"

namespace mriscan::MRISCAN_ISA {

// Sums rows [k_begin, k_end) of A (K, M) and B into panels [panel_begin, panel_end) of target (M, N), overwriting
// them first when !accumulate: the inner work of one thread. The float32 one is gemm_reduce.cpp's; the bf16 one is
// gemm_bf16.cpp's.
// The most rows of A and B a ReduceRowsFn takes at a time (a chunk of B's panel stays in L1, A's chunk in L2;
// kernel_set_tuning.h's reduce_chunk_rows takes fewer on a small L2); also the threads' split unit.
constexpr int64_t kReduceChunkRows = 128;
using ReduceRowsFn = void (*)(const GemmParams& p, const float* a, const float* b, float* target, bool accumulate,
                              int64_t k_begin, int64_t k_end, int64_t panel_begin, int64_t panel_end);

// C (M, N) = act(A^T . op(B) [+ C] [+ bias (N)]) with A stored (K, M); p.trans_a must be true and M, N, K > 0.
// reduce_rows: the inner work (null: float32).
void gemm_reduce(const GemmParams& p, const float* a, const float* b, const float* bias, Activation activation,
                 float* c, ReduceRowsFn reduce_rows = nullptr);

}  // namespace mriscan::MRISCAN_ISA
