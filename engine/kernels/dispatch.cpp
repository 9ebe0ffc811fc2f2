// The one selection point: builds the reference and fast kernel tables and picks one at first use.
#include "engine/kernels/dispatch.h"

#include <cstdlib>
#include <cstring>
#include <vector>

#include "engine/kernels/batchnorm_ref.h"
#include "engine/kernels/bf16.h"
#include "engine/kernels/conv2d_ref.h"
#include "engine/kernels/depthwise_ref.h"
#include "engine/kernels/dropout_ref.h"
#include "engine/kernels/elementwise_ref.h"
#include "engine/kernels/fast_kernels.h"
#include "engine/kernels/gemm_ref.h"
#include "engine/kernels/matmul_precision.h"
#include "engine/kernels/pool_ref.h"
#include "engine/kernels/softmax_xent_ref.h"

namespace mriscan {
namespace {

// The reference table's GEMM entries follow the matmul precision as the fast ones do.
void gemm_reference(const GemmParams& p, const float* a, const float* b, float* c) {
  if (matmul_precision() == MatmulPrecision::kBFloat16)
    gemm_bf16_ref<float>(p, a, b, nullptr, Activation::kNone, c);
  else
    gemm_ref<float>(p, a, b, c);
}

void gemm_bias_act_reference(const GemmParams& p, const float* a, const float* b, const float* bias,
                             Activation activation, float* c) {
  if (matmul_precision() == MatmulPrecision::kBFloat16)
    gemm_bf16_ref<float>(p, a, b, bias, activation, c);
  else
    gemm_bias_act_ref<float>(p, a, b, bias, activation, c);
}

// The hand-off's references: the float32 kernels, then the rounding (bf16.h) as a separate step.
void depthwise_forward_bf16_reference(const DepthwiseParams& p, const float* x, const float* w, const float* bias,
                                      uint16_t* y_bf16) {
  std::vector<float> y(size_t(p.batch) * p.out_h * p.out_w * p.channels);  // (N, OH, OW, C)
  depthwise_forward_ref<float>(p, x, w, bias, y.data());
  for (size_t i = 0; i < y.size(); ++i) y_bf16[i] = bf16_bits(y[i]);
}

void gemm_bias_act_bf16_a_reference(const GemmParams& p, const uint16_t* a_bf16, const float* b, const float* bias,
                                    Activation activation, float* c) {
  std::vector<float> a(size_t(p.m) * p.k);  // (M, K), exact: every bf16 value is a float
  for (size_t i = 0; i < a.size(); ++i) a[i] = bf16_to_float(a_bf16[i]);
  gemm_bf16_ref<float>(p, a.data(), b, bias, activation, c);
}

}  // namespace

const KernelTable& reference_kernels() {
  static const KernelTable table = {
      .name = "ref",
      .conv2d_forward = conv2d_forward_ref<float>,
      .conv2d_backward_input = conv2d_backward_input_ref<float>,
      .conv2d_backward_weight = conv2d_backward_weight_ref<float>,
      .depthwise_forward = depthwise_forward_ref<float>,
      .depthwise_backward_input = depthwise_backward_input_ref<float>,
      .depthwise_backward_weight = depthwise_backward_weight_ref<float>,
      .gemm = gemm_reference,
      .gemm_bias_act = gemm_bias_act_reference,
      .depthwise_forward_bf16 = depthwise_forward_bf16_reference,
      .gemm_bias_act_bf16_a = gemm_bias_act_bf16_a_reference,
      .batchnorm_train_forward = batchnorm_train_forward_ref<float>,
      .batchnorm_train_backward = batchnorm_train_backward_ref<float>,
      .batchnorm_statistics = batchnorm_statistics_ref<float>,
      .batchnorm_normalize = batchnorm_normalize_ref<float>,
      .batchnorm_backward_sums = batchnorm_backward_sums_ref<float>,
      .batchnorm_backward_input = batchnorm_backward_input_ref<float>,
      .channel_affine_forward = channel_affine_forward_ref<float>,
      .relu6_forward = relu6_forward_ref<float>,
      .relu6_backward = relu6_backward_ref<float>,
      .add_forward = add_forward_ref<float>,
      .axpy = axpy_ref<float>,
      .scale = scale_ref<float>,
      .global_avg_pool_forward = global_avg_pool_forward_ref<float>,
      .global_avg_pool_backward = global_avg_pool_backward_ref<float>,
      .bias_add_rows = bias_add_rows_ref<float>,
      .bias_backward_rows = bias_backward_rows_ref<float>,
      .batchnorm_eval_backward = batchnorm_eval_backward_ref<float>,
      .dropout_forward = dropout_forward_ref<float>,
      .dropout_backward = dropout_backward_ref<float>,
      .softmax_xent_forward = softmax_xent_forward_ref<float>,
      .softmax_xent_backward = softmax_xent_backward_ref<float>,
  };
  return table;
}

const KernelTable& fast_kernels() {
  // Starts as the reference table; each fast kernel replaces its entry here once it passes its ref-vs-fast test.
  static const KernelTable table = [] {
    KernelTable fast = reference_kernels();
    fast.name = "simd";
    fast.conv2d_forward = conv2d_forward_simd;
    fast.conv2d_backward_input = conv2d_backward_input_simd;
    fast.conv2d_backward_weight = conv2d_backward_weight_simd;
    fast.depthwise_forward = depthwise_forward_simd;
    fast.depthwise_backward_input = depthwise_backward_input_simd;
    fast.depthwise_backward_weight = depthwise_backward_weight_simd;
    fast.gemm = gemm_fast;
    fast.gemm_bias_act = gemm_bias_act_fast;
    fast.depthwise_forward_bf16 = depthwise_forward_bf16_simd;
    fast.gemm_bias_act_bf16_a = gemm_bias_act_bf16_a_fast;
    fast.batchnorm_train_forward = batchnorm_train_forward_simd;
    fast.batchnorm_train_backward = batchnorm_train_backward_simd;
    fast.batchnorm_statistics = batchnorm_statistics_simd;
    fast.batchnorm_normalize = batchnorm_normalize_simd;
    fast.batchnorm_backward_sums = batchnorm_backward_sums_simd;
    fast.batchnorm_backward_input = batchnorm_backward_input_simd;
    fast.channel_affine_forward = channel_affine_forward_simd;
    fast.relu6_forward = relu6_forward_simd;
    fast.relu6_backward = relu6_backward_simd;
    fast.add_forward = add_forward_simd;
    fast.axpy = axpy_simd;
    fast.scale = scale_simd;
    fast.global_avg_pool_forward = global_avg_pool_forward_simd;
    fast.global_avg_pool_backward = global_avg_pool_backward_simd;
    fast.bias_add_rows = bias_add_rows_simd;
    fast.bias_backward_rows = bias_backward_rows_simd;
    return fast;
  }();
  return table;
}

namespace {
thread_local const KernelTable* thread_override = nullptr;
}  // namespace

ScopedKernelTable::ScopedKernelTable(const KernelTable& table) : previous_(thread_override) {
  thread_override = &table;
}
ScopedKernelTable::~ScopedKernelTable() { thread_override = previous_; }

const KernelTable& kernels() {
  if (thread_override) return *thread_override;
  static const KernelTable& chosen = [] () -> const KernelTable& {
    const char* forced = std::getenv("MRISCAN_KERNELS");
    if (forced && std::strcmp(forced, "ref") == 0) return reference_kernels();
    return fast_kernels();
  }();
  return chosen;
}

}  // namespace mriscan
