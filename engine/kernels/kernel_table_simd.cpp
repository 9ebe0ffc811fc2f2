// One kernel set's table: compiled once per set with MRISCAN_ISA defined, but for the baseline CPU (CMakeLists.txt),
// since dispatch.cpp calls it on every CPU to fill a copy of the reference table with the set's fast kernels. It
// only stores the kernels' addresses and the set's constants (data, not code), so no instruction of the set runs
// until a kernel is called through a table chosen for this CPU. It is the set's only exported symbol,
// mriscan_kernels_<set>.
#include "engine/kernels/dispatch.h"
#include "engine/kernels/fast_kernels.h"

namespace mriscan::MRISCAN_ISA {
namespace {

void fill(KernelTable& table) {
  table.name = MRISCAN_ISA_NAME;
  table.vector_width = vector_width;
  table.bf16_matmul = has_bf16_gemm;
  table.fma_probe = fma_probe;
  table.conv2d_forward = conv2d_forward_simd;
  table.conv2d_backward_input = conv2d_backward_input_simd;
  table.conv2d_backward_weight = conv2d_backward_weight_simd;
  table.depthwise_forward = depthwise_forward_simd;
  table.depthwise_backward_input = depthwise_backward_input_simd;
  table.depthwise_backward_weight = depthwise_backward_weight_simd;
  table.gemm = gemm_fast;
  table.gemm_bias_act = gemm_bias_act_fast;
  table.depthwise_forward_bf16 = depthwise_forward_bf16_simd;
  if (has_bf16_gemm) table.gemm_bias_act_bf16_a = gemm_bias_act_bf16_a_fast;  // else the reference's stays
  table.batchnorm_train_forward = batchnorm_train_forward_simd;
  table.batchnorm_train_backward = batchnorm_train_backward_simd;
  table.batchnorm_statistics = batchnorm_statistics_simd;
  table.batchnorm_normalize = batchnorm_normalize_simd;
  table.batchnorm_backward_sums = batchnorm_backward_sums_simd;
  table.batchnorm_backward_input = batchnorm_backward_input_simd;
  table.channel_affine_forward = channel_affine_forward_simd;
  table.relu6_forward = relu6_forward_simd;
  table.relu6_backward = relu6_backward_simd;
  table.add_forward = add_forward_simd;
  table.axpy = axpy_simd;
  table.scale = scale_simd;
  table.global_avg_pool_forward = global_avg_pool_forward_simd;
  table.global_avg_pool_backward = global_avg_pool_backward_simd;
  table.bias_add_rows = bias_add_rows_simd;
  table.bias_backward_rows = bias_backward_rows_simd;
}

}  // namespace
}  // namespace mriscan::MRISCAN_ISA

// The entry's name: mriscan_kernels_ followed by the set (MRISCAN_ISA), one symbol per set.
#define MRISCAN_CONCAT_INNER(a, b) a##b
#define MRISCAN_CONCAT(a, b) MRISCAN_CONCAT_INNER(a, b)
extern "C" void MRISCAN_CONCAT(mriscan_kernels_, MRISCAN_ISA)(mriscan::KernelTable* table) {
  mriscan::MRISCAN_ISA::fill(*table);
}
