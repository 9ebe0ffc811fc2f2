// Declarations of the fast kernels (xsimd + OpenMP) of one kernel set: compiled once per instruction set, in the
// namespace mriscan::<set> (MRISCAN_ISA, engine/simd.h). Each has exactly the signature of its KernelTable entry
// (dispatch.h) and the same math and overwrite/accumulate contract as its reference in <op>_ref.h;
// tests/engine/test_kernels_simd.cpp checks every set's kernels against that reference.
// What it is not: an API for layers. Layers call kernels only through `kernels()`; kernel_table_simd.cpp is the
// one place these names are used. Ops without a fast variant keep their reference entry.
#pragma once

#include <cstdint>

#include "engine/kernels/params.h"

namespace mriscan::MRISCAN_ISA {

// fma_probe_simd.cpp: the set's floats per vector and its FMA peak probe (dispatch.h's fma_probe).
extern const int vector_width;
float fma_probe(int64_t steps);

// conv2d_simd.cpp: the dense KxK stem convolution, vectorised over output channels (activation in the epilogue).
void conv2d_forward_simd(const Conv2dParams& p, const float* x, const float* w, const float* bias, float* y);
void conv2d_backward_input_simd(const Conv2dParams& p, const float* dy, const float* w, float* dx);
void conv2d_backward_weight_simd(const Conv2dParams& p, const float* x, const float* dy, float* dw, float* dbias);

// depthwise_simd.cpp: 3x3 depthwise, any stride/pad, vectorised over channels (other kernel sizes: reference);
// the forward applies the activation in its epilogue.
void depthwise_forward_simd(const DepthwiseParams& p, const float* x, const float* w, const float* bias, float* y);
void depthwise_backward_input_simd(const DepthwiseParams& p, const float* dy, const float* w, float* dx);
void depthwise_backward_weight_simd(const DepthwiseParams& p, const float* x, const float* dy, float* dw, float* dbias);
// Its output rounded to bf16 a row at a time (the float32 row stays in cache): the bf16 hand-off (dispatch.h).
void depthwise_forward_bf16_simd(const DepthwiseParams& p, const float* x, const float* w, const float* bias,
                                 uint16_t* y_bf16);

// gemm_fast.cpp: register-blocked products (gemm_packed.cpp for a long M, gemm_reduce.cpp for the long reduction of
// a transposed A), the bias + activation applied to each output tile while it is in registers.
void gemm_fast(const GemmParams& p, const float* a, const float* b, float* c);
void gemm_bias_act_fast(const GemmParams& p, const float* a, const float* b, const float* bias, Activation activation,
                        float* c);
// gemm_bf16.cpp: whether the set has the bf16 GEMMs (AVX512-BF16), and the bf16 product reading A as bf16 pairs in
// place (the bf16 hand-off, dispatch.h).
extern const bool has_bf16_gemm;
void gemm_bias_act_bf16_a_fast(const GemmParams& p, const uint16_t* a_bf16, const float* b, const float* bias,
                               Activation activation, float* c);

// batchnorm_simd.cpp: training-mode batch norm over (M, C) rows, and the eval-mode channel affine.
void batchnorm_train_forward_simd(const BatchNormParams& p, const float* x, const float* gamma, const float* beta,
                                  float* y, float* mean, float* inv_std);
void batchnorm_train_backward_simd(const BatchNormParams& p, const float* dy, const float* x, const float* gamma,
                                   const float* beta, const float* mean, const float* inv_std, float* dx,
                                   float* dgamma, float* dbeta);
void channel_affine_forward_simd(int64_t rows, int channels, const float* x, const float* scale, const float* shift,
                                 float* y);
// The pieces of the two training kernels, for synchronised batch norm (layers/batch_norm.cpp).
void batchnorm_statistics_simd(const BatchNormParams& p, const float* x, double* mean, double* m2);
void batchnorm_normalize_simd(const BatchNormParams& p, const float* x, const float* gamma, const float* beta,
                              const float* mean, const float* inv_std, float* y);
void batchnorm_backward_sums_simd(const BatchNormParams& p, const float* dy, const float* x, const float* gamma,
                                  const float* beta, const float* mean, const float* inv_std, double* sum_dy,
                                  double* sum_dy_xhat);
void batchnorm_backward_input_simd(const BatchNormParams& p, const float* dy, const float* x, const float* gamma,
                                   const float* beta, const float* mean, const float* inv_std, const double* sum_dy,
                                   const double* sum_dy_xhat, double total_rows, float* dx);

// elementwise_simd.cpp: flat elementwise ops and the row bias.
void relu6_forward_simd(int64_t n, const float* x, float* y);
void relu6_backward_simd(int64_t n, const float* x, const float* dy, float* dx);
void add_forward_simd(int64_t n, const float* a, const float* b, float* y);
void axpy_simd(int64_t n, float alpha, const float* x, float* y);
void scale_simd(int64_t n, float alpha, float* y);
void bias_add_rows_simd(int64_t rows, int cols, const float* bias, float* y);
void bias_backward_rows_simd(int64_t rows, int cols, const float* dy, float* dbias);

// pool_simd.cpp: global average pool.
void global_avg_pool_forward_simd(const PoolParams& p, const float* x, float* y);
void global_avg_pool_backward_simd(const PoolParams& p, const float* dy, float* dx);

}  // namespace mriscan::MRISCAN_ISA
